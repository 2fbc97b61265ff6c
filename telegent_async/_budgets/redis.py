"""`RedisBudget`: one account budget shared by every process naming one Redis and one name.

A caller gets its start time from a reservation made atomically in Lua on Redis's clock (the
arithmetic of `base.next_start`), sleeps until it, then checks that no 429 paused the
account meanwhile; a paused caller gives its start back and reserves again after the pause.
A 429 seen by any worker extends the shared pause (it only moves later) and feeds the pure
`base.on_rate_limited`, whose verdict (the adaptive limit) is written back to Redis.

Keys (one hash tag, so one Cluster slot): the sorted set of granted starts (past and future),
a hash with the pace (pause, lowered limit), a sorted set of recent 429s and a counter.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

import attrs

from .._config import DEFAULT_REQUESTS_PER_MINUTE
from .._errors import BudgetUnavailableError
from .._health import Outage, is_transient, retrying
from .._redis_connection import cancellable, connect, hash_tag
from .._validate import positive_number
from .base import (
    Caller,
    Pace,
    allowance,
    background_interval,
    caller,
    check_window,
    checked_reserve,
    limit_at,
    on_rate_limited,
    span_of,
    started,
    window_limit,
)

__all__ = ["UNAVAILABLE_AFTER", "RedisBudget", "RedisBudgetKeys", "redis_budget_keys"]

T = TypeVar("T")

#: Seconds one budget operation retries an unreachable Redis (on `_health.FAULT_POLICY`)
#: before the call fails with `BudgetUnavailableError`; a call's own `timeout=` ends it sooner.
UNAVAILABLE_AFTER = 30.0


@attrs.frozen
class RedisBudgetKeys:
    starts: str  # sorted set: reservation number -> start (Redis clock), past and future
    sent: str  # sorted set: reservation number -> when its request was really let go
    pace: str  # hash: paused_until, limit, signal_at, repeat, version
    rejected: str  # sorted set: 429s of the last window
    counter: str  # reservation and rejection numbers


def redis_budget_keys(name: str) -> RedisBudgetKeys:
    """The keys of the budget `name` (pure), all under the hash tag `{telegent-budget:name}`."""
    tag = hash_tag("name", name).replace("{", "{telegent-budget:", 1)
    return RedisBudgetKeys(
        f"{tag}:starts", f"{tag}:sent", f"{tag}:pace", f"{tag}:rejected", f"{tag}:n"
    )


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function num(x) return string.format('%.17g', x) end  -- floats travel as strings
"""

# KEYS: starts, pace, counter, sent. ARGV: limit, span (the window and its margin: span_of),
# reserve (-1: a direct call), interval (base.background_interval). The arithmetic of
# base.next_start and base.background_start. Returns {start, now, member, paused_until,
# limit, signal_at, repeat}. A start not later than now is a request sent at once: it counts
# as sent already. A background poll's member starts with "b": a direct call looks past the
# polls booked ahead (each checks the window again when it sends, `_CHECK`), so polls queued
# in other processes never hold it back while the window has room.
_RESERVE = (
    _NOW
    + """
local limit, span, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- A start a span old can no longer fill any window.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now - span))
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', num(now - span))
local pace = redis.call('HMGET', KEYS[2], 'paused_until', 'limit', 'signal_at', 'repeat',
  'paced')
local start = math.max(now, tonumber(pace[1] or '0'))
if reserve >= 0 then  -- a background poll: the steady pace, the reserve left to direct calls
  limit = math.max(1, limit - reserve)
  start = math.max(start, tonumber(pace[5] or '0'))
end
-- A late sender counts from when it sent: one span after the limit-th latest really sent.
if redis.call('ZCARD', KEYS[4]) >= limit then
  local kth = redis.call('ZRANGE', KEYS[4], -limit, -limit, 'WITHSCORES')
  start = math.max(start, tonumber(kth[2]) + span)
end
-- base.next_start over the starts granted (past and future, in time order).
local granted = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local times = {}
for i = 1, #granted, 2 do
  if reserve >= 0 or granted[i]:sub(1, 1) ~= 'b' or tonumber(granted[i + 1]) <= now then
    times[#times + 1] = tonumber(granted[i + 1])
  end
end
local tolerance = 1e-9  -- base.TOLERANCE
for first = 1, #times - limit + 1 do
  local earliest, latest = times[first], times[first + limit - 1]
  if latest - earliest < span - tolerance and latest - span + tolerance < start
      and start < earliest + span - tolerance then
    start = earliest + span
  end
end
local member = tostring(redis.call('INCR', KEYS[3]))
if reserve >= 0 then
  redis.call('HSET', KEYS[2], 'paced', num(start + tonumber(ARGV[4])))
  member = 'b' .. member
end
redis.call('ZADD', KEYS[1], num(start), member)
if start <= now then redis.call('ZADD', KEYS[4], num(now), member) end
return {num(start), num(now), member, pace[1], pace[2], pace[3], pace[4]}
"""
)

