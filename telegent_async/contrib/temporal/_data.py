"""What crosses into Temporal: activity inputs and results as plain dataclasses (pure, no I/O).

Temporal's default data converter writes a dataclass as JSON (`dataclasses.asdict`) and reads
it back by the activity's type hints, so every field here is a str, a number, a bool, None, a
tuple, JSON or another of these dataclasses: no attrs class, enum or datetime goes into
workflow history. Results carry order data only; a subscriber's secrets (the account number
and PIN at the losing carrier) travel only inside `SubmitInput` and `PortInFields`, whose
reprs mask them, and an `EncryptionCodec` keeps them out of history in clear.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..._create import SubmittedOrder
from ..._models import Order
from ..._order_status import NEEDS_ACTION, OrderStatus
from ..._portin import BillingAddress, PortInCancel, PortInUpdate
from ..._stores.records import encode_order
from ..._timing import PRESETS, PollPolicy

__all__ = [
    "AddressInput",
    "OrderResult",
    "PollInput",
    "PortInFields",
    "PortInResult",
    "SubmitInput",
    "SubmittedResult",
    "UpdateInput",
    "port_in_result",
    "result_of",
    "submitted_result",
]

_CADENCE = ("initial", "factor", "max_interval", "jitter")


def preset_policy(preset: str) -> PollPolicy:
    """The `PollPolicy` of a preset name ("provision" or "portin")."""
    policy = PRESETS.get(preset) if isinstance(preset, str) else None
    if policy is None:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return policy


@dataclasses.dataclass(frozen=True)
class PollInput:
    """The input of `telegent.poll_order` and `telegent.wait_for_order`: an order and its cadence.

    The cadence is a preset's (`"portin"`: 10 minutes doubling to 6 hours; `"provision"`: 1 s
    doubling to 15 s), or with no preset the worker client's `poll_policy`, with any of the
    four numbers replaced.

    Attributes:
        order_id: The order's ID.
        preset: "portin", "provision", or None (the worker client's `poll_policy`).
        initial: Replaces the cadence's `initial` (seconds), or None.
        factor: Replaces its `factor`, or None.
        max_interval: Replaces its `max_interval` (seconds), or None.
        jitter: Replaces its `jitter` (0 to 1), or None.
    """

    order_id: str
    preset: str | None = None
    initial: float | None = None
    factor: float | None = None
    max_interval: float | None = None
    jitter: float | None = None

    def policy(self, default: PollPolicy) -> PollPolicy:
        """The cadence this input asks for.

        Args:
            default: The cadence when the input names no preset (the worker client's).

        Raises:
            ValueError: An unknown preset or a bad number (`TypeError` for a wrong type).
        """
        base = default if self.preset is None else preset_policy(self.preset)
        changes = {name: getattr(self, name) for name in _CADENCE}
        return attrs.evolve(base, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class OrderResult:
    """One observation of an order, as plain data: what the activities return.

    Attributes:
        order_id: The order's ID.
        status: The `tg.OrderStatus` name ("COMPLETE", "REJECTED", "SUBMITTED" ...).
        raw_status: The status exactly as received.
        carrier_code: The first carrier code ("8A"), or None.
        reason: The carrier's words for it, else the status message, or None.
        remedy: What to do about it, or None.
        update_fields: The `update_port_in` keywords that fix every code of the order, in
            order, without repeats (`()`: no update can).
        raw: The order's JSON as received, without any secret-looking field.
        next_step: The `tg.NextStep` name of an order needing action ("UPDATE",
            "UPDATE_AFTER_SUBSCRIBER", "CANCEL_AND_SUBMIT", "CONTACT_SUPPORT"), else None
            (after `raw`: the fields DESIGN.md names keep their positions).
    """

    order_id: str
    status: str
    raw_status: str
    carrier_code: str | None = None
    reason: str | None = None
    remedy: str | None = None
    update_fields: tuple[str, ...] = ()
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    next_step: str | None = None

    @property
    def succeeded(self) -> bool:
        """The order completed."""
        return self.status == OrderStatus.COMPLETE.name

    @property
    def is_settled(self) -> bool:
        """The order will not change without someone acting on it."""
        return _status(self.status).is_settled

    @property
    def needs_action(self) -> bool:
        """REJECTED or RESOLUTION_REQUIRED: an update (`update_fields`) or a cancel."""
        return _status(self.status) in NEEDS_ACTION

    @classmethod
    def from_details(cls, details: object) -> OrderResult | None:
        """An `OrderResult` from a failure's details as a workflow receives them (a dict), or
        None when they hold none."""
        if isinstance(details, OrderResult):
            return details
        if not isinstance(details, Mapping):
            return None
        names = {field.name for field in dataclasses.fields(cls)}
        try:
            result = cls(**{k: v for k, v in details.items() if k in names})
        except TypeError:  # a required field is missing
            return None
        return dataclasses.replace(result, update_fields=tuple(result.update_fields))


def _status(name: str) -> OrderStatus:
    return OrderStatus.__members__.get(name, OrderStatus.UNKNOWN)


def result_of(order: Order) -> OrderResult:
    """An order as plain data (its `raw` as the stores keep it: no secret-looking field)."""
    carrier = order.carrier_error
    reason = carrier.reason if carrier is not None else None
    fields = (field for error in order.carrier_errors for field in error.update_fields)
    return OrderResult(
        order_id=order.order_id,
        status=order.status.name,
        raw_status=order.raw_status,
        carrier_code=carrier.code if carrier is not None else None,
        reason=reason if reason is not None else order.status_message,
        remedy=carrier.remedy if carrier is not None else None,
        update_fields=tuple(dict.fromkeys(fields)),
        next_step=order.next_step.name if order.next_step is not None else None,
        raw=json.loads(encode_order(order)),
    )


@dataclasses.dataclass(frozen=True)
class AddressInput:
    """A billing address as plain data (`tg.BillingAddress`'s lines); at least one line.

    Attributes:
        street1: The first street line, or None.
        street2: The second street line, or None.
        city: The city, or None.
        state: The state, or None.
        zip: The ZIP code, or None.
    """

    street1: str | None = None
    street2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None

    def billing_address(self) -> BillingAddress:
        """The SDK's `BillingAddress` (checked: `ValueError` for an empty or bad line)."""
        return BillingAddress(**dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class PortInFields:
    """Corrections to a port-in: the `update_port_in` keywords as plain data (None: not sent).

    The account number and password are secrets: masked in the repr; keep them out of
    workflow history in clear with an `EncryptionCodec` on the Temporal client.

    Attributes:
        current_account_number: The account number at the losing carrier (a secret).
        current_account_password: The account PIN or password there (a secret).
        current_carrier_name: The losing carrier's name.
        subscriber_name: The name on the losing carrier's account.
        port_in_date: The requested port date, `"YYYY-MM-DD"`.
        current_billing_address: The billing address lines being corrected.
        iccid: The SIM's ICCID.
        target_portin_classification: Telegent's `TargetPortinClassification`.
    """

    current_account_number: str | None = dataclasses.field(default=None, repr=False)
    current_account_password: str | None = dataclasses.field(default=None, repr=False)
    current_carrier_name: str | None = None
    subscriber_name: str | None = None
    port_in_date: str | None = None
    current_billing_address: AddressInput | None = None
    iccid: str | None = None
    target_portin_classification: str | None = None

    def names(self) -> tuple[str, ...]:
        """The names of the fields given (not None)."""
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None)

    def only(self, names: Iterable[str]) -> PortInFields:
        """These fields with every field not in `names` left out.

        Args:
            names: The fields to keep: an order's `update_fields`, so that an update sends
                exactly what its carrier codes ask for.
        """
        keep = set(names)
        return dataclasses.replace(
            self, **{f.name: None for f in dataclasses.fields(self) if f.name not in keep}
        )

    def keywords(self) -> dict[str, Any]:
        """The `update_port_in` keywords of the fields given."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        address = self.current_billing_address
        if address is not None:
            given["current_billing_address"] = address.billing_address()
        return {name: value for name, value in given.items() if value is not None}


@dataclasses.dataclass(frozen=True)
class UpdateInput:
    """The input of `telegent.update_port_in`: the order and its corrections.

    Attributes:
        order_id: The port-in's ID.
        fields: The corrections (only the fields given are sent).
    """

    order_id: str
    fields: PortInFields


@dataclasses.dataclass(frozen=True)
class SubmitInput:
    """The input of `telegent.submit_port_in` (`client.submit_port_in`'s arguments).

    The account number and password are secrets: masked in the repr; keep them out of
    workflow history in clear with an `EncryptionCodec` on the Temporal client.

    Attributes:
        phone_number: The number to port in.
        current_carrier_name: The losing carrier's name.
        current_account_number: The account number there (a secret).
        current_account_password: The account PIN or password there (a secret).
        current_billing_address: The billing address on the losing carrier's bill.
        iccid: The SIM's ICCID, or None.
        target_portin_classification: Telegent's `TargetPortinClassification`, or None.
        subscriber_name: The name on the losing carrier's account, or None.
    """

    phone_number: str
    current_carrier_name: str
    current_account_number: str = dataclasses.field(repr=False)
    current_account_password: str = dataclasses.field(repr=False)
    current_billing_address: AddressInput
    iccid: str | None = None
    target_portin_classification: str | None = None
    subscriber_name: str | None = None


@dataclasses.dataclass(frozen=True)
class PortInResult:
    """The answer to an update or a cancel (`tg.PortInUpdate`/`tg.PortInCancel`) as plain data.

    Attributes:
        order_id: The port-in's ID.
        status: The status the answer gave, or None.
        message: The answer's message, or None.
        raw: The answer's JSON (any secret it quoted back masked).
    """

    order_id: str
    status: str | None = None
    message: str | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


def port_in_result(answer: PortInUpdate | PortInCancel) -> PortInResult:
    """An update's or a cancel's answer as plain data."""
    return PortInResult(answer.order_id, answer.status, answer.message, _plain(answer.raw))


@dataclasses.dataclass(frozen=True)
class SubmittedResult:
    """A created order (`tg.SubmittedOrder`) as plain data: wait on its `order_id`.

    Attributes:
        order_id: The new order's ID.
        status: The status the answer gave, or None.
        order_date: When it was placed (ISO 8601), or None.
        raw: The answer's JSON (any secret it quoted back masked).
    """

    order_id: str
    status: str | None = None
    order_date: str | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


def _plain(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON answer as plain JSON data (what Temporal's converter writes as is)."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(raw), default=str))
    return plain


def submitted_result(submitted: SubmittedOrder) -> SubmittedResult:
    """A created order as plain data."""
    when = submitted.order_date
    return SubmittedResult(
        submitted.order_id,
        submitted.status,
        when.isoformat() if when is not None else None,
        _plain(submitted.raw),
    )
