"""The per-attempt timeout: one timer for all of a client's attempts, not one per request.

`asyncio.timeout` arms and cancels a timer handle for every request; on a lookup that costs
about 80 µs of CPU it was the largest single cost (about 6 µs). A client has few attempts in
flight at once (at most `max_connections`), so one timer set for the earliest deadline, and a
scan of the attempts when it fires, cost almost nothing per request.

aiohttp's own `ClientTimeout(total=...)` is not used: it uncancels the task twice when it fires,
so a `task.cancel()` landing in the same turn of the loop was lost (aio-libs/aiohttp#5979).
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

from ._stats import Counters

__all__ = ["AttemptWatchdog"]

Task = asyncio.Task[Any]


class AttemptWatchdog:
    """Cancels the task of an attempt that outlives its deadline; the attempt sees TimeoutError.

    The one context around every attempt: it also counts in `counters.cancelled` the attempts
    cancelled from outside (a caller's cancel, not the deadline), for `ClientStats.in_flight`.
    """

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._deadlines: dict[Task, float] = {}
        self._expired: set[Task] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def watch(self, task: Task, deadline: float) -> _Watch:
        """`with watchdog.watch(task, loop.time() + 30.0): ...` bounds the awaits inside (in
        `task`, the current one) to 30 s. The send path has both at hand: passed, not read
        again (0.5 us less per request, timeit 2026-12-06)."""
        self._deadlines[task] = deadline
        if deadline < self._timer_at:
            self._set_timer(task.get_loop(), deadline)
        return _Watch(self, task, task.cancelling() if sys.version_info >= (3, 11) else 0)

    def close(self) -> None:
        """Stop the timer (the client is closing), unless attempts are still being watched."""
        if self._timer is not None and not self._deadlines:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf

    def _set_timer(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = loop.call_at(when, self._fire, loop), when

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now, earliest = loop.time(), math.inf
        for task, deadline in self._deadlines.items():
            if deadline > now:
                earliest = min(earliest, deadline)
            elif task not in self._expired:
                self._expired.add(task)
                task.cancel()
        if earliest < math.inf:
            self._set_timer(loop, earliest)

    def _release(self, task: Task, exc_type: type[BaseException] | None) -> bool:
        """Stop watching `task`; True if it was cancelled because its deadline passed (else
        a `CancelledError` leaving the attempt is counted: the caller's)."""
        del self._deadlines[task]
        if task in self._expired:
            self._expired.discard(task)
            return True
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            self._counters.cancelled += 1  # a caller's cancel
        return False


class _Watch:
    __slots__ = ("_cancelling", "_task", "_watchdog")

    def __init__(self, watchdog: AttemptWatchdog, task: Task, cancelling: int) -> None:
        self._watchdog = watchdog
        self._task = task
        self._cancelling = cancelling  # cancel requests already pending when the attempt began

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if not self._watchdog._release(self._task, exc_type):
            return
        # Ours is one cancel request; if another arrived during the attempt, the caller
        # cancelled too and its CancelledError must go through. (On 3.10, which cannot
        # count them, a cancel landing in the same turn as the timeout is lost, as with
        # async_timeout and asyncio.wait_for there.)
        if sys.version_info >= (3, 11) and self._task.uncancel() > self._cancelling:
            if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
                self._watchdog._counters.cancelled += 1  # the caller's cancel, too
            return
        if exc_type is asyncio.CancelledError:
            raise asyncio.TimeoutError from None
