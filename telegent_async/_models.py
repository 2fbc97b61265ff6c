"""Typed results and their tolerant decoding from Telegent's JSON (pure, no I/O).

Telegent's documentation shows several shapes for the same order; decoding accepts all of
them, keeps the JSON object as received in `Order.raw`, and fails only when a body is not an
order at all (`ResponseDecodeError`).
"""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import cattrs

from ._answers import read_answer
from ._carrier import CarrierError, NextStep, decode_carrier_messages, next_step_of
from ._errors import OrderFailed, ResponseDecodeError, TelegentError, body_excerpt
from ._timing import parse_timestamp

__all__ = [
    "Order",
    "OrderOutcome",
    "OrderStatus",
    "converter",
    "decode_order",
    "order_from_json",
    "parse_status",
]

logger = logging.getLogger("telegent_async")


class OrderStatus(enum.Enum):
    """An order's status, whatever spelling the API used (see `Order.raw_status`)."""

    PENDING = "Pending"
    SUBMITTED = "Submitted"
    PENDING_CARRIER_APPROVAL = "Pending Carrier Approval"
    SCHEDULED = "Scheduled"
    IN_PROGRESS = "InProgress"
    COMPLETE = "Complete"
    ERROR = "Error"
    REJECTED = "Rejected"
    RESOLUTION_REQUIRED = "ResolutionRequired"
    CANCELLED = "Cancelled"
    UNKNOWN = "Unknown"

    @property
    def is_settled(self) -> bool:
        """True once the order will not change without someone acting on it."""
        return self in _SETTLED


_SETTLED = frozenset(
    {
        OrderStatus.COMPLETE,
        OrderStatus.ERROR,
        OrderStatus.REJECTED,
        OrderStatus.RESOLUTION_REQUIRED,
        OrderStatus.CANCELLED,
    }
)
_NEEDS_ACTION = frozenset({OrderStatus.REJECTED, OrderStatus.RESOLUTION_REQUIRED})
_CARRIES_REASON = frozenset({OrderStatus.ERROR, *_NEEDS_ACTION})


def _status_key(text: str) -> str:
    return "".join(text.split()).replace("_", "").replace("-", "").casefold()


_STATUS_BY_KEY: dict[str, OrderStatus] = {
    _status_key(member.value): member for member in OrderStatus if member is not OrderStatus.UNKNOWN
}
_STATUS_BY_KEY.update(
    completed=OrderStatus.COMPLETE,
    failed=OrderStatus.ERROR,
    canceled=OrderStatus.CANCELLED,
)
#: The spellings Telegent actually sends, looked up before any normalising.
_STATUS_EXACT: dict[str, OrderStatus] = {
    **{member.value: member for member in OrderStatus if member is not OrderStatus.UNKNOWN},
    "Completed": OrderStatus.COMPLETE,
    "Failed": OrderStatus.ERROR,
}
#: The unknown statuses logged lately, least recent first: bounded, yet a new one is always logged.
_unknown_statuses_logged: collections.OrderedDict[str, None] = collections.OrderedDict()
_MAX_UNKNOWN_LOGGED = 256


def parse_status(raw_status: str) -> OrderStatus:
    """Map a status as the API spells it, case- and space-insensitively; unknown -> UNKNOWN.

    An unknown status is logged once (a new status in the API is worth an operator's look)
    and treated as still pending by every waiter.
    """
    status = _STATUS_EXACT.get(raw_status) or _STATUS_BY_KEY.get(_status_key(raw_status))
    if status is not None:
        return status
    _log_unknown_status(raw_status)
    return OrderStatus.UNKNOWN


def _log_unknown_status(raw_status: str) -> None:
    """Log a status once while it stays among the last `_MAX_UNKNOWN_LOGGED` seen (an LRU).

    Kept (and logged) by its first 100 characters: a hostile server's megabyte-long statuses
    must not fill the memory.
    """
    shown = raw_status[:100]
    seen = _unknown_statuses_logged
    if shown in seen:
        seen.move_to_end(shown)
        return
    seen[shown] = None
    if len(seen) > _MAX_UNKNOWN_LOGGED:
        seen.popitem(last=False)
    logger.warning("unknown order status %r: treated as pending", shown)


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
        return self.status in _SETTLED

    @property
    def succeeded(self) -> bool:
        """COMPLETE (spelled `Complete` or `Completed`)."""
        return self.status is OrderStatus.COMPLETE

    @property
    def failed(self) -> bool:
        """Settled without success (ERROR, REJECTED, RESOLUTION_REQUIRED or CANCELLED)."""
        return self.status in _SETTLED and self.status is not OrderStatus.COMPLETE

    @property
    def needs_action(self) -> bool:
        """REJECTED or RESOLUTION_REQUIRED: fix it with `update_port_in`, or `cancel_port_in`."""
        return self.status in _NEEDS_ACTION

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
        from ._stores.records import order_json

        return order_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Order:
        """The order `to_json` wrote: decoded again from its `raw`, so every other field is
        derived as when it was received. `ValueError` when `data` is not such an object.

        Args:
            data: What `to_json` returned (or its `json.loads`).
        """
        from ._stores.records import order_from_json

        return order_from_json(data)


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
        from ._stores.records import outcome_json

        return outcome_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderOutcome:
        """The outcome `to_json` wrote. `ValueError` when `data` is not such an object.

        Args:
            data: What `to_json` returned (or its `json.loads`).
        """
        from ._stores.records import outcome_from_json

        return outcome_from_json(data)


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
    order_id = _json_text(body.get("OrderId"))
    raw_status = _json_text(body.get("OrderStatus"))
    if not order_id or raw_status is None:
        raise ValueError("not an order: OrderId and OrderStatus are required")
    status = parse_status(raw_status)
    message = _json_text(body.get("OrderStatusMessage")) or _json_text(body.get("ErrorMessage"))
    errors = decode_carrier_messages(message) if status in _CARRIES_REASON else ()
    return Order(
        order_id=order_id,
        status=status,
        raw_status=raw_status,
        order_type=_json_text(body.get("OrderType")),
        order_date=parse_timestamp(body.get("OrderDate")),
        status_message=message,
        carrier_error=errors[0] if errors else None,
        phone_numbers=_phone_numbers(body),
        raw=body,
        carrier_errors=errors,
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
    if order_id is None:
        return converter.structure(data, Order)
    answered = data.get("OrderId")
    if answered is None:
        return attrs.evolve(converter.structure({**data, "OrderId": order_id}, Order), raw=data)
    text = _json_text(answered)
    if text is not None and text != order_id and _id_key(text) != _id_key(order_id):
        raise ValueError(f"the answer is about order {text[:100]!r}, not {order_id!r}")
    return converter.structure(data, Order)


def decode_order(status_code: int, body: bytes, order_id: str | None = None) -> Order:
    """An `Order` from a 2xx body read as the send path reads it, or the error it stands for.

    An error body inside the 2xx (`{"StatusCode": 404, "Message": ...}`) raises the
    `APIStatusError` of the status it carries; a body that is not an order (or is about
    another order than `order_id`) raises `ResponseDecodeError`.
    """
    value = read_answer(status_code, None, body)
    if isinstance(value, TelegentError):
        raise value
    try:
        return order_from_json(value, order_id)
    except (ValueError, RecursionError) as exc:
        raise ResponseDecodeError(
            f"expected an order object: {exc}",
            status_code=status_code,
            body=body_excerpt(body),
        ) from None


def _id_key(order_id: str) -> str:
    return order_id.strip().casefold()
