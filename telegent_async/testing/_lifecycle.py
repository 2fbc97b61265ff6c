"""Scripted order lifecycles: the statuses an order shows as time passes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs


@attrs.frozen
class Step:
    """One point of a scripted lifecycle.

    Attributes:
        status: The OrderStatus shown from then on.
        at: Seconds after `add_order` (or an update) when it becomes visible.
    """

    status: str
    at: float = 0.0


def checked_steps(steps: Sequence[Step], what: str = "a lifecycle") -> tuple[Step, ...]:
    """The Steps sorted by time, refused if empty, not Steps, or at a negative or odd time."""
    lifecycle = tuple(sorted(steps, key=lambda s: s.at))
    if not lifecycle:
        raise ValueError(f"{what} needs at least one Step")
    for step in lifecycle:
        if not isinstance(step, Step):
            raise TypeError(f"expected Step, got {type(step).__name__}")
        if not (step.at >= 0 and math.isfinite(step.at)):
            raise ValueError(f"Step.at must be a finite number >= 0, got {step.at!r}")
    return lifecycle


@attrs.define(eq=False)
class Order:
    """A scripted order; slotted (attrs' default) because benchmarks add 100,000 of them."""

    order_id: str
    steps: tuple[Step, ...]
    message: str | None
    order_type: str | None
    phone_numbers: tuple[str, ...]
    extra: Mapping[str, Any] | None
    added_at: float
    added_wall: float
    settled_body: bytes | None = None

    def status_at(self, now: float) -> str:
        elapsed = now - self.added_at
        status = self.steps[0].status
        for step in self.steps:
            if step.at <= elapsed:
                status = step.status
            else:
                break
        return status

    def as_dict(self, now: float) -> dict[str, Any]:
        status = self.status_at(now)
        settled = self.steps[-1].at <= now - self.added_at
        body = order_dict(
            self.order_id,
            iso(self.added_wall),
            status,
            self.message if settled else None,
            self.order_type,
            self.phone_numbers,
        )
        if self.extra:
            body.update(self.extra)
        return body

    def restart(self, steps: tuple[Step, ...], message: str | None, now: float) -> None:
        """Go through a new lifecycle from `now` (after an update or a cancel)."""
        self.steps, self.message, self.added_at = steps, message, now
        self.settled_body = None

    def body(self, now: float) -> bytes:
        """Encode the order as seen at `now`; cached once settled since it no longer changes."""
        if self.settled_body is not None:
            return self.settled_body
        encoded = json.dumps(self.as_dict(now)).encode()
        if self.steps[-1].at <= now - self.added_at:
            self.settled_body = encoded
        return encoded


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat()


def order_dict(
    order_id: str,
    order_date: str,
    status: str,
    message: str | None,
    order_type: str | None,
    phone_numbers: Sequence[str],
) -> dict[str, Any]:
    """An order as the API encodes it."""
    return {
        "OrderId": order_id,
        "OrderDate": order_date,
        "OrderStatus": status,
        "OrderStatusMessage": message,
        "OrderType": order_type,
        "PhoneNumbersOrdered": [{"Number": n} for n in phone_numbers],
        "ErrorMessage": None,
    }
