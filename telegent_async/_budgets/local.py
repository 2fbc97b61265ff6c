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
    Caller,
    Pace,
    allowance,
    background_interval,
    background_start,
    caller,
    check_window,
    checked_reserve,
    in_background_polls,
    limit_at,
    next_start,
    on_rate_limited,
    span_of,
    started,
    window_limit,
)

__all__ = ["LocalBudget", "Reservations", "Ticket"]


def _at(ticket: Ticket) -> float:
    return ticket.at


class Ticket:
    """A caller's start; moved later when a token request takes a start before it."""

    __slots__ = ("at", "gone", "owner")

    def __init__(self, at: float, owner: object) -> None:
        self.at = at
        self.owner = owner
        self.gone = False


class Reservations:
    """The starts of one budget: at most `limit` in any `window` seconds (`math.inf`: no
    limit, but 429 pauses still apply), on the `now` passed in. Direct calls start as soon as
    every window they fall in has room; background polls at the steady pace, leaving `reserve`
    starts of every window (`base.background_start`)."""

    def __init__(self, limit: float, window: float, reserve: int | None = None) -> None:
        self.window = window
        self._span = span_of(window)
        self.configured = limit
        self.direct_reserve = checked_reserve(reserve, limit)
        self._pace = Pace()
        self._paced = -math.inf  # the next background start allowed by the steady pace
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

    def start_at_once(self, now: float) -> bool:
        """A direct call's start now, if every window has room for it and no 429 pauses the
        budget (then it is counted): `reserve`'s common case, without a ticket."""
        pace, configured = self._pace, self.configured
        if now < pace.paused_until or math.isinf(configured):
            return False
        self._forget_past(now)
        taken = len(self._started) + len(self._queue)
        # `limit(now)`, asked only when 429s lowered it (it never exceeds `configured`).
        if taken >= configured or (pace.limit is not None and taken >= self.limit(now)):
            return False
        self._started.append(now)
        return True

    def reserve(
        self, now: float, owner: object, *, first: bool = False, background: bool = False
    ) -> Ticket:
        """The caller's start: now, or the first that keeps every window within the limit.

        `background`: a background poll's start (`base.background_start`: the steady pace,
        the reserve left). `first` (token requests) takes the first start the window allows,
        ahead of the callers queued, who move back as far as the window requires: they are
        waiting for that very token. It still counts, and it waits out a 429 pause like
        everyone.
        """
        self._forget_past(now)
        floor = max(now, self._pace.paused_until)
        if math.isinf(self.configured):
            return self._granted(Ticket(floor, owner), now)
        limit, span, queue = int(self.limit(now)), self._span, self._queue
        if first and queue:
            starts = list(self._started)
            ticket = Ticket(next_start(starts, floor, limit, span), owner)
            self._queue_up(ticket, now)
            bisect.insort(starts, ticket.at)
            self._push_back(starts, floor, limit, skip=ticket)
            return self._granted(ticket, now)
        if background:
            starts = [*self._started, *(t.at for t in queue)]
            at = background_start(starts, floor, limit, self.direct_reserve, span, self._paced)
            self._paced = at + background_interval(limit, self.direct_reserve, span)
        elif len(self._started) + len(queue) < limit:  # room in every window: at once
            at = floor
        else:
            at = next_start([*self._started, *(t.at for t in queue)], floor, limit, span)
        ticket = Ticket(at, owner)
        self._queue_up(ticket, now)
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
            self._push_back(list(self._started), now, int(self.limit(now)))

    def _push_back(
        self, starts: list[float], floor: float, limit: int, skip: Ticket | None = None
    ) -> None:
        """Move the queued starts (but `skip`) as late as `limit` requires after `starts`
        (never earlier: their callers already sleep to them), in time order."""
        for later in self._queue:
            if later is not skip:
                later.at = max(later.at, next_start(starts, floor, limit, self._span))
                bisect.insort(starts, later.at)
        self._queue = collections.deque(sorted(self._queue, key=_at))

    def _queue_up(self, ticket: Ticket, now: float) -> None:
        """A start still to come joins the queue, which stays in time order."""
        if ticket.at > now:
            queue = self._queue
            queue.insert(bisect.bisect_right(queue, ticket.at, key=_at), ticket)

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
    to the window; None: unlimited, but 429 pauses still apply. Direct calls start at once
    while the window has room; background polls (waits, watchers) at the steady pace, the
    window's limit less `reserve` spread evenly over it, never taking the last `reserve`
    starts of a window. Waiting costs one sleep per caller and no lock.

    Args:
        requests_per_minute: The account's limit (Telegent's standard tier: 50), or None.
        window: The rolling window in seconds that the server counts requests in.
        reserve: Starts of every window that background polls leave to direct calls
            (None: a tenth of the window's limit, at least 1; below the limit).
    """

    def __init__(
        self,
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        window: float = 60.0,
        reserve: int | None = None,
    ) -> None:
        if requests_per_minute is not None:
            requests_per_minute = positive_number("requests_per_minute", requests_per_minute)
        self._rpm = requests_per_minute
        window = check_window(window)
        limit = (
            math.inf if requests_per_minute is None else window_limit(requests_per_minute, window)
        )
        self._book = Reservations(limit, window, reserve)

    @property
    def outage(self) -> None:
        """Always None: a local budget lives in this process and cannot be unreachable."""
        return None

    def __repr__(self) -> str:
        return (
            f"LocalBudget({self._rpm!r}, window={self.window!r},"
            f" reserve={self._book.direct_reserve!r})"
        )

    @property
    def reserve(self) -> int:
        """Starts of every window that background polls leave to direct calls."""
        return self._book.direct_reserve

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
        """Background polls this budget lets start within `seconds`, starting idle (inf:
        unlimited)."""
        configured = self._book.configured
        if math.isinf(configured):
            return math.inf
        return allowance(seconds, int(configured), self.reserve, self.window)

    def open_now(self, now: float) -> bool:
        """True when a request may start at once (no budget and no pause): no await needed."""
        return self._book.open_now(now)

    def start_now(self, now: float) -> bool:
        """A direct call's start now if the window has room (counted; no await, no ticket:
        the send path's common case), or True with no limit and no pause."""
        book = self._book
        if book.open_now(now):
            return True
        return not in_background_polls() and book.start_at_once(now)

    async def aclose(self) -> None:
        pass

    async def acquire(self, *, priority: bool = False, background: bool = False) -> None:
        """Wait for this caller's start (`Reservations.reserve`; `priority`: a token request;
        `background`: a background poll, as is any call in `base.background_polls`).
        Cancelling the wait gives the start up."""
        kind = caller(priority=priority, background=background)
        loop = asyncio.get_running_loop()
        now = loop.time()
        book = self._book
        if book.open_now(now) or (kind is Caller.DIRECT and book.start_at_once(now)):
            started(kind)
            return
        while True:
            ticket = book.reserve(
                now, asyncio.current_task(), first=priority, background=kind is Caller.BACKGROUND
            )
            while ticket.at > now:  # slept until the start, unless a token request moved it
                try:
                    await asyncio.sleep(ticket.at - now)
                except asyncio.CancelledError:
                    book.give_back(ticket, loop.time())
                    raise
                now = loop.time()
            if now >= book.paused_until:
                started(kind)
                return
            book.give_back(ticket, now)  # a 429 came while this caller slept: start after it

    def abandon(self, owners: Collection[object]) -> None:
        """These tasks were just cancelled: free their starts now, not when they next run."""
        self._book.abandon(owners, asyncio.get_running_loop().time())

    async def pause(self, seconds: float, *, started: float | None = None) -> None:
        """A 429 answered the request that started at `started` (loop time; None: now): hold
        every request for `seconds`, and learn from it (`Reservations.rate_limited`)."""
        self._book.rate_limited(seconds, started, asyncio.get_running_loop().time())
