"""Typed results and their tolerant decoding from Telegent's JSON (pure, no I/O).

Telegent's documentation shows several shapes for the same order; decoding accepts all of
them, keeps the JSON object as received in `Order.raw`, and fails only when a body is not an
order at all (`ValueError`, which the send path reports as a `ResponseDecodeError`).
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs

from . import _errors
from ._carrier import CarrierError, NextStep, decode_carrier_messages, next_step_of
from ._errors import OrderFailed, SubmitOutcomeUnknownError, TelegentError
from ._order_status import CARRIES_REASON, NEEDS_ACTION, SETTLED, OrderStatus, parse_status
from ._secrets import is_secret_key
from ._timing import parse_timestamp

__all__ = [
    "RECORD_VERSION",
    "Order",
    "OrderOutcome",
    "OrderStatus",
    "converter",
    "decode_error",
    "encode_error",
    "encode_order",
    "order_from_json",
    "parse_status",
    "scrubbed",
    "stored_order",
]

logger = logging.getLogger("telegent_async")


@attrs.frozen
class Order:
    """One observation of an order, as `GET /numbers/order` reported it.

    Attributes:
        order_id: The order's ID (`JNUOID-...`).
        status: The status as an `OrderStatus`, whatever spelling the API used.
        raw_status: The status exactly as received (an unknown one is kept: `UNKNOWN`).
        order_type: The order's type (`OrderType`), or None.
        order_date: When the order was placed, as an aware datetime, or None.
        status_message: `OrderStatusMessage` as received (the carrier's words), or None.
        carrier_error: The first code of `status_message`, decoded, or None.
        phone_numbers: The order's numbers, as strings.
        raw: The JSON object as received.
        carrier_errors: Every code of the message, in order; `carrier_error` is the first.
    """

    order_id: str
    status: OrderStatus
    raw_status: str
    order_type: str | None = None
    order_date: datetime | None = None
    status_message: str | None = None
    carrier_error: CarrierError | None = None
    phone_numbers: tuple[str, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)
    carrier_errors: tuple[CarrierError, ...] = attrs.field(default=(), repr=False)

    @property
    def is_settled(self) -> bool:
        """COMPLETE, ERROR, REJECTED, RESOLUTION_REQUIRED or CANCELLED."""
        return self.status in SETTLED

    @property
    def succeeded(self) -> bool:
        """COMPLETE (spelled `Complete` or `Completed`)."""
        return self.status is OrderStatus.COMPLETE

    @property
    def failed(self) -> bool:
        """Settled without success (ERROR, REJECTED, RESOLUTION_REQUIRED or CANCELLED)."""
        return self.status in SETTLED and self.status is not OrderStatus.COMPLETE

    @property
    def needs_action(self) -> bool:
        """REJECTED or RESOLUTION_REQUIRED: fix it with `update_port_in`, or `cancel_port_in`."""
        return self.status in NEEDS_ACTION

    @property
    def next_step(self) -> NextStep | None:
        """What comes next for a port-in needing action: the strongest `NextStep` its carrier
        codes need (an update, an update once the subscriber acted, cancel and submit anew,
        or a support ticket, also for a rejection without a code); None for an order not
        needing action."""
        if not self.needs_action:
            return None
        return next_step_of(self.carrier_errors) or NextStep.CONTACT_SUPPORT

    def raise_for_status(self) -> Order:
        """Return the order if it succeeded, else raise `OrderFailed` (pending ones too)."""
        if self.status is not OrderStatus.COMPLETE:
            raise OrderFailed(self)
        return self

    def to_json(self) -> dict[str, Any]:
        """This order as JSON-ready data (for `json.dumps`), through the package's `converter`:
        each field by name, enums by member name, dates in ISO 8601, and `raw` without any
        secret-looking field (as a store keeps it). `Order.from_json` reads it back."""
        data: dict[str, Any] = converter.unstructure(attrs.evolve(self, raw={}))
        data["raw"] = json.loads(encode_order(self))  # not walked twice (nor too deep)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Order:
        """The order `to_json` wrote: decoded again from its `raw`, so every other field is
        derived as when it was received. `ValueError` when `data` is not such an object.

        Args:
            data: What `to_json` returned (or its `json.loads`).
        """
        raw, order_id = _field(data, "raw", dict, "Order"), _field(data, "order_id", str, "Order")
        return order_from_json(raw, order_id)  # as its lookup decoded it


@attrs.frozen
class OrderOutcome:
    """How waiting for (or looking up) one order ended: an `order`, an `error`, or both.

    Attributes:
        order_id: The order looked up or waited for.
        order: The last observation, or None; set even when the wait timed out.
        error: The `TelegentError` that ended the lookup or the wait, or None.
        tag: The caller's label, from an `OrderWatcher` watch, or None.
    """

    order_id: str
    order: Order | None = None
    error: TelegentError | None = attrs.field(default=None, eq=False)
    tag: str | None = None

    @property
    def ok(self) -> bool:
        """True when there is no error and the order succeeded."""
        return self.error is None and self.order is not None and self.order.succeeded

    def to_json(self) -> dict[str, Any]:
        """This outcome as JSON-ready data: `order_id`, `ok`, `tag`, `order` (`Order.to_json`)
        and `error` (its class, text and fields, as a store keeps it; never a secret).
        `OrderOutcome.from_json` reads it back, the error as the same class."""
        order, error = self.order, self.error
        return {
            "order_id": self.order_id,
            "ok": self.ok,
            "tag": self.tag,
            "order": None if order is None else order.to_json(),
            "error": None if error is None else json.loads(encode_error(error)),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderOutcome:
        """The outcome `to_json` wrote. `ValueError` when `data` is not such an object.

        Args:
            data: What `to_json` returned (or its `json.loads`).
        """
        order_id = _field(data, "order_id", str, "OrderOutcome")
        order, error, tag = data.get("order"), data.get("error"), data.get("tag")
        return OrderOutcome(
            order_id,
            None if order is None else Order.from_json(order),
            None if error is None else decode_error(json.dumps(error), order_id),
            tag if isinstance(tag, str) else None,
        )


def _json_text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _phone_numbers(body: Mapping[str, Any]) -> tuple[str, ...]:
    ordered = body.get("PhoneNumbersOrdered")
    numbers: list[str] = []
    if isinstance(ordered, list):
        for entry in ordered:
            number = (
                _json_text(entry.get("Number")) if isinstance(entry, dict) else _json_text(entry)
            )
            if number:
                numbers.append(number)
    if not numbers and (assigned := _json_text(body.get("PhoneNumberAssigned"))):
        numbers.append(assigned)
    return tuple(numbers)


def _structure_order(body: Mapping[str, Any], _cls: type[Order]) -> Order:
    # A lookup's every answer comes through here: positional arguments to `Order` (0.4 us
    # less than by keyword), and a plain string taken as is, not through `_json_text`.
    order_id, raw_status = body.get("OrderId"), body.get("OrderStatus")
    order_id = order_id if type(order_id) is str else _json_text(order_id)
    raw_status = raw_status if type(raw_status) is str else _json_text(raw_status)
    if not order_id or raw_status is None:
        raise ValueError("not an order: OrderId and OrderStatus are required")
    status = parse_status(raw_status)
    message = _json_text(body.get("OrderStatusMessage")) or _json_text(body.get("ErrorMessage"))
    errors = decode_carrier_messages(message) if status in CARRIES_REASON else ()
    return Order(
        order_id,
        status,
        raw_status,
        _json_text(body.get("OrderType")),
        parse_timestamp(body.get("OrderDate")),
        message,
        errors[0] if errors else None,
        _phone_numbers(body),
        body,
        errors,
    )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_structure_hook(Order, _structure_order)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_unstructure_hook(enum.Enum, lambda member: member.name)
    conv.register_unstructure_hook(TelegentError, str)
    return conv


#: The one converter: `converter.structure(json_object, Order)` decodes every order, and
#: `converter.unstructure(order_or_outcome)` gives JSON-ready data for your own storage or logs.
#: (The CLI's `--json` line is a report row of its own: the outcome's group and decoded
#: carrier code beside the status, built by `cli._json.outcome_json`.)
converter = _make_converter()


def order_from_json(data: object, order_id: str | None = None) -> Order:
    """An `Order` from the JSON value of an order lookup's 2xx answer (the send path has
    already turned error bodies into errors and unwrapped `Data`).

    `ValueError` when it is not an order, or when it is about another order than `order_id`
    (compared ignoring case and surrounding spaces; an answer without `OrderId` is taken as
    the one asked for).
    """
    if not isinstance(data, dict):
        raise ValueError("not an order: not a JSON object")
    # `_structure_order` is what `converter.structure(data, Order)` calls: called directly,
    # a lookup skips the converter's dispatch.
    if order_id is None:
        return _structure_order(data, Order)
    answered = data.get("OrderId")
    if answered is None:
        return attrs.evolve(_structure_order({**data, "OrderId": order_id}, Order), raw=data)
    text = _json_text(answered)
    if text is not None and text != order_id and _id_key(text) != _id_key(order_id):
        raise ValueError(f"the answer is about order {text[:100]!r}, not {order_id!r}")
    return _structure_order(data, Order)


def _id_key(order_id: str) -> str:
    return order_id.strip().casefold()


_F = TypeVar("_F")

# -- the package's JSON of orders and errors (stores, to_json) ------------------------------

#: Version of the stored JSON records (errors; the SQLite schema carries it too).
RECORD_VERSION = 1


#: How many levels of lists and objects a stored record keeps (Telegent's orders nest 3 deep).
#: A lookup takes an answer nested as deep as the JSON parser goes (~950 levels: the recursion
#: limit), which no store could write, nor read back, within that limit (it stopped watchers).
KEPT_DEPTH = 100


def scrubbed(value: Any, depth: int = KEPT_DEPTH) -> Any:
    """`value` without any secret-looking key, at every depth of its dicts and lists, and with
    None for the lists and objects nested deeper than `depth` levels (the one rule every
    stored record goes through: orders, and the bodies errors carry)."""
    if isinstance(value, Mapping):
        if not depth:
            return None
        return {
            key: scrubbed(item, depth - 1) for key, item in value.items() if not is_secret_key(key)
        }
    if isinstance(value, (list, tuple)):
        if not depth:
            return None
        return [scrubbed(item, depth - 1) for item in value]
    return value


def encode_order(order: Order) -> bytes:
    """The order's JSON as received, compact, without any secret-looking field at any depth."""
    return json.dumps(scrubbed(order.raw), separators=(",", ":")).encode()