# KEYS: starts, pace, sent. ARGV: member, limit, span. After the sleep, just before sending:
# still not paused, and the window of requests really sent still has room? Then it counts as
# sent now (however late its sender woke); else it gives its start back (reserve again).
_CHECK = (
    _NOW
    + """
local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
local busy = redis.call('ZCOUNT', KEYS[3], '(' .. num(now - tonumber(ARGV[3])), '+inf')
if paused > now or busy >= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[3], num(now), ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', num(now), ARGV[1])  -- later reservations count from here
return 1
"""
)

# KEYS: sent, pace, rejected, counter. ARGV: pause, window, how long ago the rejected request
# started. Extends the shared pause (only ever later), counts the 429 by its request's start
# and what the window holds.
# Returns {now, paused_until, limit, signal_at, repeat, version (as before), sent, rejected}.
_RATE_LIMITED = (
    _NOW
    + """
local pause, window, ago = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local pace = redis.call('HMGET', KEYS[2], 'paused_until', 'limit', 'signal_at', 'repeat',
  'version')
local paused_until = math.max(now + pause, tonumber(pace[1] or '0'))
redis.call('HSET', KEYS[2], 'paused_until', num(paused_until))
redis.call('ZADD', KEYS[3], num(now - ago), redis.call('INCR', KEYS[4]))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', num(now - window))
local sent = redis.call('ZCOUNT', KEYS[1], '(' .. num(now - window), num(now))
local rejected = redis.call('ZCARD', KEYS[3])
return {num(now), pace[1], pace[2], pace[3], pace[4], pace[5], sent, rejected}
"""
)

# KEYS: pace. ARGV: version read, limit ('' = configured), signal_at, repeat.
# Writes the adaptive verdict unless another worker wrote one since (it saw the same 429s).
_SET_PACE = """
if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'limit')
else redis.call('HSET', KEYS[1], 'limit', ARGV[2]) end
redis.call('HSET', KEYS[1], 'signal_at', ARGV[3], 'repeat', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
"""


def _float(value: bytes | None, default: float) -> float:
    return default if value is None else float(value)


def _pace(paused: bytes | None, limit: bytes | None, signal: bytes | None, repeat: Any) -> Pace:
    return Pace(
        _float(paused, -math.inf),
        None if limit is None else int(limit),
        _float(signal, -math.inf),
        repeat == b"1",
    )


class _Ticket:
    __slots__ = ("at", "owner")

    def __init__(self, at: float, owner: object) -> None:
        self.at = at  # loop time
        self.owner = owner


