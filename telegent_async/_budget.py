"""The client-wide request budget: a paced, first-come first-served rate limit.

Every request of a client (lookups, polls, token requests) takes one slot before it takes a
pooled connection, so a large fan-out waits here, where there is no timeout, rather than in the
connection pool. A 429 pauses the whole client and halves the pace, which then recovers
linearly to the configured rate.
"""

from __future__ import annotations

import asyncio
import collections
import math

from ._validate import positive_number

__all__ = ["RequestBudget"]

#: Seconds for the pace to climb back from its floor to the configured rate after a 429.
RECOVERY_SECONDS = 60.0
#: The pace never drops below this share of the configured rate.
MIN_RATE_SHARE = 0.1


class RequestBudget:
    """Paces requests to `requests_per_minute` (None: unlimited, but 429 pauses still apply).

    Slots are handed out in arrival order, spaced `60 / rate` seconds apart, so no caller can
    starve another. Waiting costs one sleep per caller and no lock.
    """

    def __init__(self, requests_per_minute: float | None) -> None:
        if requests_per_minute is not None:
            requests_per_minute = positive_number("requests_per_minute", requests_per_minute)
        self.requests_per_minute = requests_per_minute
        self._full_rate = requests_per_minute / 60.0 if requests_per_minute else math.inf
        self._rate = self._full_rate  # requests per second, lowered after a 429
        self._rate_updated = 0.0
        self._next_slot = 0.0  # loop time at which the next request may start
        self._paused_until = 0.0
        # Future slots handed to sleeping callers, in order, and those given up by cancelling.
        self._waiting: collections.deque[float] = collections.deque()
        self._given_back: set[float] = set()

    @property
    def rate(self) -> float:
        """The current pace in requests per second (lower than configured after a 429)."""
        return self._rate

    @property
    def paused_until(self) -> float:
        """Loop time until which every request of this client waits (after a 429)."""
        return self._paused_until

    def open_now(self, now: float) -> bool:
        """True when a request may start at once (no budget and no pause): no await needed."""
        return self._full_rate == math.inf and now >= self._paused_until

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for this caller's turn. Cancelling the wait gives the slot up.

        `priority` (token requests) skips the queue but not a 429 pause: the callers queued
        are waiting for that very token, so putting it behind them would stall them all and
        then release them in a burst. The slot it takes pushes later reservations back.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.open_now(now):
            return
        if priority:
            while now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                now = loop.time()
            self._recover(now)
            if self._rate != math.inf:
                self._next_slot = max(self._next_slot, now) + 1.0 / self._rate
            return
        while True:
            slot = self._reserve(now)
            if slot > now:
                try:
                    await asyncio.sleep(slot - now)
                except asyncio.CancelledError:
                    self._give_back(slot, loop.time())
                    raise
                now = loop.time()
            if now >= self._paused_until:
                return
            # A 429 arrived while this caller slept: take a slot after the pause.

    def _reserve(self, now: float) -> float:
        self._recover(now)
        self._forget_past(now)
        slot = max(now, self._next_slot, self._paused_until)
        if self._rate != math.inf:
            self._next_slot = slot + 1.0 / self._rate
            if slot > now:
                self._waiting.append(slot)
        return slot

    def _forget_past(self, now: float) -> None:
        waiting = self._waiting
        while waiting and waiting[0] <= now:
            self._given_back.discard(waiting.popleft())

    def _give_back(self, slot: float, now: float) -> None:
        """A caller gave up waiting for `slot`. Slots given back at the end of the queue are
        taken off it, so that callers who come later do not wait behind slots nobody uses (a
        hole in the middle stays: the callers behind it already sleep to their own slot)."""
        self._forget_past(now)
        if slot <= now:
            return
        self._given_back.add(slot)
        waiting = self._waiting
        while waiting and waiting[-1] in self._given_back:
            self._next_slot = waiting.pop()
            self._given_back.discard(self._next_slot)

    def _recover(self, now: float) -> None:
        if self._rate < self._full_rate and now > self._rate_updated:
            gained = self._full_rate * (now - self._rate_updated) / RECOVERY_SECONDS
            self._rate = min(self._full_rate, self._rate + gained)
            self._rate_updated = now

    def pause(self, seconds: float) -> None:
        """Hold every request of the client for `seconds` and halve the pace (a 429 was seen)."""
        now = asyncio.get_running_loop().time()
        already_paused = now < self._paused_until
        self._paused_until = max(self._paused_until, now + seconds)
        # A burst of 429s answering requests already in flight is one signal, not many.
        if self._full_rate != math.inf and not already_paused:
            self._recover(now)
            self._rate = max(self._rate / 2.0, self._full_rate * MIN_RATE_SHARE)
            self._rate_updated = self._paused_until  # recovery starts when requests resume
            self._next_slot = max(self._next_slot, self._paused_until)