def stored_order(data: str | bytes, order_id: str) -> Order:
    """The order `encode_order` wrote for the watch of `order_id`, decoded as its lookup was:
    an answer without an `OrderId` was taken as the one asked for, and is again."""
    return order_from_json(json.loads(data), order_id)


_ERROR_TYPES: dict[str, type[TelegentError]] = {
    name: value
    for name, value in vars(_errors).items()
    if isinstance(value, type) and issubclass(value, TelegentError)
}
_ERROR_FIELDS = (
    "status_code",
    "message",
    "body",
    "retry_after",
    "order_id",
    "timeout",
    "polled",
    "call",
    "how_to_check",
)
_ORDER_FIELDS = ("last_order", "order")
#: An error's `__cause__` (a `TelegentError`), a record too: `OrderWaitTimeout`'s last failure,
#: `SubmitOutcomeUnknownError`'s last attempt (its `cause` attribute, kept even when it was
#: raised `from None`).
_CAUSE = "cause"
#: How many causes deep a record goes: a chain the SDK makes is one or two long; a cycle
#: (`raise e from e`) ends here instead of in a RecursionError.
_CAUSE_DEPTH = 8


def encode_error(error: TelegentError) -> str:
    """Versioned JSON that `decode_error` turns back into the same class with the same fields."""
    return json.dumps(_error_record(error, _CAUSE_DEPTH), separators=(",", ":"), default=str)


