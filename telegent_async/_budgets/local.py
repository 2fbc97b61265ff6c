"""`LocalBudget`: the account budget of one process.

`Reservations` decides, on the `now` it is given (sans-I/O, tested on a fake clock): who
starts when, what a caller who gives up frees, what a 429 holds back. `LocalBudget` only reads
the loop's clock and sleeps until the start it was given.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import math
from collections.abc import Collection

from .._config import DEFAULT_REQUESTS_PER_MINUTE
from .._validate import positive_number
from .base import (
    Pace,
    allowance,
    check_window,
    limit_at,
    next_start,
    on_rate_limited,
    span_of,
    window_limit,
)

__all__ = ["LocalBudget", "Reservations", "Ticket"]


class Ticket:
    """A caller's start; moved later when a token request takes a start before it."""

    __slots__ = ("at", "gone", "owner")

    def __init__(self, at: float, owner: object) -> None:
        self.at = at
        self.owner = owner
        self.gone = False


class Reservations:
    """The starts of one budget: at most `limit` in any `window` seconds (`math.inf`: no
    limit, but 429 pauses still apply), granted in arrival order, on the `now` passed in."""

    def __init__(self, limit: float, window: float) -> None:
        self.window = window
        self._span = span_of(window)
        self.configured = limit
        self._pace = Pace()
        self._started: collections.deque[float] = collections.deque()  # past starts, in order
        self._queue: collections.deque[Ticket] = collections.deque()  # future starts, in order
        self._rejected: collections.deque[float] = collections.deque()  # starts answered 429

    @property
    def paused_until(self) -> float:
        return self._pace.paused_until

    def limit(self, now: float) -> float:
        """Starts allowed per window at `now` (lower than configured after repeated 429s)."""
        if math.isinf(self.configured):
            return math.inf
        return limit_at(self._pace, now, int(self.configured), self.window)

    def open_now(self, now: float) -> bool:
        """True when a request may start at once (no limit and no pause): no await needed."""
        return math.isinf(self.configured) and now >= self._pace.paused_until

    def reserve(self, now: float, owner: object, *, first: bool = False) -> Ticket:
        """The caller's start: now, or the first that keeps every window within the limit.

        `first` (token requests) takes the first start the window allows, ahead of the callers
        queued, who move back as far as the window requires: they are waiting for that very
        token. It still counts, and it waits out a 429 pause like everyone.
        """
        self._forget_past(now)
        floor = max(now, self._pace.paused_until)
        if math.isinf(self.configured):
            return self._granted(Ticket(floor, owner), now)
        limit, span = int(self.limit(now)), self._span
        queue = self._queue
        starts = list(self._started)
        if not first or not queue:
            starts.extend(t.at for t in queue)
            ticket = Ticket(next_start(starts, floor, limit, span), owner)
            if ticket.at > now:
                queue.append(ticket)
            return self._granted(ticket, now)
        position = 0
        while True:
            at = next_start(starts, floor, limit, span)
            if position == len(queue) or at <= queue[position].at:
                break
            starts.append(queue[position].at)
            position += 1
        ticket = Ticket(at, owner)
        starts.append(at)
        self._push_back(starts, position, floor, limit)
        if at > now:
            queue.insert(position, ticket)
        return self._granted(ticket, now)

    def give_back(self, ticket: Ticket | None, now: float) -> None:
        """A caller gave up its start (or lost it to a pause). Starts given back at the end of
        the queue are taken off it, so that callers who come later do not wait behind starts
        nobody uses (a hole in the middle stays: the callers behind it already sleep to their
        own)."""
        if ticket is not None:
            ticket.gone = True
        self._forget_past(now)
        queue = self._queue
        while queue and queue[-1].gone:
            queue.pop()

    def abandon(self, owners: Collection[object], now: float) -> None:
        """The starts of these callers (cancelled tasks) are free now."""
        for ticket in self._queue:
            if ticket.owner in owners:
                ticket.gone = True
        self.give_back(None, now)

    def rate_limited(self, seconds: float, started: float | None, now: float) -> None:
        """A 429 answered the request that started at `started` (None: now): hold every start
        for `seconds`, and learn from it (`on_rate_limited`)."""
        self._forget_past(now)
        rejected = self._rejected
        bisect.insort(rejected, now if started is None else min(started, now))
        horizon = now - self.window
        while rejected and rejected[0] <= horizon:
            rejected.popleft()
        sent = len(self._started) - bisect.bisect_right(self._started, horizon)
        self._pace = on_rate_limited(
            self._pace,
            now=now,
            pause=seconds,
            configured=self.configured,
            window=self.window,
            sent=sent,
            rejected=len(rejected),  # starts of the last window that were answered 429
        )
        if self._pace.limit is not None:
            # A lower limit holds for the callers already queued too.
            self._push_back(list(self._started), 0, now, int(self.limit(now)))

    def _push_back(self, starts: list[float], position: int, floor: float, limit: int) -> None:
        """Move the queued starts from `position` on as late as `limit` requires after
        `starts` (never earlier: their callers already sleep to them)."""
        queue = self._queue
        for index in range(position, len(queue)):
            later = queue[index]
            later.at = max(later.at, next_start(starts, floor, limit, self._span))
            starts.append(later.at)

    def _granted(self, ticket: Ticket, now: float) -> Ticket:
        if ticket.at <= now:
            self._started.append(now)
        return ticket

    def _forget_past(self, now: float) -> None:
        queue, started = self._queue, self._started
        while queue and queue[0].at <= now:
            ticket = queue.popleft()
            if not ticket.gone:
                started.append(ticket.at)
        horizon = now - self._span
        while started and started[0] <= horizon:
            started.popleft()


