"""What a command fills while it runs (`Run`: a `Tally` of outcomes by group, `client.stats`,
requests per second), read by the progress line, the report, the exit status and `--json`."""

from __future__ import annotations

import collections
import enum
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._carrier import RESUBMIT_FIELD, CarrierError, NextStep
from .._errors import NotFoundError, OrderWaitTimeout, TelegentError
from .._models import Order, OrderOutcome, OrderStatus, converter
from .._stats import ClientStats
from .._stores.base import WatchState

if TYPE_CHECKING:
    from ._demo import DemoSettings

PROG: Final = "telegent-orders"


class Group(enum.Enum):
    """How one order ended, as the report groups it (in report order)."""

    COMPLETED = "completed"
    PENDING = "pending"
    FAILED = "failed"
    NEEDS_ACTION = "needs action"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"
    NOT_FOUND = "not found"
    ERROR = "other errors"


_GROUP_BY_STATUS: Final = {
    OrderStatus.COMPLETE: Group.COMPLETED,
    OrderStatus.ERROR: Group.FAILED,
    OrderStatus.REJECTED: Group.NEEDS_ACTION,
    OrderStatus.RESOLUTION_REQUIRED: Group.NEEDS_ACTION,
    OrderStatus.CANCELLED: Group.CANCELLED,
}


def classify(outcome: OrderOutcome) -> Group:
    error = outcome.error
    if isinstance(error, OrderWaitTimeout):
        return Group.TIMED_OUT
    if isinstance(error, NotFoundError):
        return Group.NOT_FOUND
    if error is not None or outcome.order is None:
        return Group.ERROR
    return _GROUP_BY_STATUS.get(outcome.order.status, Group.PENDING)


def carrier_of(outcome: OrderOutcome) -> CarrierError | None:
    """The outcome's decoded carrier message, if it has an order with one."""
    return outcome.order.carrier_error if outcome.order is not None else None


#: How `update` takes each `update_port_in` keyword: its option and the placeholder a report
#: shows. The account number and PIN are read from environment variables, never from argv.
UPDATE_OPTIONS: Final = {
    "current_account_number": ("--account-number-env", "ACCOUNT_NUMBER"),
    "current_account_password": ("--pin-env", "ACCOUNT_PIN"),
    "current_carrier_name": ("--carrier-name", "'CARRIER'"),
    "subscriber_name": ("--subscriber-name", "'NAME ON THE ACCOUNT'"),
    "port_in_date": ("--port-in-date", "YYYY-MM-DD"),
    "current_billing_address": ("--zip", "ZIP"),
    "iccid": ("--iccid", "ICCID"),
    "target_portin_classification": ("--classification", "Mobile"),
}


def fix_of(order: Order | None) -> tuple[NextStep, str] | None:
    """The next step of a port-in needing action (the carrier codes' strongest `next_step`) and
    the command line that takes it, with placeholders, never a value; None if none is needed."""
    step = order.next_step if order is not None else None
    if order is None or step is None:
        return None
    errors = order.carrier_errors
    order_id = shlex.quote(order.order_id)
    codes = "/".join(dict.fromkeys(e.code or "no code" for e in errors)) or "no code"
    fields = list(dict.fromkeys(field for error in errors for field in error.update_fields))
    if step is NextStep.UPDATE:
        if fields:
            return step, f"{PROG} update {order_id} {_options(fields)}"
        return step, f"{PROG} update {order_id} FIELD  # {codes}: the reason names what to correct"
    if step is NextStep.UPDATE_AFTER_SUBSCRIBER:
        options = _options(fields or [RESUBMIT_FIELD])
        why = f"{codes}: once the subscriber has acted (see the remedy), this resubmits"
        return step, f"{PROG} update {order_id} {options}  # {why}"
    if step is NextStep.CANCEL_AND_SUBMIT:
        return step, f"{PROG} cancel {order_id} --yes  # {codes}: then submit a new port-in"
    return step, f"# {order_id}: {codes}: open a ticket with Telegent support (see the remedy)"


