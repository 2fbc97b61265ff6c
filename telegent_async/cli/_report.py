"""What `telegent-orders` shows: the live progress line, the report, JSON lines, exit statuses.

The state a command fills while it runs (`Run`: a `Tally` of outcomes grouped as the report
groups them, a `RequestCounter` fed by an aiohttp TraceConfig) lives here too, since rendering
is all that reads it. Results go to stdout (a report, or one JSON object per order with
`--json`); the progress line and logs go to stderr, so a pipe into `jq` sees nothing but JSON.
Only the standard library (ANSI escapes) on top of the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import enum
import json
import logging
import os
import re
import shlex
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiohttp
import attrs

from ._carrier import CarrierError
from ._client import TelegentClient
from ._errors import (
    AuthenticationError,
    NotFoundError,
    OrderWaitTimeout,
    PermissionDeniedError,
    TelegentError,
)
from ._models import Order, OrderOutcome, OrderStatus
from ._status import RETRY_STATUSES, is_permanent

if TYPE_CHECKING:
    from ._demo import DemoSettings

PROG: Final = "telegent-orders"

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INCOMPLETE: Final = 3
EXIT_INTERRUPTED: Final = 130
#: stdout closed before the results were written (`| head`): 128 + SIGPIPE, as a shell reports
#: a process that SIGPIPE ended; not 1, which means failed orders.
EXIT_BROKEN_PIPE: Final = 141
#: Which exit status wins when several apply: usage/credentials, then incomplete, then failed.
_PRECEDENCE: Final = (EXIT_USAGE, EXIT_INCOMPLETE, EXIT_FAILED, EXIT_OK)


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
_GROUP_NOTES: Final = {
    Group.NEEDS_ACTION: "fix with telegent-orders update (commands below), or cancel",
    Group.TIMED_OUT: "still pending at the deadline; wait again later",
}
_GROUP_COLORS: Final = {
    Group.COMPLETED: "32",
    Group.PENDING: "36",
    Group.FAILED: "31",
    Group.NEEDS_ACTION: "33",
    Group.CANCELLED: "35",
    Group.TIMED_OUT: "33",
    Group.NOT_FOUND: "31",
    Group.ERROR: "31",
}


def is_credentials_error(error: BaseException | None) -> bool:
    return isinstance(error, (AuthenticationError, PermissionDeniedError))


def _carrier_of(outcome: OrderOutcome) -> CarrierError | None:
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


def fix_command(order: Order | None) -> str | None:
    """The `update` command that would fix a port-in needing action (placeholders, no values).

    A rejection no update field can fix (6A, 8B, 6P before the lock is lifted, a 1P whose
    reason names no field) gets the `cancel` command and, as a shell comment, why; an order
    not needing action gets None.
    """
    if order is None or not order.needs_action:
        return None
    fields = dict.fromkeys(field for error in order.carrier_errors for field in error.update_fields)
    order_id = shlex.quote(order.order_id)
    if not fields:
        codes = "/".join(dict.fromkeys(e.code or "no code" for e in order.carrier_errors))
        why = f"{codes or 'no code'}: no update field fixes it, see the remedy"
        return f"{PROG} cancel {order_id} --yes  # {why}"
    options = " ".join(" ".join(UPDATE_OPTIONS[field]) for field in fields)
    return f"{PROG} update {order_id} {options}"


def classify(outcome: OrderOutcome) -> Group:
    error = outcome.error
    if isinstance(error, OrderWaitTimeout):
        return Group.TIMED_OUT
    if isinstance(error, NotFoundError):
        return Group.NOT_FOUND
    if error is not None or outcome.order is None:
        return Group.ERROR
    return _GROUP_BY_STATUS.get(outcome.order.status, Group.PENDING)


def exit_status_of(outcome: OrderOutcome, group: Group) -> int:
    """The exit status one outcome asks for (see `_PRECEDENCE` for how they combine)."""
    if group in (Group.COMPLETED, Group.PENDING):
        return EXIT_OK
    error = outcome.error
    if is_credentials_error(error):
        return EXIT_USAGE
    if group is Group.TIMED_OUT or (error is not None and not is_permanent(error)):
        return EXIT_INCOMPLETE
    return EXIT_FAILED


def combine_exit_statuses(statuses: Sequence[int]) -> int:
    present = set(statuses)
    return next((status for status in _PRECEDENCE if status in present), EXIT_OK)


# -- what happened: outcomes and requests ----------------------------------------------------


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
            carrier = _carrier_of(outcome)
            code = (carrier.code or "~") if carrier else ""
            return code, self._position.get(outcome.order_id, 0)

        grouped: dict[Group, list[OrderOutcome]] = {group: [] for group in Group}
        for group, outcome in self.rows:
            grouped[group].append(outcome)
        for outcomes in grouped.values():
            outcomes.sort(key=key)
        return {group: outcomes for group, outcomes in grouped.items() if outcomes}

    def exit_status(self) -> int:
        return combine_exit_statuses([exit_status_of(o, g) for g, o in self.rows])


class RequestCounter:
    """Counts the requests a session sends and what came back, via an aiohttp TraceConfig."""

    WINDOW = 2.0  # seconds of history behind the "current rate"

    def __init__(self) -> None:
        self.sent = 0
        self.token_requests = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self.connection_errors = 0
        self.retry_after: collections.Counter[str] = collections.Counter()
        self._recent: collections.deque[float] = collections.deque()

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._on_start)
        config.on_request_end.append(self._on_end)
        config.on_request_exception.append(self._on_exception)
        return config

    async def _on_start(
        self,
        _s: aiohttp.ClientSession,
        _c: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        self.sent += 1
        if params.method == "POST":
            self.token_requests += 1
        now = time.monotonic()
        self._recent.append(now)
        self._forget_before(now - self.WINDOW)

    async def _on_end(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        status = params.response.status
        self.statuses[status] += 1
        if status == 429:
            self.retry_after[params.response.headers.get("Retry-After", "none")] += 1

    async def _on_exception(
        self,
        _s: aiohttp.ClientSession,
        _c: SimpleNamespace,
        _params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        self.connection_errors += 1

    def rate(self, now: float, since: float) -> float:
        """Requests per second over the last `WINDOW` seconds (or since `since`, if later)."""
        self._forget_before(now - self.WINDOW)
        span = min(self.WINDOW, now - since)
        return len(self._recent) / span if span > 0.05 else 0.0

    def _forget_before(self, moment: float) -> None:
        recent = self._recent
        while recent and recent[0] < moment:
            recent.popleft()

    @property
    def transient(self) -> dict[str, int]:
        """Answers the client retries (429, 5xx, 408) and connection errors, by kind."""
        found = {str(s): n for s, n in sorted(self.statuses.items()) if s in RETRY_STATUSES}
        if self.connection_errors:
            found["connection error"] = self.connection_errors
        return found


@attrs.define
class Run:
    """One command's state, filled while it runs and reported once it ends (or is stopped)."""

    command: str
    tally: Tally
    counter: RequestCounter = attrs.field(factory=RequestCounter)
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    interrupted: bool = False
    credentials_error: TelegentError | None = None
    budget_rpm: float | None = None
    demo: DemoSettings | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def exit_status(self) -> int:
        if self.credentials_error is not None:
            return EXIT_USAGE
        if self.interrupted:
            return EXIT_INTERRUPTED
        return self.tally.exit_status()