def _error_record(error: TelegentError, depth: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: scrubbed(getattr(error, name)) for name in _ERROR_FIELDS if hasattr(error, name)
    }
    for name in _ORDER_FIELDS:
        value = getattr(error, name, None)
        if isinstance(value, Order):
            fields[name] = json.loads(encode_order(value))
        elif hasattr(error, name):
            fields[name] = None
    cause = error.__cause__ if error.__cause__ is not None else getattr(error, _CAUSE, None)
    if isinstance(cause, TelegentError) and depth > 1:
        fields[_CAUSE] = _error_record(cause, depth - 1)
    return {"v": RECORD_VERSION, "type": type(error).__name__, "text": str(error), "fields": fields}


def decode_error(text: str | bytes, order_id: str) -> TelegentError:
    """The error `encode_error` wrote for the outcome of `order_id` (an unknown class comes
    back as `TelegentError`); an order it carries is decoded as `stored_order` decodes the
    outcome's: one without an `OrderId` is `order_id`'s."""
    return _error_of(json.loads(text), order_id)


def _error_of(record: Any, order_id: str) -> TelegentError:
    if record.get("v") != RECORD_VERSION:
        raise ValueError(f"unsupported stored error version {record.get('v')!r}")
    cls = _ERROR_TYPES.get(record["type"], TelegentError)
    error = cls.__new__(cls)
    error.args = (record["text"],)
    for name, value in record["fields"].items():
        if name in _ORDER_FIELDS and value is not None:
            value = order_from_json(value, order_id)
        elif name == _CAUSE:
            value = error.__cause__ = _error_of(value, order_id)
            if not isinstance(error, SubmitOutcomeUnknownError):
                continue  # the cause of the others is their `__cause__` alone
        setattr(error, name, value)
    if isinstance(error, OrderFailed):
        error.carrier_error = error.order.carrier_error
    return error


def _field(data: Any, name: str, kind: type[_F], of: str) -> _F:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind):
        raise ValueError(f"not what {of}.to_json() writes: {name!r} missing or not a {kind}")
    return value