def _options(fields: Sequence[str]) -> str:
    return " ".join(" ".join(UPDATE_OPTIONS[field]) for field in fields)


class Tally:
    """The outcomes so far, counted by group; read by the progress line and the report."""

    def __init__(self, order_ids: Sequence[str]) -> None:
        self.order_ids = list(dict.fromkeys(order_ids))
        self._position = {order_id: i for i, order_id in enumerate(self.order_ids)}
        self.counts: collections.Counter[Group] = collections.Counter()
        self.rows: list[tuple[Group, OrderOutcome]] = []

    @property
    def total(self) -> int:
        return len(self.order_ids)

    @property
    def done(self) -> int:
        return len(self.rows)

    def add(self, outcome: OrderOutcome) -> Group:
        group = classify(outcome)
        self.counts[group] += 1
        self.rows.append((group, outcome))
        return group

    def by_group(self) -> dict[Group, list[OrderOutcome]]:
        """Outcomes per group in report order; in a group by carrier code, then as given."""

        def key(outcome: OrderOutcome) -> tuple[str, int]:
            carrier = carrier_of(outcome)
            code = (carrier.code or "~") if carrier else ""
            return code, self._position.get(outcome.order_id, 0)

        grouped: dict[Group, list[OrderOutcome]] = {group: [] for group in Group}
        for group, outcome in self.rows:
            grouped[group].append(outcome)
        for outcomes in grouped.values():
            outcomes.sort(key=key)
        return {group: outcomes for group, outcomes in grouped.items() if outcomes}


def busiest_window(per_second: collections.Counter[int], window: int) -> int:
    """The most requests sent within `window` consecutive whole seconds: what a budget per
    rolling window is measured against (not the average: a short run may send it all at once)."""
    seconds = sorted(per_second)
    best = total = 0
    first = 0
    for second in seconds:
        total += per_second[second]
        while seconds[first] <= second - window:
            total -= per_second[seconds[first]]
            first += 1
        best = max(best, total)
    return best


@attrs.define
class Run:
    """One command's state, filled while it runs and reported once it ends (or is stopped)."""

    command: str
    tally: Tally
    stats: ClientStats | None = None  # the client's counters, as it closed
    sent_per_second: collections.Counter[int] = attrs.field(factory=collections.Counter)
    _noted: int = 0
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    interrupted: bool = False
    setup_error: TelegentError | None = None
    budget_rpm: float | None = None
    demo: DemoSettings | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def note_sent(self, requests: int) -> None:
        """`requests` sent so far: those since the last note count in this second."""
        self.sent_per_second[int(time.monotonic())] += requests - self._noted
        self._noted = requests


def outcome_json(outcome: OrderOutcome, group: Group) -> dict[str, Any]:
    """One `--json` line: `OrderOutcome.to_json()` plus what the report says of it: its group
    (`outcome`), status, decoded carrier code and the command that would fix it."""
    order, carrier = outcome.order, carrier_of(outcome)
    reason = carrier.reason if carrier is not None else None
    if reason is None and order is not None:
        reason = order.status_message
    fix = fix_of(order)
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
        "fix_command": fix[1] if fix is not None else None,
    }


def state_json(state: WatchState) -> dict[str, Any]:
    """One `watch list --json` line: the `WatchState` through the package's converter."""
    row: dict[str, Any] = converter.unstructure(state)
    del row["last_order"]
    order = state.last_order
    row["raw_status"] = order.raw_status if order is not None else None
    row["error"] = named(state.error) if state.error else None
    row["last_error"] = named(state.last_error) if state.last_error else None
    return row


def named(error: BaseException) -> str:
    """An error as the CLI names it: its class, then its words (`NotFoundError: HTTP 404 ...`)."""
    return f"{type(error).__name__}: {error}"


def code_json(carrier: CarrierError) -> dict[str, Any]:
    """One `codes --json` line: the `CarrierError` unstructured, `reason` as `name`, no `raw`."""
    row: dict[str, Any] = converter.unstructure(carrier)
    row["name"] = row.pop("reason")
    del row["raw"]
    return row