class LocalBudget:
    """The account budget of one process: `LocalBudget(50)` (what `requests_per_minute=` builds).

    At most `requests_per_minute` requests in any rolling `window` (60 s: Telegent's) scaled
    to the window; None: unlimited, but 429 pauses still apply. Callers are served in arrival
    order; waiting costs one sleep per caller and no lock.

    Args:
        requests_per_minute: The account's limit (Telegent's standard tier: 50), or None.
        window: The rolling window in seconds that the server counts requests in.
    """

    def __init__(
        self,
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        window: float = 60.0,
    ) -> None:
        if requests_per_minute is not None:
            requests_per_minute = positive_number("requests_per_minute", requests_per_minute)
        self._rpm = requests_per_minute
        window = check_window(window)
        limit = (
            math.inf if requests_per_minute is None else window_limit(requests_per_minute, window)
        )
        self._book = Reservations(limit, window)

    @property
    def outage(self) -> None:
        """Always None: a local budget lives in this process and cannot be unreachable."""
        return None

    def __repr__(self) -> str:
        return f"LocalBudget({self._rpm!r}, window={self.window!r})"

    @property
    def window(self) -> float:
        """The rolling window in seconds."""
        return self._book.window

    @property
    def requests_per_minute(self) -> float | None:
        return self._rpm

    @property
    def paused_until(self) -> float:
        return self._book.paused_until

    @property
    def limit(self) -> float:
        """Requests allowed per window now (inf: unlimited)."""
        return self._book.limit(asyncio.get_running_loop().time())

    @property
    def rate(self) -> float:
        return self.limit / self.window

    def allowance(self, seconds: float) -> float:
        """Requests this budget lets start within `seconds`, starting idle (inf: unlimited)."""
        configured = self._book.configured
        if math.isinf(configured):
            return math.inf
        return allowance(seconds, int(configured), self.window)

    def open_now(self, now: float) -> bool:
        """True when a request may start at once (no budget and no pause): no await needed."""
        return self._book.open_now(now)

    async def aclose(self) -> None:
        pass

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for this caller's start (`Reservations.reserve`; `priority`: a token request).
        Cancelling the wait gives the start up."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        book = self._book
        if book.open_now(now):
            return
        while True:
            ticket = book.reserve(now, asyncio.current_task(), first=priority)
            while ticket.at > now:  # slept until the start, unless a token request moved it
                try:
                    await asyncio.sleep(ticket.at - now)
                except asyncio.CancelledError:
                    book.give_back(ticket, loop.time())
                    raise
                now = loop.time()
            if now >= book.paused_until:
                return
            book.give_back(ticket, now)  # a 429 came while this caller slept: start after it

    def abandon(self, owners: Collection[object]) -> None:
        """These tasks were just cancelled: free their starts now, not when they next run."""
        self._book.abandon(owners, asyncio.get_running_loop().time())

    async def pause(self, seconds: float, *, started: float | None = None) -> None:
        """A 429 answered the request that started at `started` (loop time; None: now): hold
        every request for `seconds`, and learn from it (`Reservations.rate_limited`)."""
        self._book.rate_limited(seconds, started, asyncio.get_running_loop().time())
