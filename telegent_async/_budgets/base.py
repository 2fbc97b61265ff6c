"""The account budget: at most `requests_per_minute` requests in any rolling 60 s window.

That is the limit Telegent states, so it is the one the SDK keeps. Two kinds of caller share
it (`Caller`). Direct calls (lookups, port-in, create and webhook calls, token requests) go
out at once while the window has room: an idle client's first ones up to the limit, then each
as soon as the window has room for it. Background polls (`wait_for_orders`, `watch_order`,
`OrderWatcher`) go at the steady pace, the window's limit less `reserve` spread evenly over
it, and never take the last `reserve` starts of a window: a burst of polls would spend a
minute's budget in a second and then leave the rest of the minute silent, polls and direct
calls alike. Every request of a client takes its start time here, after a connection of the
client's (token requests take none), so that it is sent when the budget says and the server
counts it in the window the budget counted it in.

The decisions are pure functions shared by `LocalBudget` (one process, `local`) and
`RedisBudget` (every process naming one Redis and one name; its reservation runs the same
arithmetic in Lua): `next_start` and `background_start` (the reservations), `on_rate_limited`
and `limit_at` (the adaptive pace).
The budget is the only place that knows the rate: the client asks it for a start time and
tells it about 429s, nothing more.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

from .._validate import positive_number

if TYPE_CHECKING:
    from .._health import Outage

__all__ = [
    "MARGIN",
    "Budget",
    "Caller",
    "Pace",
    "allowance",
    "background_interval",
    "background_limit",
    "background_polls",
    "background_start",
    "caller",
    "checked_reserve",
    "default_reserve",
    "in_background_polls",
    "limit_at",
    "next_start",
    "on_rate_limited",
    "rate_and_pause",
    "span_of",
    "started",
    "window_limit",
]

#: Added to the window when reserving (at most; a 20th of shorter windows): requests reach
#: the server a little after they start, and not all equally late (a busy host, the network),
#: so starts exactly one window apart could arrive a little less than a window apart. A
#: quarter second costs 0.4 % of a 60 s window.
MARGIN = 0.25
#: Starts a span apart up to this much (the rounding of sums of background intervals) are a
#: span apart.
TOLERANCE = 1e-9
#: A 429 within this many windows of the previous one is a repeat: the real limit is lower.
REPEAT_WINDOWS = 2.0
#: After this many windows without a 429 a lowered limit climbs back, one request a window.
RECOVER_AFTER_WINDOWS = 10.0


# -- pure decisions ----------------------------------------------------------------------------


def window_limit(requests_per_minute: float, window: float) -> int:
    """Requests allowed in one window of `window` seconds (at least one)."""
    return max(1, math.floor(requests_per_minute * window / 60.0 + 1e-9))


def allowance(seconds: float, limit: int, reserve: int, window: float) -> int:
    """Background polls an idle budget lets start within `seconds`: one at once, then one
    each `background_interval`."""
    interval = background_interval(limit, reserve, span_of(window))
    return math.floor(seconds / interval + 1e-9) + 1


def span_of(window: float) -> float:
    """How far apart a reservation keeps a start and the `limit`-th before it."""
    return window + min(MARGIN, window / 20.0)


def next_start(starts: Sequence[float], now: float, limit: int, span: float) -> float:
    """The earliest start, not before `now`, that keeps every window at `limit` or fewer.

    `starts`: the starts already granted (past and future), in time order; `span`: the
    window and its margin (`span_of`). A start may go between later ones (a hole left by a
    cancellation, a background poll booked ahead): every `limit` consecutive starts less than
    a span apart forbid the times that would make them `limit + 1` within one span, and the
    result is the first time not forbidden. Both ends of those forbidden stretches grow with
    the starts, so one pass finds it.
    """
    if len(starts) < limit:
        return now
    at = now
    for first in range(len(starts) - limit + 1):
        earliest, latest = starts[first], starts[first + limit - 1]
        if (
            latest - earliest < span - TOLERANCE
            and latest - span + TOLERANCE < at < earliest + span - TOLERANCE
        ):
            at = earliest + span
    return at


def default_reserve(limit: float) -> int:
    """The starts of each window that background polls leave to direct calls: a tenth of the
    window's limit, at least one (none when the limit is a single request)."""
    if math.isinf(limit):
        return 0
    return min(int(limit) - 1, max(1, int(limit) // 10))


def checked_reserve(reserve: object, limit: float) -> int:
    """`reserve=` as given (None: `default_reserve`), below the window's limit."""
    if reserve is None:
        return default_reserve(limit)
    if isinstance(reserve, bool) or not isinstance(reserve, int):
        raise TypeError(f"reserve must be an int or None, not {type(reserve).__name__}")
    if reserve < 0 or reserve >= limit:
        raise ValueError(
            f"reserve must be at least 0 and below the window's limit ({limit:g}), not {reserve}"
        )
    return reserve


def background_limit(limit: int, reserve: int) -> int:
    """The starts a window may hold when the next is a background poll's (at least one)."""
    return max(1, limit - reserve)


def background_interval(limit: int, reserve: int, span: float) -> float:
    """The steady pace of background polls: the window's background share spread evenly
    over the span, so they never fill a window before it ends."""
    return span / background_limit(limit, reserve)


def background_start(
    starts: Sequence[float], now: float, limit: int, reserve: int, span: float, paced: float
) -> float:
    """A background poll's start: not before `paced` (the previous one's plus
    `background_interval`: a steady pace, never a burst), and with every window it falls in
    holding at most `limit - reserve` starts, so `reserve` are left to direct calls."""
    return next_start(starts, max(now, paced), background_limit(limit, reserve), span)


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


# -- who is asking: a direct call or a background poll ------------------------------------------


class Caller(enum.Enum):
    """The two kinds of caller a budget tells apart."""

    DIRECT = "direct"  # a call made by the user's code: at once while the window has room
    BACKGROUND = "background"  # a poll of a wait or a watcher: at the steady pace, `reserve` left


class _Polls:
    """The background polls made in one context, and who hears when one gets its start."""

    __slots__ = ("on_start",)

    def __init__(self, on_start: Callable[[], None] | None) -> None:
        self.on_start = on_start


_POLLS: contextvars.ContextVar[_Polls | None] = contextvars.ContextVar(
    "telegent_async_polls", default=None
)


@contextlib.contextmanager
def background_polls(on_start: Callable[[], None] | None = None) -> Iterator[None]:
    """Requests made inside are background polls (a wait's or the scheduler's lookups), and
    their retries too; the transport need not know: the budget asks `caller`. `on_start` is
    called each time one of them is granted its start (the scheduler then claims the next
    watch to poll, so that few polls queue in the budget with a watch chosen long before)."""
    token = _POLLS.set(_Polls(on_start))
    try:
        yield
    finally:
        _POLLS.reset(token)


def in_background_polls() -> bool:
    """True inside `background_polls` (the send path asks, for `Budget.start_now`)."""
    return _POLLS.get() is not None


def caller(*, priority: bool, background: bool) -> Caller:
    """The kind of the caller of `Budget.acquire`: token requests (`priority`) are direct;
    `background=True` or a call inside `background_polls` is a background poll."""
    if priority:
        return Caller.DIRECT
    return Caller.BACKGROUND if background or in_background_polls() else Caller.DIRECT


def started(kind: Caller) -> None:
    """A caller of that kind was granted its start: a background poll tells its
    `background_polls`'s `on_start`."""
    if kind is Caller.BACKGROUND:
        polls = _POLLS.get()
        if polls is not None and polls.on_start is not None:
            polls.on_start()


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

    def allowance(self, seconds: float) -> float:
        """Background polls this budget lets start within `seconds`, starting idle."""
        ...

    def open_now(self, now: float) -> bool:
        """True when a request may start at once because nothing limits it now (no limit,
        no pause); asks nothing of the window."""
        ...

    def start_now(self, now: float) -> bool:
        """Start this request now if it needs no wait (then it counts): `open_now`, or a
        direct call the window has room for. False: await `acquire`."""
        ...

    async def acquire(self, *, priority: bool = False, background: bool = False) -> None:
        """Wait for this request's start: at once while the window has room for a direct call
        (`priority`: a token request, ahead of queued calls); at the steady pace, leaving the
        reserve, for a background poll (`background=True`, or a call in `background_polls`)."""
        ...

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
