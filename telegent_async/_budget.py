"""The client-wide request budget: a paced, first-come first-served rate limit.

Every request of a client (lookups, polls, token requests) takes one slot before it takes a
pooled connection, so a large fan-out waits here, where there is no timeout, rather than in the
connection pool. A 429 pauses the whole client and halves the pace, which then recovers
linearly to the configured rate.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
from collections.abc import Collection

from ._validate import positive_number

__all__ = ["RequestBudget"]

#: Seconds for the pace to climb back from its floor to the configured rate after a 429.
RECOVERY_SECONDS = 60.0
#: The pace never drops below this share of the configured rate.
MIN_RATE_SHARE = 0.1


class _Ticket:
    """A sleeping caller's slot; moved later when a token request takes a slot before it."""

    __slots__ = ("at", "gone", "owner")

    def __init__(self, at: float, owner: object) -> None:
        self.at = at
        self.owner = owner
        self.gone = False


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
        self._last_start = -math.inf  # the latest slot already started
        self._paused_until = 0.0
        self._queue: collections.deque[_Ticket] = collections.deque()  # sleepers, by slot

    @property
    def rate(self) -> float:
        """The current pace in requests per second (lower than configured after a 429)."""
        return self._rate

    @property
    def paused_until(self) -> float:
        """Loop time until which every request of this client waits (after a 429)."""
        return self._paused_until

    def rate_and_pause(self) -> tuple[float | None, float]:
        """For monitoring (`client.stats`): the pace now in requests per minute (None:
        unlimited) and the seconds left of a 429 pause (0.0: none). Read inside the loop."""
        rate, paused_for = self.rate, self.paused_until - asyncio.get_running_loop().time()
        return (None if math.isinf(rate) else rate * 60.0), max(0.0, paused_for)

    def open_now(self, now: float) -> bool:
        """True when a request may start at once (no budget and no pause): no await needed."""
        return self._full_rate == math.inf and now >= self._paused_until

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for this caller's turn. Cancelling the wait gives the slot up.

        `priority` (token requests) takes the first free slot, ahead of the callers queued,
        who move back one slot each: they are waiting for that very token, so putting it
        behind them would stall them all and then release them in a burst. It still takes a
        real slot, so the pace holds, and it waits out a 429 pause like everyone.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.open_now(now):
            return
        while True:
            ticket = self._reserve(now, asyncio.current_task(), first=priority)
            while ticket.at > now:  # slept until the slot, unless a token request moved it
                try:
                    await asyncio.sleep(ticket.at - now)
                except asyncio.CancelledError:
                    self._give_back(ticket, loop.time())
                    raise
                now = loop.time()
            if now >= self._paused_until:
                return
            # A 429 arrived while this caller slept: take a slot after the pause.

    def abandon(self, owners: Collection[object]) -> None:
        """These tasks were just cancelled: free their slots now, not when they next run."""
        now = asyncio.get_running_loop().time()
        for ticket in self._queue:
            if ticket.owner in owners:
                ticket.gone = True
        self._give_back(None, now)

    def queued_owners(self) -> set[object]:
        """The tasks still waiting for their slot (none of their requests has gone out)."""
        now = asyncio.get_running_loop().time()
        return {t.owner for t in self._queue if not t.gone and t.at > now}

    def _reserve(self, now: float, owner: object, *, first: bool) -> _Ticket:
        self._recover(now)
        self._forget_past(now)
        interval = 1.0 / self._rate
        queue = self._queue
        if not first:
            at = max(now, self._next_slot, self._paused_until)
            self._next_slot = at + interval
            ticket = _Ticket(at, owner)
            if at > now:
                queue.append(ticket)
            else:
                self._last_start = now
            return ticket
        at = max(now, self._paused_until, self._last_start + interval)
        ticket = _Ticket(at, owner)
        position = 0
        while position < len(queue) and queue[position].at < at:
            position += 1
        # Every caller queued from there on moves back as far as the pace requires.
        floor = at + interval
        for later in itertools.islice(queue, position, None):
            later.at = max(later.at, floor)
            floor = later.at + interval
        self._next_slot = max(self._next_slot, floor)
        if at > now:
            queue.insert(position, ticket)
        else:
            self._last_start = now
        return ticket

    def _forget_past(self, now: float) -> None:
        queue = self._queue
        while queue and queue[0].at <= now:
            ticket = queue.popleft()
            if not ticket.gone:
                self._last_start = max(self._last_start, ticket.at)

    def _give_back(self, ticket: _Ticket | None, now: float) -> None:
        """A caller gave up waiting for its slot. Slots given back at the end of the queue are
        taken off it, so that callers who come later do not wait behind slots nobody uses (a
        hole in the middle stays: the callers behind it already sleep to their own slot)."""
        if ticket is not None:
            ticket.gone = True
        self._forget_past(now)
        queue = self._queue
        while queue and queue[-1].gone:
            self._next_slot = max(now, queue.pop().at)

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