# -- the terminal --------------------------------------------------------------------------


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class Style:
    """ANSI colour, or nothing when the stream is not a colour terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and code and text else text

    def group(self, group: Group, text: str) -> str:
        return self(text, _GROUP_COLORS[group])


class Console:
    """stderr, shared by the progress line and log records: a record first wipes the line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.style = Style(use_color(stream))
        self.fancy = _can_encode(stream, "⠋█░·")
        self._line_shown = False

    def status(self, text: str) -> None:
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._line_shown = True

    def clear(self) -> None:
        if self._line_shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._line_shown = False

    def write(self, text: str) -> None:
        self.clear()
        self.stream.write(text)
        self.stream.flush()


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def setup_logging(verbosity: int, console: Console) -> None:
    """-v: INFO, -vv: DEBUG, for the SDK's own loggers only (aiohttp's stay quiet)."""
    level = logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity == 1 else logging.WARNING
    handler = _ConsoleHandler(console)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    sdk = logging.getLogger("telegent_async")
    sdk.handlers[:] = [handler]
    sdk.setLevel(level)
    sdk.propagate = False


class Progress:
    """A live status line on stderr, redrawn ten times a second; off unless stderr is a tty."""

    INTERVAL = 0.1

    def __init__(self, console: Console, run: Run, client: TelegentClient, *, waiting: bool):
        self.console = console
        self.run = run
        self.client = client
        self.waiting = waiting
        self._frame = 0

    @contextlib.asynccontextmanager
    async def shown(self) -> AsyncIterator[None]:
        if not self.console.interactive:
            yield
            return
        task = asyncio.ensure_future(self._redraw())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.console.clear()

    async def _redraw(self) -> None:
        while True:
            self.console.status(self.line())
            await asyncio.sleep(self.INTERVAL)

    def line(self) -> str:
        console, run, tally = self.console, self.run, self.run.tally
        style, fancy = console.style, console.fancy
        spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if fancy else "|/-\\"
        self._frame += 1
        dot = " · " if fancy else " | "
        now = time.monotonic()
        head = spinner[self._frame % len(spinner)]
        if self.waiting:
            bar = _bar(tally.done, tally.total, fancy, style)
            failed = tally.done - tally.counts[Group.COMPLETED]
            parts = [
                f"{head} {bar} {tally.done:,}/{tally.total:,} settled",
                f"{tally.total - tally.done:,} pending",
                style.group(Group.FAILED, f"{failed:,} failed") if failed else "0 failed",
            ]
        else:
            parts = [f"{head} looking up {tally.total:,} orders"]
        counter = run.counter
        parts += [
            f"{run.elapsed:.1f} s",
            f"{counter.sent:,} requests",
            f"{counter.rate(now, run.started):.0f} req/s",
        ]
        transient = sum(counter.transient.values())
        if transient:
            parts.append(style(f"{transient} retried", "33"))
        budget = self.client.budget
        loop_now = asyncio.get_running_loop().time()
        if budget.paused_until > loop_now:
            parts.append(style(f"paused {budget.paused_until - loop_now:.1f} s by 429", "33;1"))
        elif budget.requests_per_minute and budget.rate < budget.requests_per_minute / 60 * 0.99:
            parts.append(f"pace {budget.rate:.0f}/s after 429")
        return _fit(parts, dot, _columns(console.stream) - 1)


