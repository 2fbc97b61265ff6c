"""The report `get`, `wait` and `demo` end with, and where results go (`Output`): tables by
outcome, carrier codes with their remedies, the commands that would fix the port-ins needing
action, then a summary ending with the exit status and what it means."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from typing import Final, TextIO

from .._carrier import CarrierError, NextStep
from .._errors import TelegentError
from .._models import OrderOutcome
from .._status import status_words
from ._exit import run_exit_status, setup_error_words, summary_of
from ._outcomes import PROG, Group, Run, busiest_window, carrier_of, fix_of, named, outcome_json
from ._terminal import GROUP_COLORS, Console, columns, paint, shown, use_color

_NOTES: Final = {
    Group.NEEDS_ACTION: "fix them in the order listed below: updates first",
    Group.TIMED_OUT: "still pending at the deadline; wait again later",
}
_SUMMARY_WORDS: Final = {
    Group.PENDING: "still pending",
    Group.NEEDS_ACTION: "need action",
    Group.ERROR: "with other errors",
}


def detail(outcome: OrderOutcome, group: Group) -> tuple[str, str]:
    """(carrier code, words) for a report row."""
    order, error = outcome.order, outcome.error
    if group is Group.TIMED_OUT:
        words = f"last status: {order.raw_status if order else 'no answer yet'}"
        cause = error.__cause__ if error is not None else None
        if isinstance(cause, TelegentError):  # polls were failing: why, in the API's words
            words += f"; last poll failed: {named(cause)}"
        return "", words
    if error is not None:
        return "", named(error)
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
        lines.append(text[: width - 3] + "..." if width is not None and len(text) > width else text)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun if n == 1 else noun + 's'}"


class Report:
    """The human report: tables grouped by outcome, carrier codes with remedies, a summary."""

    def __init__(self, run: Run, color: bool, width: int | None, max_rows: int) -> None:
        self.run, self.color, self.width, self.max_rows = run, color, width, max_rows
        self.wrap_at = min(width or 100, 100)
        self.groups = run.tally.by_group()

    def _wrap(self, text: str, indent: str, more: str) -> list[str]:
        return textwrap.wrap(text, self.wrap_at, initial_indent=indent, subsequent_indent=more,
                             break_long_words=False, break_on_hyphens=False)  # fmt: skip

    def _shown(self, outcomes: list[OrderOutcome]) -> tuple[list[OrderOutcome], str]:
        """The rows `--rows` leaves, and the line saying how many more there are."""
        shown = outcomes if self.max_rows <= 0 else outcomes[: self.max_rows]
        more = len(outcomes) - len(shown)
        return shown, f"  ... and {more:,} more (--rows 0 lists them all" if more else ""

    def lines(self) -> list[str]:
        out: list[str] = []
        for group, outcomes in self.groups.items():
            heading = paint(f"{group.value.capitalize()} ({len(outcomes):,})",
                            GROUP_COLORS[group], self.color)  # fmt: skip
            heading += f"  - {_NOTES[group]}" if group in _NOTES else ""
            shown, more = self._shown(outcomes)
            rows = []
            for outcome in shown:
                order = outcome.order
                kind = (order.order_type or "") if order else ""
                status = order.raw_status if order else ""
                rows.append((outcome.order_id, kind, status, *detail(outcome, group)))
            out += [heading, *table(rows, self.width)]
            out += [more + "; --json gives one line per order)"] if more else []
            out.append("")
        return out + self.carrier_codes() + self.fix_commands() + self.summary()

    def carrier_groups(self) -> list[tuple[str, list[CarrierError]]]:
        """Decoded carrier messages by code ("no code" if none), largest group first."""
        groups: dict[str, list[CarrierError]] = {}
        for _, outcome in self.run.tally.rows:
            if (carrier := carrier_of(outcome)) is not None:
                groups.setdefault(carrier.code or "no code", []).append(carrier)
        return sorted(groups.items(), key=lambda item: -len(item[1]))

    def carrier_codes(self) -> list[str]:
        groups = self.carrier_groups()
        if not groups:
            return []
        total = sum(len(errors) for _, errors in groups)
        heading = f"Why they failed, by carrier code ({_count(total, 'order')})"
        lines = [paint(heading, "1", self.color)]
        label_width = max(len(code) for code, _ in groups)
        indent = " " * (label_width + 11)
        for code, errors in groups:
            reasons = list(dict.fromkeys(error.reason for error in errors))
            said = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
            lines.append(f"  {code.ljust(label_width)}  {f'x{len(errors)}'.ljust(5)}  {said}")
            for text in (errors[0].description, "Remedy: " + errors[0].remedy):
                lines += self._wrap(text, indent, indent + "  ")
        return [*lines, ""]

    def fix_commands(self) -> list[str]:
        """For each port-in needing action, the command that would fix it."""
        shown, more = self._shown(self.groups.get(Group.NEEDS_ACTION, []))
        if not shown:
            return []
        heading = "How to fix them: update, then wait again (--preset portin)"
        fixes = [fix for fix in (fix_of(outcome.order) for outcome in shown) if fix]
        steps = list(NextStep)  # updates first: a cancel only where no update resubmits
        commands = [command for _, command in sorted(fixes, key=lambda fix: steps.index(fix[0]))]
        lines = [paint(heading, "1", self.color), *(f"  {command}" for command in commands)]
        lines += [more + ")"] if more else []
        if any("-env " in command for command in commands):
            lines += self._wrap(
                "ACCOUNT_NUMBER and ACCOUNT_PIN name environment variables to set first: a "
                "secret never goes on a command line, where every local user can read it.",
                "  ", "  ",
            )  # fmt: skip
        return [*lines, ""]

    def summary(self) -> list[str]:
        run, tally, stats = self.run, self.run.tally, self.run.stats
        verb = "looked up" if run.command == "get" else "waited for"
        counts = [
            f"{tally.counts[group]:,} {_SUMMARY_WORDS.get(group, group.value)}"
            for group in Group
            if tally.counts[group]
        ]
        story = [
            f"{verb} {_count(tally.total, 'order')} in {run.elapsed:.1f} s: " + ", ".join(counts)
        ]
        if run.interrupted:
            story.append(
                f"interrupted with {_count(tally.total - tally.done, 'order')} not settled yet"
            )
        if codes := [f"{code} x{len(errors)}" for code, errors in self.carrier_groups()]:
            story.append("failures by carrier code: " + ", ".join(codes) + " (remedies above)")
        sent = stats.requests if stats is not None else 0
        per_second = sent / run.elapsed if run.elapsed > 0 else 0.0
        tokens = f" ({stats.token_requests} for a token)" if stats and stats.token_requests else ""
        requests = f"{_count(sent, 'request')} sent{tokens}, {per_second:.0f}/s on average"
        if run.budget_rpm:  # a budget per rolling minute: measured by the busiest minute
            busiest = busiest_window(run.sent_per_second, 60)
            within = "within" if busiest <= run.budget_rpm else "over"
            requests += f"; at most {busiest:,} in any minute, {within} the budget of "
            requests += f"{run.budget_rpm:,.0f} a minute"
        story += [requests, _retries(run)]
        if run.demo is not None:
            story.append("demo: port-ins (1-5 business days in life) compressed into seconds")
        status = run_exit_status(run)
        story.append(f"exit status {status}: {summary_of(status, run.command)}")
        return [paint("Summary", "1", self.color)] + [
            line for text in story for line in self._wrap(text, "  ", "    ")
        ]


def _retries(run: Run) -> str:
    """The summary's line on what was retried, from the client's own counters."""
    stats = run.stats
    if stats is None or not stats.retries:
        return "nothing retried (429, 5xx, timeouts, connection errors)"
    seen = ", ".join(
        f"{kind} {status_words(int(kind))} x{n}" if kind.isdigit() else f"{kind} x{n}"
        for kind, n in sorted(stats.retries.items())
    )
    if not stats.rate_limit_pauses:
        return f"retried: {seen}"
    return (
        f"retried: {seen}; each 429 ({stats.rate_limit_pauses}x) paused every request of the "
        "client for its Retry-After (a repeated one lowers the pace to what the server accepted)"
    )


class Output:
    """Where results go: JSON lines as they arrive, or the report at the end."""

    def __init__(self, args: argparse.Namespace, console: Console, stdout: TextIO) -> None:
        self.json, self.max_rows = bool(args.json), args.rows
        self.console, self.stdout = console, stdout

    def outcome(self, outcome: OrderOutcome, group: Group) -> None:
        if self.json:
            self.stdout.write(json.dumps(outcome_json(outcome, group)) + "\n")
            self.stdout.flush()

    def finish(self, run: Run) -> int:
        status = run_exit_status(run)
        if run.setup_error is not None:
            self.console.write(f"{PROG}: error: {setup_error_words(run.setup_error)}\n")
        elif self.json:
            report = Report(run, self.console.color, None, self.max_rows)
            self.console.write("\n".join(report.summary()) + "\n")
        else:
            width = columns(self.stdout) if self.stdout.isatty() else None
            report = Report(run, use_color(self.stdout), width, self.max_rows)
            self.stdout.write(shown("\n".join(report.lines()) + "\n"))
            self.stdout.flush()
        return status
