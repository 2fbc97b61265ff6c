"""The account budget: at most `requests_per_minute` requests in any rolling 60 s window.

That is the limit Telegent states, so it is the one the SDK keeps. An idle client's first
requests go out at once, up to the limit; after that, each request starts as soon as the
window has room for it, in arrival order. Every request of a client (lookups, polls, token
requests) takes its start time here, after a connection of the client's (token requests take
none), so that it is sent when the budget says and the server counts it in the window the
budget counted it in.

The decisions are pure functions shared by `LocalBudget` (one process, `local`) and
`RedisBudget` (every process naming one Redis and one name; its reservation runs the same
arithmetic in Lua): `next_start` (the reservation), `on_rate_limited` and `limit_at` (the
adaptive pace).
The budget is the only place that knows the rate: the client asks it for a start time and
tells it about 429s, nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

from .._validate import positive_number

if TYPE_CHECKING:
    from .._health import Outage

__all__ = [
    "MARGIN",
    "Budget",
    "Pace",
    "allowance",
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
    configured: float,
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
    which is its real rate. Without a limit of ours (`configured` is `math.inf`) there is none
    to lower: only the pause.
    """
    paused_until = max(pace.paused_until, now + pause)
    if now < pace.paused_until:  # part of the signal under way
        signal_at, repeat = pace.signal_at, pace.repeat
    else:
        signal_at, repeat = now, now - pace.signal_at <= REPEAT_WINDOWS * window
    if math.isinf(configured):
        return Pace(paused_until, None, signal_at, repeat)
    limit = pace.limit
    current = limit_at(pace, now, int(configured), window)
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

    @property
    def outage(self) -> Outage | None:
        """The outage of what the budget is kept in (a `RedisBudget`'s Redis), if any."""
        ...


def rate_and_pause(budget: Budget, now: float) -> tuple[float | None, float]:
    """What monitoring (`client.stats`) shows of any budget, from what every budget has: its
    pace now in requests per minute (None: unlimited) and the seconds left of a 429 pause."""
    rate = budget.rate
    return (None if math.isinf(rate) else rate * 60.0), max(0.0, budget.paused_until - now)


def check_window(window: object) -> float:
    return positive_number("window", window)
