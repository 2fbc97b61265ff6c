"""The account budget: at most `requests_per_minute` requests in any rolling 60 s window.

That is the limit Telegent states, so it is the one the SDK keeps. An idle client's first
requests go out at once, up to the limit; after that, each request starts as soon as the
window has room for it, in arrival order. Every request of a client (lookups, polls, token
requests) takes its start time here before it takes a pooled connection, so a large fan-out
waits here, where there is no timeout, rather than in the connection pool.

The decisions are pure functions shared by `LocalBudget` (one process) and `RedisBudget`
(every process naming one Redis and one name; its reservation runs the same arithmetic in
Lua): `next_start` (the reservation), `on_rate_limited` and `limit_at` (the adaptive pace).
The budget is the only place that knows the rate: the client asks it for a start time and
tells it about 429s, nothing more.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import math
from collections.abc import Collection, Sequence
from typing import Protocol

import attrs

from ._config import DEFAULT_REQUESTS_PER_MINUTE
from ._validate import positive_number

__all__ = [
    "MARGIN",
    "Budget",
    "LocalBudget",
    "Pace",
    "allowance",
    "budget_of",
    "limit_at",
    "next_start",
    "on_rate_limited",
    "rate_and_pause",
    "span_of",
    "window_limit",
]

#: Added to the window when reserving (at most; a 20th of shorter windows): requests reach
#: the server a little after they start, and not all equally late (a busy host, the network),
#: so starts exactly one window apart could arrive a little less than a window apart. A
#: quarter second costs 0.4 % of a 60 s window.
MARGIN = 0.25
#: A 429 within this many windows of the previous one is a repeat: the real limit is lower.
REPEAT_WINDOWS = 2.0
#: After this many windows without a 429 a lowered limit climbs back, one request a window.
RECOVER_AFTER_WINDOWS = 10.0


# -- pure decisions ----------------------------------------------------------------------------


def window_limit(requests_per_minute: float, window: float) -> int:
    """Requests allowed in one window of `window` seconds (at least one)."""
    return max(1, math.floor(requests_per_minute * window / 60.0 + 1e-9))


def allowance(seconds: float, limit: int, window: float) -> int:
    """Requests an idle budget lets start within `seconds`: a window's worth at once, then
    another each time the window rolls over."""
    return limit * (math.floor(seconds / window + 1e-9) + 1)


def span_of(window: float) -> float:
    """How far apart a reservation keeps a start and the `limit`-th before it."""
    return window + min(MARGIN, window / 20.0)


def next_start(starts: Sequence[float], now: float, limit: int, span: float) -> float:
    """The earliest start, not before `now`, that keeps every window at `limit` or fewer.

    `starts`: the starts already granted (past and future), in time order; `span`: the
    window and its margin (`span_of`). Whatever holes earlier cancellations left, every start
    within a window of the result is among the `limit - 1` latest, so the result never
    overfills a window.
    """
    if len(starts) < limit:
        return now
    return max(now, starts[-limit] + span)


@attrs.frozen
class Pace:
    """What a budget learnt from 429s: the pause, and the limit when it is below the set one.

    `limit` is None while the configured limit holds. `signal_at` is when the latest 429
    signal began (a signal: the 429s that arrive before its pause ends, answers to requests
    already in flight); `repeat` says that signal came soon after the one before.
    """

    paused_until: float = -math.inf
    limit: int | None = None
    signal_at: float = -math.inf
    repeat: bool = False


def limit_at(pace: Pace, now: float, configured: int, window: float) -> int:
    """The limit in force at `now`: a lowered one climbs back after quiet windows."""
    if pace.limit is None:
        return configured
    quiet = now - pace.signal_at - RECOVER_AFTER_WINDOWS * window
    gained = max(0, math.floor(quiet / window) + 1) if quiet >= 0 else 0
    return min(configured, pace.limit + gained)


def on_rate_limited(
    pace: Pace,
    *,
    now: float,
    pause: float,
    configured: int,
    window: float,
    sent: int,
    rejected: int,
) -> Pace:
    """A 429 answered one of the account's requests; `pause` is its Retry-After.

    `sent`: requests started in the last window; `rejected`: those among them answered 429,
    this one included. Every 429 pauses the budget (the pause only moves later). A first 429 after a
    quiet spell (another client on the account) costs only that pause. A repeat within
    `REPEAT_WINDOWS` windows while we sent more than half our limit means the server's real
    limit is below ours: the limit drops to what the server accepted in the last window,
    which is its real rate.
    """
    paused_until = max(pace.paused_until, now + pause)
    current = limit_at(pace, now, configured, window)
    if now < pace.paused_until:  # part of the signal under way
        signal_at, repeat = pace.signal_at, pace.repeat
    else:
        signal_at, repeat = now, now - pace.signal_at <= REPEAT_WINDOWS * window
    limit = pace.limit
    # Sending well below our limit, we cannot be the reason: someone else on the account.
    if repeat and sent * 2 > current:
        limit = min(current, max(1, sent - rejected))
    return Pace(paused_until, limit, signal_at, repeat)


# -- the protocol the client talks to --------------------------------------------------------


class Budget(Protocol):
    """What `TelegentClient(budget=...)` needs: `LocalBudget` and `RedisBudget` provide it."""

    @property
    def requests_per_minute(self) -> float | None: ...

    @property
    def paused_until(self) -> float:
        """Loop time until which every request waits (after a 429)."""
        ...

    @property
    def rate(self) -> float:
        """Requests per second allowed now (lower than configured after repeated 429s)."""
        ...

    def allowance(self, seconds: float) -> float: ...
    def open_now(self, now: float) -> bool: ...
    async def acquire(self, *, priority: bool = False) -> None: ...
    async def pause(self, seconds: float, *, started: float | None = None) -> None:
        """A 429 answered the request that started at `started` (loop time; None: now)."""
        ...

    def abandon(self, owners: Collection[object]) -> None: ...
    async def aclose(self) -> None: ...


def rate_and_pause(budget: Budget, now: float) -> tuple[float | None, float]:
    """What monitoring (`client.stats`) shows of any budget, from what every budget has: its
    pace now in requests per minute (None: unlimited) and the seconds left of a 429 pause."""
    rate = budget.rate
    return (None if math.isinf(rate) else rate * 60.0), max(0.0, budget.paused_until - now)


def budget_of(budget: object, requests_per_minute: float | None) -> Budget:
    """`budget=` as given, else a `LocalBudget` of `requests_per_minute` (50 by default)."""
    if budget is None:
        return LocalBudget(requests_per_minute)
    if not callable(getattr(budget, "acquire", None)) or not callable(
        getattr(budget, "pause", None)
    ):
        raise TypeError(
            f"budget must be a LocalBudget or a RedisBudget, not {type(budget).__name__}"
        )
    if requests_per_minute != DEFAULT_REQUESTS_PER_MINUTE:
        raise ValueError("give budget= or requests_per_minute=, not both (the budget has its rate)")
    return budget  # type: ignore[return-value]


def check_window(window: object) -> float:
    return positive_number("window", window)


# -- LocalBudget -------------------------------------------------------------------------------


class _Ticket:
    """A sleeping caller's start; moved later when a token request takes a start before it."""

    __slots__ = ("at", "gone", "owner")

    def __init__(self, at: float, owner: object) -> None:
        self.at = at
        self.owner = owner
        self.gone = False


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
        self.window = check_window(window)
        self._span = span_of(self.window)
        self._configured = (
            math.inf if requests_per_minute is None else window_limit(requests_per_minute, window)
        )
        self._pace = Pace()
        self._started: collections.deque[float] = collections.deque()  # past starts, in order
        self._queue: collections.deque[_Ticket] = collections.deque()  # sleepers, by start
        self._rejected: collections.deque[float] = collections.deque()  # starts answered 429

    def __repr__(self) -> str:
        return f"LocalBudget({self._rpm!r}, window={self.window!r})"

    @property
    def requests_per_minute(self) -> float | None:
        return self._rpm

    @property
    def paused_until(self) -> float:
        return self._pace.paused_until

    @property
    def limit(self) -> float:
        """Requests allowed per window now (inf: unlimited)."""
        if math.isinf(self._configured):
            return math.inf
        now = asyncio.get_running_loop().time()
        return limit_at(self._pace, now, int(self._configured), self.window)

    @property
    def rate(self) -> float:
        return self.limit / self.window

    def allowance(self, seconds: float) -> float:
        """Requests this budget lets start within `seconds`, starting idle (inf: unlimited)."""
        if math.isinf(self._configured):
            return math.inf
        return allowance(seconds, int(self._configured), self.window)

    def open_now(self, now: float) -> bool:
        """True when a request may start at once (no budget and no pause): no await needed."""
        return math.isinf(self._configured) and now >= self._pace.paused_until

    async def aclose(self) -> None:
        pass

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for this caller's start. Cancelling the wait gives the start up.

        `priority` (token requests) takes the first start the window allows, ahead of the
        callers queued, who move back as far as the window requires: they are waiting for
        that very token. It still counts, and it waits out a 429 pause like everyone.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.open_now(now):
            return
        while True:
            ticket = self._reserve(now, asyncio.current_task(), first=priority)
            while ticket.at > now:  # slept until the start, unless a token request moved it
                try:
                    await asyncio.sleep(ticket.at - now)
                except asyncio.CancelledError:
                    self._give_back(ticket, loop.time())
                    raise
                now = loop.time()
            if now >= self._pace.paused_until:
                return
            # A 429 arrived while this caller slept: take a start after the pause.
            ticket.gone = True
            self._forget_past(now)

    def abandon(self, owners: Collection[object]) -> None:
        """These tasks were just cancelled: free their starts now, not when they next run."""
        now = asyncio.get_running_loop().time()
        for ticket in self._queue:
            if ticket.owner in owners:
                ticket.gone = True
        self._give_back(None, now)

    def _limit(self, now: float) -> int:
        return limit_at(self._pace, now, int(self._configured), self.window)

    def _reserve(self, now: float, owner: object, *, first: bool) -> _Ticket:
        self._forget_past(now)
        floor = max(now, self._pace.paused_until)
        if math.isinf(self._configured):
            return self._granted(_Ticket(floor, owner), now)
        limit, span = self._limit(now), self._span
        queue = self._queue
        starts = list(self._started)
        if not first or not queue:
            starts.extend(t.at for t in queue)
            ticket = _Ticket(next_start(starts, floor, limit, span), owner)
            if ticket.at > now:
                queue.append(ticket)
            return self._granted(ticket, now)
        # A token request: the first start the window allows, then the queue behind it.
        position = 0
        while True:
            at = next_start(starts, floor, limit, span)
            if position == len(queue) or at <= queue[position].at:
                break
            starts.append(queue[position].at)
            position += 1
        ticket = _Ticket(at, owner)
        starts.append(at)
        self._push_back(starts, position, floor, limit)
        if at > now:
            queue.insert(position, ticket)
        return self._granted(ticket, now)

    def _push_back(self, starts: list[float], position: int, floor: float, limit: int) -> None:
        """Move the queued starts from `position` on as late as `limit` requires after
        `starts` (never earlier: their callers already sleep to them)."""
        queue = self._queue
        for index in range(position, len(queue)):
            later = queue[index]
            later.at = max(later.at, next_start(starts, floor, limit, self._span))
            starts.append(later.at)

    def _granted(self, ticket: _Ticket, now: float) -> _Ticket:
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

    def _give_back(self, ticket: _Ticket | None, now: float) -> None:
        """A caller gave up waiting for its start. Starts given back at the end of the queue
        are taken off it, so that callers who come later do not wait behind starts nobody
        uses (a hole in the middle stays: the callers behind it already sleep to their own)."""
        if ticket is not None:
            ticket.gone = True
        self._forget_past(now)
        queue = self._queue
        while queue and queue[-1].gone:
            queue.pop()

    async def pause(self, seconds: float, *, started: float | None = None) -> None:
        """A 429 answered the request that started at `started` (loop time; None: now): hold
        every request for `seconds`, and learn from it (`on_rate_limited`)."""
        now = asyncio.get_running_loop().time()
        self._forget_past(now)
        rejected = self._rejected
        bisect.insort(rejected, now if started is None else min(started, now))
        horizon = now - self.window
        while rejected and rejected[0] <= horizon:
            rejected.popleft()
        sent = len(self._started) - bisect.bisect_right(self._started, horizon)
        configured = 1_000_000_000 if math.isinf(self._configured) else int(self._configured)
        self._pace = on_rate_limited(
            self._pace,
            now=now,
            pause=seconds,
            configured=configured,
            window=self.window,
            sent=sent,
            rejected=len(rejected),  # starts of the last window that were answered 429
        )
        if math.isinf(self._configured):  # unlimited: a pause, but no limit to lower
            self._pace = attrs.evolve(self._pace, limit=None)
        elif self._pace.limit is not None:
            # A lower limit holds for the callers already queued too.
            self._push_back(list(self._started), 0, now, self._limit(now))
