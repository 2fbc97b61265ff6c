"""The JSON a store keeps: orders as received (minus any secret-looking field), poll policies,
and errors as versioned records (their codec is `_models`': the package's one JSON of orders,
outcomes and errors), all read back through the package's one cattrs converter. Never pickle,
never a token or a secret.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import attrs

from .._models import (
    RECORD_VERSION,
    OrderOutcome,
    converter,
    decode_error,
    encode_error,
    encode_order,
    scrubbed,
    stored_order,
)
from .._timing import PollPolicy
from .base import WatchState

__all__ = [
    "RECORD_VERSION",
    "PolicyJSON",
    "decode_error",
    "encode_error",
    "encode_order",
    "kept_outcome",
    "scrubbed",
    "stored_outcome",
    "stored_state",
]


def kept_outcome(outcome: OrderOutcome) -> OrderOutcome:
    """`outcome` as a store keeps it (a `MemoryStore` too, though it keeps objects): order and
    error as the other stores read them back, without anything secret-looking."""
    order, error = outcome.order, outcome.error
    if order is not None:
        raw = scrubbed(order.raw)
        order = order if raw == order.raw else attrs.evolve(order, raw=raw)
    if error is not None:
        error = decode_error(encode_error(error), outcome.order_id)
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


def stored_outcome(
    order_id: str, order: bytes | None, error: str | bytes | None, tag: str | None
) -> OrderOutcome:
    """An outcome from what a store kept of it: the order's and the error's JSON."""
    last = None if order is None else stored_order(order, order_id)
    failure = None if error is None else decode_error(error, order_id)
    return OrderOutcome(order_id, last, failure, tag)


#: The latest time a datetime holds: a next poll past it (a policy's interval or a lease of
#: centuries: any finite number is one) reads back as this one.
_LATEST = datetime.max.replace(tzinfo=timezone.utc)


def _when(at: float) -> datetime:
    """`at` (seconds since the epoch) as an aware datetime; `_LATEST` if it lies past it."""
    try:
        return datetime.fromtimestamp(at, timezone.utc)
    except (OverflowError, ValueError):  # "year 33715 is out of range"
        return _LATEST


def stored_state(
    outcome: OrderOutcome,
    attempts: int,
    next_poll: float | None,
    *,
    settled: bool,
    acknowledged: bool,
    failure: str | bytes | None = None,
) -> WatchState:
    """A watch from what a store kept of it (`stored_outcome` holds its last order, error and
    tag; the status is the last order's); `next_poll` in seconds since the epoch; `failure`:
    the JSON of its last poll's failure (`encode_error`), if it failed, which a settled watch
    does not have (one a 0.2.0 worker settled on Redis may still hold the field)."""
    last = outcome.order
    last_error = None if settled or failure is None else decode_error(failure, outcome.order_id)
    return WatchState(
        outcome.order_id,
        outcome.tag,
        None if last is None else last.status,
        last,
        attempts,
        None if next_poll is None else _when(next_poll),
        settled,
        acknowledged,
        outcome.error,
        last_error,
    )
