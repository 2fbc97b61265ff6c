"""`--json` output: one object per order (or per watch), the same keys wherever written."""

from __future__ import annotations

from typing import Any

from .._models import OrderOutcome, converter
from .._stores.base import WatchState
from ._outcomes import Group, carrier_of, fix_command


def outcome_json(outcome: OrderOutcome, group: Group) -> dict[str, Any]:
    """One `--json` line: `OrderOutcome.to_json()` (the library's own JSON of the outcome:
    `order_id`, `ok`, `tag`, `order`, `error`), plus what the report says of it: its group
    (`outcome`), status, decoded carrier code and the command that would fix it."""
    order = outcome.order
    carrier = carrier_of(outcome)
    reason = carrier.reason if carrier is not None else None
    if reason is None and order is not None:
        reason = order.status_message
    return {
        **outcome.to_json(),
        "outcome": group.name.lower(),
        "status": order.status.name if order is not None else None,
        "raw_status": order.raw_status if order is not None else None,
        "carrier_code": carrier.code if carrier is not None else None,
        "reason": reason,
        "description": carrier.description if carrier is not None else None,
        "remedy": carrier.remedy if carrier is not None else None,
        "next_step": order.next_step.value if order is not None and order.next_step else None,
        "fix_command": fix_command(order),
    }


def state_json(state: WatchState) -> dict[str, Any]:
    """One `watch list --json` line: the `WatchState` through the package's converter."""
    row: dict[str, Any] = converter.unstructure(state)
    order = state.last_order
    del row["last_order"]
    row["raw_status"] = order.raw_status if order is not None else None
    row["error"] = f"{type(state.error).__name__}: {state.error}" if state.error else None
    return row