def _columns(stream: TextIO) -> int:
    """The width of the terminal `stream` is on (a fresh pty may say 0: then ask around)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        columns = os.get_terminal_size(stream.fileno()).columns
        if columns > 0:
            return columns
    return shutil.get_terminal_size().columns


def _bar(done: int, total: int, fancy: bool, style: Style) -> str:
    cells = 16
    filled = cells * done // total if total else cells
    full, empty = ("█", "░") if fancy else ("#", "-")
    return style(full * filled, "32") + empty * (cells - filled)


def _visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def wrap(text: str, width: int, indent: str, subsequent: str) -> list[str]:
    """textwrap.wrap that measures text without its ANSI colour codes."""
    lines: list[str] = []
    line = indent
    for word in text.split():
        if line.strip() and _visible_len(line) + 1 + _visible_len(word) > width:
            lines.append(line)
            line = subsequent
        line += ("" if not line.strip() else " ") + word
    return [*lines, line]


def _fit(parts: Sequence[str], separator: str, width: int) -> str:
    """Join parts, dropping whole ones from the end until the visible text fits `width`."""
    shown = list(parts)
    while len(shown) > 1 and _visible_len(separator.join(shown)) > width:
        shown.pop()
    return separator.join(shown)


# -- reports -------------------------------------------------------------------------------


def outcome_json(outcome: OrderOutcome, group: Group) -> dict[str, Any]:
    """One `--json` line: the order's status and, for a failure, its decoded carrier code."""
    order, error = outcome.order, outcome.error
    carrier = _carrier_of(outcome)
    reason = carrier.reason if carrier is not None else None
    if reason is None and order is not None:
        reason = order.status_message
    return {
        "order_id": outcome.order_id,
        "outcome": group.name.lower(),
        "status": order.status.name if order is not None else None,
        "raw_status": order.raw_status if order is not None else None,
        "carrier_code": carrier.code if carrier is not None else None,
        "reason": reason,
        "description": carrier.description if carrier is not None else None,
        "remedy": carrier.remedy if carrier is not None else None,
        "error": f"{type(error).__name__}: {error}" if error is not None else None,
        "fix_command": fix_command(order),
    }


def _detail(outcome: OrderOutcome, group: Group) -> tuple[str, str]:
    """(carrier code, words) for a report row."""
    order, error = outcome.order, outcome.error
    if group is Group.TIMED_OUT:
        return "", f"last status: {order.raw_status if order else 'no answer yet'}"
    if error is not None:
        return "", f"{type(error).__name__}: {error}"
    assert order is not None
    carrier = order.carrier_error
    if carrier is not None:
        return carrier.code or "", carrier.reason
    return "", order.status_message or ""


