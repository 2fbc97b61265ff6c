"""The human report `get`, `wait` and `demo` end with, and where results go (`Output`).

Tables grouped by outcome, carrier codes with their remedies, the commands that would fix the
port-ins needing action, then a summary that ends with the exit status and what it means.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Final, TextIO

from .._carrier import CarrierError, NextStep
from .._models import OrderOutcome
from .._stats import ClientStats
from .._status import status_words
from ._exit import run_exit_status, setup_error_words, summary_of
from ._outcomes import PROG, Group, Run, busiest_window, carrier_of, fix_of, outcome_json
from ._terminal import Console, Style, columns, use_color, wrap

_GROUP_NOTES: Final = {
    Group.NEEDS_ACTION: "fix them in the order listed below: updates first",
    Group.TIMED_OUT: "still pending at the deadline; wait again later",
}


def detail(outcome: OrderOutcome, group: Group) -> tuple[str, str]:
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


def table(rows: Sequence[Sequence[str]], width: int | None) -> list[str]:
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
            code, words = detail(outcome, group)
            kind = (order.order_type or "") if order else ""
            status = order.raw_status if order else ""
            rows.append((outcome.order_id, kind, status, code, words))
        lines = [heading, *table(rows, self.width)]
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
            carrier = carrier_of(outcome)
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
        fixes = [fix for fix in map(fix_of, (outcome.order for outcome in shown)) if fix]
        steps = list(NextStep)  # updates first: a cancel only where no update resubmits
        commands = [command for _, command in sorted(fixes, key=lambda fix: steps.index(fix[0]))]
        lines += [f"  {command}" for command in commands]
        if len(shown) < len(needing):
            lines.append(f"  ... and {len(needing) - len(shown):,} more (--rows 0 lists them all)")
        if any("-env " in command for command in commands):
            note = (
                "ACCOUNT_NUMBER and ACCOUNT_PIN name environment variables to set first: a "
                "secret never goes on a command line, where every local user can read it."
            )
            lines += wrap(note, self.wrap_at, "  ", "  ")
        return [*lines, ""]

    def summary(self) -> list[str]:
        run, tally = self.run, self.run.tally
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
        stats = run.stats
        sent = stats.requests if stats is not None else 0
        per_second = sent / run.elapsed if run.elapsed > 0 else 0.0
        tokens = f" ({stats.token_requests} for a token)" if stats and stats.token_requests else ""
        requests = f"{_count(sent, 'request')} sent{tokens}, {per_second:.0f}/s on average"
        if run.budget_rpm:  # a budget per rolling minute: measured by the busiest minute
            busiest = busiest_window(run.sent_per_second, 60)
            within = "within" if busiest <= run.budget_rpm else "over"
            requests += f"; at most {busiest:,} in any minute, {within} the budget of "
            requests += f"{run.budget_rpm:,.0f} a minute"
        story.append(requests)
        story.append(_retries(stats))
        if run.demo is not None:
            story.append("demo: port-ins (1-5 business days in life) compressed into seconds")
        status = run_exit_status(run)
        story.append(f"exit status {status}: {summary_of(status, run.command)}")
        lines = [style("Summary", "1")]
        for text in story:
            lines += wrap(text, self.wrap_at, "  ", "    ")
        return lines


def _retries(stats: ClientStats | None) -> str:
    """The summary's line on what was retried, from the client's own counters."""
    retries = stats.retries if stats is not None else {}
    if not retries:
        return "nothing retried (429, 5xx, timeouts, connection errors)"
    seen = ", ".join(
        f"{kind} {status_words(int(kind))} x{n}" if kind.isdigit() else f"{kind} x{n}"
        for kind, n in sorted(retries.items())
    )
    text = f"retried: {seen}"
    if stats is not None and stats.rate_limit_pauses:
        text += (
            f"; each 429 ({stats.rate_limit_pauses}x) paused every request of the client for "
            "its Retry-After (a repeated one lowers the pace to what the server accepted)"
        )
    return text


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
        status = run_exit_status(run)
        if run.setup_error is not None:
            self.console.write(f"{PROG}: error: {setup_error_words(run.setup_error)}\n")
            return status
        if self.json:
            report = Report(run, self.console.style, None, self.max_rows)
            self.console.write("\n".join(report.summary()) + "\n")
        else:
            tty = self.stdout.isatty()
            width = columns(self.stdout) if tty else None
            report = Report(run, Style(use_color(self.stdout)), width, self.max_rows)
            self.stdout.write("\n".join(report.lines()) + "\n")
            self.stdout.flush()
        return status
