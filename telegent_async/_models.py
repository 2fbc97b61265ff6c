"""Typed results and their tolerant decoding from Telegent's JSON (pure, no I/O).

Telegent's documentation shows several shapes for the same order; decoding accepts all of
them, keeps the JSON object as received in `Order.raw`, and fails only when a body is not an
order at all (`ResponseDecodeError`).
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import cattrs

from ._carrier import CarrierError, decode_carrier_message
from ._errors import OrderFailed, ResponseDecodeError, TelegentError
from ._timing import parse_timestamp

__all__ = ["Order", "OrderOutcome", "OrderStatus", "converter", "decode_order", "parse_status"]

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
_unknown_statuses_logged: set[str] = set()
_MAX_UNKNOWN_LOGGED = 256


def parse_status(raw_status: str) -> OrderStatus:
    """Map a status as the API spells it, case- and space-insensitively; unknown -> UNKNOWN.

    An unknown status is logged once (a new status in the API is worth an operator's look)
    and treated as still pending by every waiter.
    """
    status = _STATUS_EXACT.get(raw_status) or _STATUS_BY_KEY.get(_status_key(raw_status))
    if status is not None:
        return status
    if (
        raw_status not in _unknown_statuses_logged
        and len(_unknown_statuses_logged) < _MAX_UNKNOWN_LOGGED
    ):
        _unknown_statuses_logged.add(raw_status)
        logger.warning("unknown order status %r: treated as pending", raw_status[:100])
    return OrderStatus.UNKNOWN


@attrs.frozen
class Order:
    """One observation of an order, as `GET /numbers/order` reported it."""

    order_id: str
    status: OrderStatus
    raw_status: str
    order_type: str | None = None
    order_date: datetime | None = None
    status_message: str | None = None
    carrier_error: CarrierError | None = None
    phone_numbers: tuple[str, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)

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
        """REJECTED or RESOLUTION_REQUIRED: fix it with `POST /numbers/portin/update`, or cancel."""
        return self.status in _NEEDS_ACTION

    def raise_for_status(self) -> Order:
        """Return the order if it succeeded, else raise `OrderFailed` (pending ones too)."""
        if self.status is not OrderStatus.COMPLETE:
            raise OrderFailed(self)
        return self


@attrs.frozen
class OrderOutcome:
    """How waiting for (or looking up) one order ended: an `order`, an `error`, or both.

    `order` is the last observation (set even when the wait timed out); `error` is set when
    the lookup or the wait failed; `tag` is the caller's label, from an `OrderWatcher` watch.
    """

    order_id: str
    order: Order | None = None
    error: TelegentError | None = attrs.field(default=None, eq=False)
    tag: str | None = None

    @property
    def ok(self) -> bool:
        """True when there is no error and the order succeeded."""
        return self.error is None and self.order is not None and self.order.succeeded


def _text(value: object) -> str | None:
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
            number = _text(entry.get("Number")) if isinstance(entry, dict) else _text(entry)
            if number:
                numbers.append(number)
    if not numbers and (assigned := _text(body.get("PhoneNumberAssigned"))):
        numbers.append(assigned)
    return tuple(numbers)


def _structure_order(body: Mapping[str, Any], _cls: type[Order]) -> Order:
    order_id = _text(body.get("OrderId"))
    raw_status = _text(body.get("OrderStatus"))
    if not order_id or raw_status is None:
        raise ValueError("not an order: OrderId and OrderStatus are required")
    status = parse_status(raw_status)
    message = _text(body.get("OrderStatusMessage")) or _text(body.get("ErrorMessage"))
    return Order(
        order_id=order_id,
        status=status,
        raw_status=raw_status,
        order_type=_text(body.get("OrderType")),
        order_date=parse_timestamp(body.get("OrderDate")),
        status_message=message,
        carrier_error=decode_carrier_message(message) if status in _CARRIES_REASON else None,
        phone_numbers=_phone_numbers(body),
        raw=body,
    )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_structure_hook(Order, _structure_order)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_unstructure_hook(enum.Enum, lambda member: member.name)
    conv.register_unstructure_hook(TelegentError, str)
    return conv


#: The one converter: `converter.structure(json_object, Order)` and
#: `converter.unstructure(order_or_outcome)` (JSON-ready; used by the CLI's `--json`).
converter = _make_converter()


def decode_order(status_code: int, body: bytes) -> Order:
    """An `Order` from a 200 body, or `ResponseDecodeError` with the status and body excerpt."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return converter.structure(data, Order)
    except (ValueError, RecursionError) as exc:
        text = body[:500].decode("utf-8", "replace")
        raise ResponseDecodeError(
            f"expected an order object: {exc}", status_code=status_code, body=text
        ) from None