def _table(rows: Sequence[Sequence[str]], width: int | None) -> list[str]:
    """Aligned rows; columns empty in every row are dropped, the last one is never padded."""
    keep = [i for i in range(len(rows[0])) if i == 0 or any(row[i] for row in rows)]
    rows = [[row[i] for i in keep] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keep) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        text = "  " + "  ".join([*cells, row[-1]]).rstrip()
        if width is not None and len(text) > width:
            text = text[: width - 3] + "..."
        lines.append(text)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun if n == 1 else noun + 's'}"


_SUMMARY_WORDS: Final = {
    Group.PENDING: "still pending",
    Group.NEEDS_ACTION: "need action",
    Group.ERROR: "with other errors",
}
_STATUS_WORDS: Final = {
    408: "request timeout",
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "unavailable",
    504: "gateway timeout",
}


class Report:
    """The human report: tables grouped by outcome, carrier codes with remedies, a summary."""

    def __init__(self, run: Run, style: Style, width: int | None, max_rows: int) -> None:
        self.run = run
        self.style = style
        self.width = width
        self.wrap_at = min(width or 100, 100)
        self.max_rows = max_rows

    def lines(self) -> list[str]:
        out: list[str] = []
        for group, outcomes in self.run.tally.by_group().items():
            out += self.group_table(group, outcomes)
        out += self.carrier_codes()
        out += self.fix_commands()
        out += self.summary()
        return out

    def group_table(self, group: Group, outcomes: Sequence[OrderOutcome]) -> list[str]:
        heading = self.style.group(group, f"{group.value.capitalize()} ({len(outcomes):,})")
        if group in _GROUP_NOTES:
            heading += f"  - {_GROUP_NOTES[group]}"
        shown = outcomes if self.max_rows <= 0 else outcomes[: self.max_rows]
        rows = []
        for outcome in shown:
            order = outcome.order
            code, words = _detail(outcome, group)
            kind = (order.order_type or "") if order else ""
            status = order.raw_status if order else ""
            rows.append((outcome.order_id, kind, status, code, words))
        lines = [heading, *_table(rows, self.width)]
        if len(shown) < len(outcomes):
            lines.append(
                f"  ... and {len(outcomes) - len(shown):,} more "
                "(--rows 0 lists them all; --json gives one line per order)"
            )
        return [*lines, ""]

    def carrier_groups(self) -> list[tuple[str, list[CarrierError]]]:
        """Decoded carrier messages by code ("no code" if none), largest group first."""
        groups: dict[str, list[CarrierError]] = {}
        for _, outcome in self.run.tally.rows:
            carrier = _carrier_of(outcome)
            if carrier is not None:
                groups.setdefault(carrier.code or "no code", []).append(carrier)
        return sorted(groups.items(), key=lambda item: -len(item[1]))

    def carrier_codes(self) -> list[str]:
        groups = self.carrier_groups()
        if not groups:
            return []
        total = sum(len(errors) for _, errors in groups)
        lines = [self.style(f"Why they failed, by carrier code ({_count(total, 'order')})", "1")]
        label_width = max(len(code) for code, _ in groups)
        for code, errors in groups:
            counted = f"x{len(errors)}".ljust(5)
            lines.append(f"  {self.style(code.ljust(label_width), '1')}  {counted}  ")
            indent = " " * (2 + label_width + 2 + 5 + 2)
            reasons = list(dict.fromkeys(error.reason for error in errors))
            lines[-1] += "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
            carrier = errors[0]
            for text in (carrier.description, "Remedy: " + carrier.remedy):
                lines += wrap(text, self.wrap_at, indent, indent + "  ")
        return [*lines, ""]

    def fix_commands(self) -> list[str]:
        """For each port-in needing action, the command that would fix it."""
        needing = self.run.tally.by_group().get(Group.NEEDS_ACTION, [])
        if not needing:
            return []
        heading = "How to fix them: update, then wait again (--preset portin)"
        lines = [self.style(heading, "1")]
        shown = needing if self.max_rows <= 0 else needing[: self.max_rows]
        commands = [fix_command(outcome.order) for outcome in shown]
        lines += [f"  {command}" for command in commands if command is not None]
        if len(shown) < len(needing):
            lines.append(f"  ... and {len(needing) - len(shown):,} more (--rows 0 lists them all)")
        if any(command and "-env " in command for command in commands):
            note = (
                "ACCOUNT_NUMBER and ACCOUNT_PIN name environment variables to set first: a "
                "secret never goes on a command line, where every local user can read it."
            )
            lines += wrap(note, self.wrap_at, "  ", "  ")
        return [*lines, ""]

    def summary(self) -> list[str]:
        run, tally, counter = self.run, self.run.tally, self.run.counter
        style = self.style
        verb = "looked up" if run.command == "get" else "waited for"
        counts = [
            style.group(group, f"{tally.counts[group]:,} {_SUMMARY_WORDS.get(group, group.value)}")
            for group in Group
            if tally.counts[group]
        ]
        story = [
            f"{verb} {_count(tally.total, 'order')} in {run.elapsed:.1f} s: " + ", ".join(counts)
        ]
        if run.interrupted:
            pending = _count(tally.total - tally.done, "order")
            story.append(f"interrupted with {pending} not settled yet")
        codes = [f"{code} x{len(errors)}" for code, errors in self.carrier_groups()]
        if codes:
            story.append("failures by carrier code: " + ", ".join(codes) + " (remedies above)")
        per_second = counter.sent / run.elapsed if run.elapsed > 0 else 0.0
        tokens = f" ({counter.token_requests} for a token)" if counter.token_requests else ""
        requests = f"{_count(counter.sent, 'request')} sent{tokens}, {per_second:.0f}/s on average"
        if run.budget_rpm:
            requests += f", paced by a budget of {run.budget_rpm:,.0f}/min"
            if run.budget_rpm >= 600:
                requests += f" ({run.budget_rpm / 60:,.0f}/s)"
        story.append(requests)
        story.append(self._retries(counter))
        if run.demo is not None:
            story.append("demo: port-ins (1-5 business days in life) compressed into seconds")
        status = run.exit_status()
        story.append(f"exit status {status}: {_exit_meaning(status, run.command)}")
        lines = [style("Summary", "1")]
        for text in story:
            lines += wrap(text, self.wrap_at, "  ", "    ")
        return lines

    @staticmethod
    def _retries(counter: RequestCounter) -> str:
        transient = counter.transient
        if not transient:
            return "no transient failures (429, 5xx, timeouts, connection errors) seen"
        seen = ", ".join(
            f"{kind} {_STATUS_WORDS[int(kind)]} x{n}" if kind.isdigit() else f"{kind} x{n}"
            for kind, n in transient.items()
        )
        text = f"retried after transient failures: {seen}"
        if counter.retry_after:
            pauses = ", ".join(f"{value} s" for value in counter.retry_after)
            text += (
                f"; each 429 (Retry-After {pauses}) paused every request of the client, "
                "then halved its pace, which recovers gradually"
            )
        return text


