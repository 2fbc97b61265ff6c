"""The JSON a store keeps: orders as received (minus any secret-looking field), poll policies,
and errors as versioned records, all read back through the package's one cattrs converter.
Never pickle, never a token or a secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import attrs

from .. import _errors
from .._errors import OrderFailed, TelegentError
from .._models import Order, OrderOutcome, converter, decode_order
from .._timing import PollPolicy
from .base import WatchState

__all__ = [
    "RECORD_VERSION",
    "PolicyJSON",
    "decode_error",
    "encode_error",
    "encode_order",
    "kept_outcome",
    "order_from_json",
    "order_json",
    "outcome_from_json",
    "outcome_json",
    "scrubbed",
    "stored_outcome",
    "stored_state",
]

_F = TypeVar("_F")

#: Version of the stored JSON records (errors; the SQLite schema carries it too).
RECORD_VERSION = 1
#: Fields an order body must never bring into a store, should a server ever echo them.
_SECRET_KEYS = frozenset(
    key.casefold()
    for key in (
        "AccountKey",
        "AccountSecret",
        "access_token",
        "Authorization",
        "CurrentAccountNumber",
        "CurrentAccountPassword",
        "Password",
        "Pin",
        "token",
    )
)


def scrubbed(value: Any) -> Any:
    """`value` without any secret-looking key, at every depth of its dicts and lists (the one
    rule every stored record goes through: orders, and the bodies errors carry)."""
    if isinstance(value, Mapping):
        return {
            key: scrubbed(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key.casefold() in _SECRET_KEYS)
        }
    if isinstance(value, (list, tuple)):
        return [scrubbed(item) for item in value]
    return value


def encode_order(order: Order) -> bytes:
    """The order's JSON as received, compact, without any secret-looking field at any depth."""
    return json.dumps(scrubbed(order.raw), separators=(",", ":")).encode()


def kept_outcome(outcome: OrderOutcome) -> OrderOutcome:
    """`outcome` as a store keeps it (a `MemoryStore` too, though it keeps objects): order and
    error as the other stores read them back, without anything secret-looking."""
    order, error = outcome.order, outcome.error
    if order is not None:
        raw = scrubbed(order.raw)
        order = order if raw == order.raw else attrs.evolve(order, raw=raw)
    if error is not None:
        error = decode_error(encode_error(error))
    return attrs.evolve(outcome, order=order, error=error)


class PolicyJSON:
    """Poll policies as stores keep them, as JSON; each distinct policy is encoded and decoded
    once per store (the watches of a fan-out share one or two)."""

    __slots__ = ("_policies", "_texts")

    def __init__(self) -> None:
        self._texts: dict[PollPolicy, str] = {}
        self._policies: dict[str | bytes, PollPolicy] = {}

    def encode(self, policy: PollPolicy | None) -> str | None:
        if policy is None:
            return None
        text = self._texts.get(policy)
        if text is None:
            text = self._texts[policy] = json.dumps(
                converter.unstructure(policy), separators=(",", ":")
            )
        return text

    def decode(self, text: str | bytes | None) -> PollPolicy | None:
        if text is None:
            return None
        policy = self._policies.get(text)
        if policy is None:
            policy = self._policies[text] = converter.structure(json.loads(text), PollPolicy)
        return policy


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
)
_ORDER_FIELDS = ("last_order", "order")


def encode_error(error: TelegentError) -> str:
    """Versioned JSON that `decode_error` turns back into the same class with the same fields."""
    fields: dict[str, Any] = {
        name: scrubbed(getattr(error, name)) for name in _ERROR_FIELDS if hasattr(error, name)
    }
    for name in _ORDER_FIELDS:
        value = getattr(error, name, None)
        if isinstance(value, Order):
            fields[name] = json.loads(encode_order(value))
        elif hasattr(error, name):
            fields[name] = None
    record = {"v": RECORD_VERSION, "type": type(error).__name__, "text": str(error)}
    record["fields"] = fields
    return json.dumps(record, separators=(",", ":"), default=str)


def decode_error(text: str | bytes) -> TelegentError:
    """The error `encode_error` wrote (an unknown class comes back as `TelegentError`)."""
    record = json.loads(text)
    if record.get("v") != RECORD_VERSION:
        raise ValueError(f"unsupported stored error version {record.get('v')!r}")
    cls = _ERROR_TYPES.get(record["type"], TelegentError)
    error = cls.__new__(cls)
    error.args = (record["text"],)
    for name, value in record["fields"].items():
        if name in _ORDER_FIELDS and value is not None:
            value = converter.structure(value, Order)
        setattr(error, name, value)
    if isinstance(error, OrderFailed):
        error.carrier_error = error.order.carrier_error
    return error


def stored_outcome(
    order_id: str, order: bytes | None, error: str | bytes | None, tag: str | None
) -> OrderOutcome:
    """An outcome from what a store kept of it: the order's and the error's JSON."""
    last = None if order is None else decode_order(200, order)
    return OrderOutcome(order_id, last, None if error is None else decode_error(error), tag)


def stored_state(
    outcome: OrderOutcome,
    attempts: int,
    next_poll: float | None,
    *,
    settled: bool,
    acknowledged: bool,
) -> WatchState:
    """A watch from what a store kept of it (`stored_outcome` holds its last order, error and
    tag; the status is the last order's); `next_poll` in seconds since the epoch."""
    last = outcome.order
    return WatchState(
        outcome.order_id,
        outcome.tag,
        None if last is None else last.status,
        last,
        attempts,
        None if next_poll is None else datetime.fromtimestamp(next_poll, timezone.utc),
        settled,
        acknowledged,
        outcome.error,
    )


def order_json(order: Order) -> dict[str, Any]:
    """`Order.to_json()`: every field through the package's converter, `raw` as a store keeps
    it (without any secret-looking field)."""
    data: dict[str, Any] = converter.unstructure(order)
    data["raw"] = json.loads(encode_order(order))
    return data


def order_from_json(data: Any) -> Order:
    """`Order.from_json()`: the order decoded again from the `raw` that `order_json` kept (the
    other fields are derived from it, as when it was received)."""
    raw, order_id = _field(data, "raw", dict, "Order"), _field(data, "order_id", str, "Order")
    if "OrderId" in raw:
        return converter.structure(raw, Order)
    return attrs.evolve(converter.structure({**raw, "OrderId": order_id}, Order), raw=raw)


def outcome_json(outcome: OrderOutcome) -> dict[str, Any]:
    """`OrderOutcome.to_json()`: its order as `order_json`, its error as a store keeps it."""
    order, error = outcome.order, outcome.error
    return {
        "order_id": outcome.order_id,
        "ok": outcome.ok,
        "tag": outcome.tag,
        "order": None if order is None else order_json(order),
        "error": None if error is None else json.loads(encode_error(error)),
    }


def outcome_from_json(data: Any) -> OrderOutcome:
    """`OrderOutcome.from_json()`: the outcome `outcome_json` wrote."""
    order_id = _field(data, "order_id", str, "OrderOutcome")
    order, error, tag = data.get("order"), data.get("error"), data.get("tag")
    return OrderOutcome(
        order_id,
        None if order is None else order_from_json(order),
        None if error is None else decode_error(json.dumps(error)),
        tag if isinstance(tag, str) else None,
    )


def _field(data: Any, name: str, kind: type[_F], of: str) -> _F:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind):
        raise ValueError(f"not what {of}.to_json() writes: {name!r} missing or not a {kind}")
    return value
