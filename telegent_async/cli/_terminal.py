"""The terminal side of `telegent-orders`: colour, the stderr console, logs, the progress line.

Results go to stdout (a report, or one JSON object per order with `--json`); the progress line
and logs go to stderr, so a pipe into `jq` sees nothing but JSON. Only the standard library
(ANSI escapes) on top of the SDK.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from typing import Final, TextIO

from .._client import TelegentClient
from ._outcomes import Group, Run

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
    RATE_WINDOW = 2.0  # seconds of history behind the current rate

    def __init__(self, console: Console, run: Run, client: TelegentClient, *, waiting: bool):
        self.console = console
        self.run = run
        self.client = client
        self.waiting = waiting
        self._frame = 0
        # (when, requests sent by then): the rate is the client's own count over the window.
        self._sent = collections.deque([(run.started, client.stats.requests)])

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
        stats = self.client.stats
        parts += [
            f"{run.elapsed:.1f} s",
            f"{stats.requests:,} requests",
            f"{self._rate(now, stats.requests):.0f} req/s",
        ]
        retried = sum(stats.retries.values())
        if retried:
            parts.append(style(f"{retried} retried", "33"))
        configured = self.client.budget.requests_per_minute
        if stats.budget_paused_for > 0:
            parts.append(style(f"paused {stats.budget_paused_for:.1f} s by 429", "33;1"))
        elif configured and stats.budget_rate and stats.budget_rate < configured * 0.99:
            parts.append(f"pace {stats.budget_rate / 60:.0f}/s after 429")
        return _fit(parts, dot, columns(console.stream) - 1)

    def _rate(self, now: float, sent: int) -> float:
        """Requests per second over the last `RATE_WINDOW` seconds (or since the start)."""
        samples = self._sent
        samples.append((now, sent))
        while len(samples) > 2 and samples[1][0] <= now - self.RATE_WINDOW:
            samples.popleft()
        since, before = samples[0]
        return (sent - before) / (now - since) if now - since > 0.05 else 0.0


def columns(stream: TextIO) -> int:
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
