"""The terminal side: the stderr console (logs and the progress line), colour, the width.

Results go to stdout; the progress line and logs go to stderr, so a pipe into `jq` sees
nothing but JSON. ANSI escapes only where the stream is a terminal (and not NO_COLOR).
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
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TextIO

from ._outcomes import Group, Run

if TYPE_CHECKING:
    from .._client import TelegentClient

_FANCY = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "█░", " · "
_PLAIN = "|/-\\", "#-", " | "


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, code: str, enabled: bool) -> str:
    """`text` in the ANSI colour `code` ("1" bold, "31" red ...) if `enabled`."""
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and text else text


#: What a terminal would act on rather than show, in text from elsewhere (an answer's status
#: or message, a tag, an error): C0 and C1 controls but newline and tab, and bidirectional
#: overrides. The colours `paint` writes (codes 0, 1, 31 to 36) pass.
_ACTED_ON = re.compile(
    r"\x1b\[(?:0|1|3[1-6])m|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def shown(text: str) -> str:
    """`text` with what a terminal would act on written out as an escape (`\\x1b`, `\\r`,
    `\\u202e`): an answer's `ESC ] 52` (set the clipboard), `ESC [ 8 m` (hide what
    follows) or carriage return (overwrite the line) is shown, never obeyed."""
    return _ACTED_ON.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    found = match[0]
    return found if len(found) > 1 else found.encode("unicode_escape").decode("ascii")


#: The colour of each group's heading in the report.
GROUP_COLORS = dict(zip(Group, ("32", "36", "31", "33", "35", "33", "31", "31"), strict=True))


def columns(stream: TextIO) -> int:
    """The width of the terminal `stream` is on (a fresh pty may say 0: then ask around)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if (width := os.get_terminal_size(stream.fileno()).columns) > 0:
            return width
    return shutil.get_terminal_size().columns


class Console:
    """stderr, shared by the progress line and log records: a record first wipes the line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.color = use_color(stream)
        self.glyphs = _FANCY if self._encodes() else _PLAIN
        self._line_shown = False

    def _encodes(self) -> bool:
        try:
            "".join(_FANCY).encode(getattr(self.stream, "encoding", None) or "ascii")
        except (UnicodeEncodeError, LookupError):
            return False
        return True

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
        self.stream.write(shown(text))
        self.stream.flush()


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
    handler = _ConsoleHandler(console)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    sdk = logging.getLogger("telegent_async")
    sdk.handlers[:] = [handler]
    sdk.setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)])
    sdk.propagate = False


class Progress:
    """A live status line on stderr, redrawn ten times a second; off unless stderr is a tty."""

    INTERVAL = 0.1
    RATE_WINDOW = 2.0  # seconds of history behind the current rate

    def __init__(self, console: Console, run: Run, client: TelegentClient, *, waiting: bool):
        self.console, self.run, self.client, self.waiting = console, run, client, waiting
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
        """The parts that fit the terminal, whole ones dropped from the end."""
        tally, stats = self.run.tally, self.client.stats
        spinner, bar, dot = self.console.glyphs
        self._frame += 1
        parts = [f"{spinner[self._frame % len(spinner)]} looking up {tally.total:,} orders"]
        if self.waiting:
            filled = 16 * tally.done // tally.total if tally.total else 16
            failed = tally.done - tally.counts[Group.COMPLETED]
            parts = [
                f"{parts[0][0]} {bar[0] * filled}{bar[1] * (16 - filled)} "
                f"{tally.done:,}/{tally.total:,} settled",
                f"{tally.total - tally.done:,} pending",
                f"{failed:,} failed",
            ]
        parts += [
            f"{self.run.elapsed:.1f} s",
            f"{stats.requests:,} requests",
            f"{self._rate(time.monotonic(), stats.requests):.0f} req/s",
        ]
        if retried := sum(stats.retries.values()):
            parts.append(f"{retried} retried")
        configured = self.client.budget.requests_per_minute
        if stats.budget_paused_for > 0:
            parts.append(f"paused {stats.budget_paused_for:.1f} s by 429")
        elif configured and stats.budget_rate and stats.budget_rate < configured * 0.99:
            parts.append(f"pace {stats.budget_rate / 60:.0f}/s after 429")
        width = columns(self.console.stream) - 1
        while len(parts) > 1 and len(dot.join(parts)) > width:
            parts.pop()
        return dot.join(parts)

    def _rate(self, now: float, sent: int) -> float:
        """Requests per second over the last `RATE_WINDOW` seconds (or since the start)."""
        samples = self._sent
        samples.append((now, sent))
        while len(samples) > 2 and samples[1][0] <= now - self.RATE_WINDOW:
            samples.popleft()
        since, before = samples[0]
        return (sent - before) / (now - since) if now - since > 0.05 else 0.0