class RedisBudget:
    """`RedisBudget("redis://...", requests_per_minute=50, name="telegent")`: one account budget
    for every process that names the same Redis and `name`.

    No rolling `window` (60 s) holds more than `requests_per_minute` requests of them all; an
    idle account's first direct calls go out at once; background polls of every process go
    at one shared steady pace (a GCRA-style reservation on Redis's clock) and leave `reserve`
    starts of every window to direct calls; a 429 seen by any of them pauses them all.
    Token requests queue like any other direct call here (they are rare). Needs the `redis`
    extra. Redis unreachable (restarted, failing over) is retried within the call's timeout
    (at most `UNAVAILABLE_AFTER` seconds), then the call fails with `BudgetUnavailableError`:
    a request is never sent unbudgeted. `outage` says whether Redis is away now. A client
    given this budget closes its connection on exit (it reconnects if used again).

    Args:
        url: The Redis URL (`redis://`, `rediss://` or `unix://`).
        requests_per_minute: The account's limit.
        name: The budget's name: processes naming the same one share it.
        window: The rolling window in seconds that the server counts requests in.
        reserve: Starts of every window that background polls leave to direct calls
            (None: a tenth of the window's limit, at least 1; below the limit). Processes
            sharing a budget should give the same.
    """

    def __init__(
        self,
        url: str,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        name: str = "telegent",
        *,
        window: float = 60.0,
        reserve: int | None = None,
    ) -> None:
        self._rpm = positive_number("requests_per_minute", requests_per_minute)
        self.window = check_window(window)
        self._span_seconds = span_of(self.window)
        self._span = repr(self._span_seconds)  # as the scripts take it
        self.name = name
        self.keys = redis_budget_keys(name)
        self._configured = window_limit(self._rpm, self.window)
        self.reserve = checked_reserve(reserve, self._configured)
        self._redis = connect(url)
        self._reserve = self._redis.register_script(_RESERVE)
        self._check = self._redis.register_script(_CHECK)
        self._rate_limited = self._redis.register_script(_RATE_LIMITED)
        self._set_pace = self._redis.register_script(_SET_PACE)
        self._pace = Pace()
        self._redis_ahead = 0.0  # Redis clock minus loop clock, as last seen
        self._tickets: dict[str, _Ticket] = {}  # sleeping callers' reservations
        self._giving_back: set[asyncio.Task[None]] = set()
        self.outage = Outage("budget")

    async def _redis_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One Redis operation, retried while Redis is away; then `BudgetUnavailableError`."""
        give_up = asyncio.get_running_loop().time() + UNAVAILABLE_AFTER
        try:
            return await retrying(lambda: cancellable(call()), self.outage, give_up_at=give_up)
        except Exception as exc:
            if not is_transient(exc):
                raise
            raise BudgetUnavailableError(
                f"the budget's Redis could not be reached for {UNAVAILABLE_AFTER:g} s"
            ) from exc

    def __repr__(self) -> str:
        return (
            f"RedisBudget(requests_per_minute={self._rpm!r}, name={self.name!r},"
            f" window={self.window!r}, reserve={self.reserve!r})"
        )

    @property
    def requests_per_minute(self) -> float:
        return self._rpm

    @property
    def paused_until(self) -> float:
        return self._pace.paused_until - self._redis_ahead

    def _redis_now(self) -> float:
        return asyncio.get_running_loop().time() + self._redis_ahead

    @property
    def limit(self) -> int:
        """Requests allowed per window now, as this process last heard."""
        return limit_at(self._pace, self._redis_now(), self._configured, self.window)

    @property
    def rate(self) -> float:
        return self.limit / self.window

    def allowance(self, seconds: float) -> float:
        return allowance(seconds, self._configured, self.reserve, self.window)

    def start_now(self, now: float) -> bool:
        return False  # every request takes a reservation in Redis

    def open_now(self, now: float) -> bool:
        return False  # every request takes a reservation in Redis

    async def acquire(self, *, priority: bool = False, background: bool = False) -> None:
        """Reserve a start in Redis and sleep until it; again after a pause that came meanwhile.
        A background poll (`background=True`, or a call in `base.background_polls`) reserves
        at the shared steady pace, leaving the reserve."""
        kind = caller(priority=priority, background=background)
        loop = asyncio.get_running_loop()
        keys = self.keys
        while True:
            limit, span = self.limit, self._span
            reserve, interval = -1, 0.0
            if kind is Caller.BACKGROUND:
                reserve = self.reserve
                interval = background_interval(limit, reserve, self._span_seconds)
            reply = await self._redis_call(
                functools.partial(
                    self._reserve,
                    keys=[keys.starts, keys.pace, keys.counter, keys.sent],
                    args=[limit, span, reserve, repr(interval)],
                )
            )
            start, now, member = float(reply[0]), float(reply[1]), reply[2].decode()
            self._redis_ahead = now - loop.time()
            self._pace = _pace(*reply[3:7])
            if start <= now:
                started(kind)
                return
            self._tickets[member] = _Ticket(loop.time() + start - now, asyncio.current_task())
            try:
                await asyncio.sleep(start - now)
                # The hard rule only: the reserve was kept when the start was reserved, and a
                # direct call may have taken its room since (as in `LocalBudget`).
                checked = await self._redis_call(
                    functools.partial(
                        self._check,
                        keys=[keys.starts, keys.pace, keys.sent],
                        args=[member, limit, span],
                    )
                )
                if checked:
                    started(kind)
                    return
            except BaseException:  # cancelled, or Redis away: the start is not used
                self._give_back([member])
                raise
            finally:
                del self._tickets[member]

    def abandon(self, owners: Collection[object]) -> None:
        """These tasks were just cancelled: give their reservations back now."""
        self._give_back([m for m, t in self._tickets.items() if t.owner in owners])

    def _give_back(self, members: Sequence[str]) -> None:
        if not members:
            return
        task = asyncio.ensure_future(self._remove(members))
        self._giving_back.add(task)
        task.add_done_callback(self._given_back)

    async def _remove(self, members: Sequence[str]) -> None:
        await self._redis.zrem(self.keys.starts, *members)

    def _given_back(self, task: asyncio.Task[None]) -> None:
        self._giving_back.discard(task)
        if not task.cancelled():
            task.exception()  # a lost give-back only wastes a start: never an error

    async def pause(self, seconds: float, *, started: float | None = None) -> None:
        """A 429 answered the request that started at `started` (loop time; None: now): pause
        every process of this budget, and learn from it (`on_rate_limited`)."""
        keys = self.keys
        ago = 0.0 if started is None else max(0.0, asyncio.get_running_loop().time() - started)
        reply = await self._redis_call(
            lambda: self._rate_limited(
                keys=[keys.sent, keys.pace, keys.rejected, keys.counter],
                args=[repr(seconds), repr(self.window), repr(ago)],
            )
        )
        now = float(reply[0])
        self._redis_ahead = now - asyncio.get_running_loop().time()
        before = _pace(*reply[1:5])
        version = b"0" if reply[5] is None else reply[5]
        after = on_rate_limited(
            before,
            now=now,
            pause=seconds,
            configured=self._configured,
            window=self.window,
            sent=int(reply[6]),
            rejected=int(reply[7]),
        )
        self._pace = after
        if (after.limit, after.signal_at, after.repeat) != (
            before.limit,
            before.signal_at,
            before.repeat,
        ):
            await self._redis_call(
                lambda: self._set_pace(
                    keys=[keys.pace],
                    args=[
                        version,
                        "" if after.limit is None else after.limit,
                        repr(after.signal_at),
                        int(after.repeat),
                    ],
                )
            )

    async def aclose(self) -> None:
        if self._giving_back:
            await asyncio.gather(*self._giving_back, return_exceptions=True)
        await self._redis.aclose()