def _exit_meaning(status: int, command: str) -> str:
    return {
        EXIT_OK: "every order completed" if command != "get" else "every lookup answered",
        EXIT_FAILED: "some orders failed, need action, were cancelled or are unknown",
        EXIT_USAGE: "credentials refused",
        EXIT_INCOMPLETE: "some orders timed out or could not be looked up",
        EXIT_INTERRUPTED: "interrupted",
    }[status]


class Output:
    """Where results go: JSON lines as they arrive, or the report at the end."""

    def __init__(self, args: argparse.Namespace, console: Console, stdout: TextIO) -> None:
        self.json = bool(args.json)
        self.max_rows = args.rows
        self.console = console
        self.stdout = stdout

    def outcome(self, outcome: OrderOutcome, group: Group) -> None:
        if self.json:
            self.stdout.write(json.dumps(outcome_json(outcome, group)) + "\n")
            self.stdout.flush()

    def finish(self, run: Run) -> int:
        status = run.exit_status()
        if run.credentials_error is not None:
            self.console.write(
                f"{PROG}: error: credentials refused by the API "
                f"({type(run.credentials_error).__name__}: {run.credentials_error}); check "
                "--token/TELEGENT_TOKEN or --account-key/--account-secret and --base-url\n"
            )
            return status
        if self.json:
            report = Report(run, self.console.style, None, self.max_rows)
            self.console.write("\n".join(report.summary()) + "\n")
        else:
            tty = self.stdout.isatty()
            width = _columns(self.stdout) if tty else None
            report = Report(run, Style(use_color(self.stdout)), width, self.max_rows)
            self.stdout.write("\n".join(report.lines()) + "\n")
            self.stdout.flush()
        return status
