"""`MemoryStore`: watches in this process's memory, compact enough for a 100,000-order fan-out.

The contract it keeps (claims, fences, outcomes until acknowledged) is `base.WatchStore`'s.
"""

from __future__ import annotations

import heapq
import math
import sys
import time
from array import array
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TypeVar

import attrs

from .._models import Order, OrderOutcome
from .._timing import PollPolicy
from .base import (
    Claim,
    Delivery,
    NewWatch,
    PendingAnswer,
    Settlement,
    WatchCounts,
    WatchState,
    _Listeners,
)
from .records import encode_error, encode_order, kept_outcome, stored_outcome, stored_state

__all__ = ["MemoryStore"]

_W = TypeVar("_W", PendingAnswer, Settlement)


@attrs.define(slots=True)
class _Run:
    """Slots `start` to `end` (exclusive), added together and all due at `due`."""

    due: float
    start: int
    end: int


_NEVER = math.nan  # next poll of a watch that is not scheduled (settled or removed)
_FIRST = -math.inf  # "last answered" of a woken watch: it goes before every other due one
_Entry = tuple[float, float, int]  # next poll, when the watch last answered, slot


class MemoryStore:
    """Watches in this process's memory: what `wait_for_orders` uses, and the watcher default.

    Compact because a fan-out holds 100,000 watches: per watch, a slot in a list of IDs, a
    double (next poll) and a byte (attempts); watches added together wait in one run of slots
    instead of one heap entry each until their first poll; the last answer is kept as compact
    JSON, not as an `Order`. Heap entries are checked against the double when popped, so
    moving a poll (wake, claim, answer) just pushes a new entry.

    Due watches are claimed most overdue first: never polled ones (and woken ones) in the
    order they were added, then the one whose last answer is oldest, whatever its poll
    interval, so that a budget too small for every poll the policies ask for goes round the
    pending orders instead of re-polling those with short intervals. A heap entry carries
    when its watch last answered (`_schedule`: next poll, last answer, slot); due entries
    move to a second heap ordered by that.

    Args:
        clock: Wall-clock seconds (deadlines and next polls are on it); injected by tests.
        keep_outcomes: Keep settled outcomes for `settled()` and `get` (`wait_for_orders`
            passes False: it hands each outcome over as it settles).
    """

    max_idle = math.inf  # nothing changes it behind this process's back

    def __init__(
        self, *, clock: Callable[[], float] = time.time, keep_outcomes: bool = True
    ) -> None:
        self._clock = clock
        # A fan-out hands each outcome to its caller as it settles: keeping it would hold
        # 100,000 orders by the end (`wait_for_orders` passes False; nothing reads them back).
        self._keep_outcomes = keep_outcomes
        self._ids: list[str | None] = []
        self._next = array("d")
        self._attempts = bytearray()  # polls per watch, up to 254; 255: see `_many`
        self._many: dict[int, int] = {}  # polls of the rare watch polled 255 times or more
        self._runs: deque[_Run] = deque()  # slots added together, all due at once
        self._heap: list[_Entry] = []  # scheduled polls, by next poll
        self._due: list[tuple[float, int, float]] = []  # due: (last answer, slot, next poll)
        self._answered: dict[int, float] = {}  # claimed slots: when they last answered
        # The last answer of each pending watch: its compact JSON, a newline, its status (one
        # bytes object rather than a tuple of two: 50 bytes less per order at 100,000 orders).
        self._last: dict[int, bytes] = {}
        self._failures: dict[int, str] = {}  # the last poll's failure, while it failed
        self._specs: dict[int, tuple[PollPolicy | None, float | None, str | None]] = {}
        self._fences: dict[int, int] = {}  # slot -> fence of its claim
        self._woken: set[int] = set()  # woken while claimed: poll again right after
        self._settled: dict[int, Delivery] = {}
        self._undelivered: dict[int, None] = {}  # slots, in settle order
        self._acked: dict[int, float] = {}  # slot -> when its outcome was acknowledged
        self._index: dict[str, int] | None = None  # built on first lookup by ID
        self._fence = 0
        self._seq = 0
        self._listeners = _Listeners()

    def __len__(self) -> int:
        return len(self._ids) - self._ids.count(None)

    async def now(self) -> float:
        return self._clock()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._listeners.subscribe(callback)

    async def aclose(self) -> None:
        pass

    # -- slots ---------------------------------------------------------------------------------

    def _slots(self) -> dict[str, int]:
        if self._index is None:
            self._index = {order_id: n for n, order_id in enumerate(self._ids) if order_id}
        return self._index

    def _slot(self, order_id: str) -> int | None:
        return self._slots().get(order_id)

    def _ending(self, writes: Sequence[_W], stale: list[str]) -> Iterator[tuple[_W, int]]:
        """Each write whose claim still holds its slot, the claim ended; the others' IDs go to
        `stale` (their lease ran out and another claim may have taken over)."""
        for write in writes:
            slot = self._held(write.claim)
            if slot is None:
                stale.append(write.claim.order_id)
            else:
                del self._fences[slot]
                yield write, slot

    def _held(self, claim: Claim) -> int | None:
        slot = claim.ref if 0 <= claim.ref < len(self._ids) else self._slot(claim.order_id)
        if slot is None or self._ids[slot] != claim.order_id:
            return None
        return slot if self._fences.get(slot) == claim.fence else None

    # -- contract ------------------------------------------------------------------------------

    async def add(self, watches: Sequence[NewWatch]) -> int:
        known = self._slots() if self._ids else None  # a first batch needs no index
        fresh: dict[str, NewWatch] = {}
        for watch in watches:
            if known is None or watch.order_id not in known:
                fresh.setdefault(watch.order_id, watch)
        first = len(self._ids)
        for offset, watch in enumerate(fresh.values()):
            if watch.policy is not None or watch.deadline is not None or watch.tag is not None:
                self._specs[first + offset] = (watch.policy, watch.deadline, watch.tag)
        return self.extend(list(fresh))

    def extend(self, order_ids: list[str]) -> int:
        """Add IDs known to be new and distinct, with no policy, deadline or tag.

        The fan-out's way in: no `NewWatch` per ID, no dict to find duplicates.
        """
        first = len(self._ids)
        self._ids.extend(order_ids)
        if self._index is not None:
            self._index.update(zip(order_ids, range(first, len(self._ids)), strict=True))
        added = len(order_ids)
        if added:
            self._next.extend(array("d", [self._clock()]) * added)
            self._attempts.extend(bytes(added))
            self._runs.append(_Run(self._next[first], first, len(self._ids)))
            self._listeners.notify()
        return added

    def _pop_due(self, now: float) -> tuple[int, float] | None:
        """The most overdue slot and when it last answered, or None: never polled ones first
        (in the order added), then the due ones by their last answer."""
        heap, due, nexts = self._heap, self._due, self._next
        while heap and heap[0][0] <= now:
            at, answered, slot = heapq.heappop(heap)
            if nexts[slot] == at:  # else a stale entry: the poll was moved
                heapq.heappush(due, (answered, slot, at))
        runs = self._runs
        while runs and runs[0].due <= now:
            run = runs[0]
            slot = run.start
            run.start += 1
            if run.start >= run.end:
                runs.popleft()
            if nexts[slot] == run.due:
                return slot, _FIRST
        while due:
            answered, slot, at = heapq.heappop(due)
            if nexts[slot] == at:
                return slot, answered
        return None

    def _polls(self, slot: int) -> int:
        count = self._attempts[slot]
        return count if count < 255 else self._many[slot]

    def _count_polls(self, slot: int, count: int) -> None:
        self._attempts[slot] = min(count, 255)
        if count >= 255:
            self._many[slot] = count
        elif self._many:
            self._many.pop(slot, None)

    def _keep_last(self, slot: int, order: Order | None) -> None:
        if order is not None:
            status = order.raw_status.encode("utf-8", "surrogatepass")
            self._last[slot] = encode_order(order) + b"\n" + status

    def _unpack_last(self, slot: int) -> tuple[str | None, bytes | None]:
        packed = self._last.get(slot)
        if packed is None:
            return None, None
        body, _, status = packed.partition(b"\n")  # JSON escapes newlines: the first is ours
        return status.decode("utf-8", "surrogatepass"), body

    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]:
        now = self._clock()
        claims: list[Claim] = []
        while len(claims) < limit:
            found = self._pop_due(now)
            if found is None:
                break
            slot, answered = found
            order_id = self._ids[slot]
            assert order_id is not None
            self._fence += 1
            self._fences[slot] = self._fence
            self._answered[slot] = answered
            until = now + lease
            self._next[slot] = until
            if until != math.inf:  # comes back if the worker never answers
                heapq.heappush(self._heap, (until, answered, slot))
            policy, deadline, tag = self._specs.get(slot, (None, None, None))
            status, body = self._unpack_last(slot)
            claims.append(
                Claim(
                    order_id,
                    self._fence,
                    self._polls(slot),
                    policy,
                    deadline,
                    tag,
                    status,
                    body,
                    slot,
                    self._failures.get(slot),
                )
            )
        return claims

    async def next_due(self) -> float | None:
        nexts = self._next
        while self._heap and nexts[self._heap[0][2]] != self._heap[0][0]:
            heapq.heappop(self._heap)
        while self._due and nexts[self._due[0][1]] != self._due[0][2]:
            heapq.heappop(self._due)
        while self._runs and nexts[(run := self._runs[0]).start] != run.due:
            run.start += 1
            if run.start >= run.end:
                self._runs.popleft()
        candidates = [self._heap[0][0]] if self._heap else []
        if self._due:
            candidates.append(self._due[0][2])
        if self._runs:
            candidates.append(self._runs[0].due)
        return min(candidates, default=None)

    async def record(self, answers: Sequence[PendingAnswer]) -> list[str]:
        now = self._clock()
        stale: list[str] = []
        for answer, slot in self._ending(answers, stale):
            count = self._attempts[slot] + 1
            if count < 255:
                self._attempts[slot] = count
            else:
                self._count_polls(slot, self._polls(slot) + 1)
            self._keep_last(slot, answer.order)
            if answer.error is not None:  # interned: in an outage, one text for every watch
                self._failures[slot] = sys.intern(encode_error(answer.error))
            elif self._failures:
                self._failures.pop(slot, None)
            del self._answered[slot]
            due, answered = answer.next_poll, now
            if slot in self._woken:
                self._woken.discard(slot)
                due, answered = min(due, now), _FIRST
            self._next[slot] = due
            heapq.heappush(self._heap, (due, answered, slot))
        return stale

    async def settle(self, settlements: Sequence[Settlement]) -> list[str]:
        stale: list[str] = []
        for settlement, slot in self._ending(settlements, stale):
            del self._answered[slot]
            self._woken.discard(slot)
            self._last.pop(slot, None)
            self._failures.pop(slot, None)
            self._next[slot] = _NEVER
            if not self._keep_outcomes:
                self._ids[slot] = None
                self._specs.pop(slot, None)
                continue
            if settlement.polled:
                self._count_polls(slot, settlement.claim.attempts + 1)
            self._seq += 1
            outcome = kept_outcome(
                OrderOutcome(
                    settlement.claim.order_id, settlement.order, settlement.error, self._tag(slot)
                )
            )
            self._settled[slot] = Delivery(self._seq, outcome)
            self._undelivered[slot] = None
        return stale

    async def renew(self, claims: Sequence[Claim], lease: float) -> list[str]:
        until = self._clock() + lease
        stale: list[str] = []
        for claim in claims:
            slot = self._held(claim)
            if slot is None:
                stale.append(claim.order_id)
            else:
                self._next[slot] = until
                heapq.heappush(self._heap, (until, self._answered[slot], slot))
        return stale

    async def release(self, claims: Sequence[Claim]) -> None:
        now = self._clock()
        for claim in claims:
            slot = self._held(claim)
            if slot is not None:
                del self._fences[slot]
                self._woken.discard(slot)
                self._next[slot] = now
                heapq.heappush(self._heap, (now, self._answered.pop(slot), slot))
        if claims:
            self._listeners.notify()

    def _tag(self, slot: int) -> str | None:
        spec = self._specs.get(slot)
        return None if spec is None else spec[2]

    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]:
        found: list[Delivery] = []
        for slot in self._undelivered:
            if len(found) >= limit:
                break
            delivery = self._settled[slot]
            if delivery.seq > after:
                found.append(delivery)
        return found

    def _count(self, order_ids: Sequence[str], change: Callable[[int], bool]) -> int:
        """How many of `order_ids` are watched here and were changed by `change(slot)`."""
        return sum(
            1
            for order_id in order_ids
            if (slot := self._slot(order_id)) is not None and change(slot)
        )

    async def ack(self, order_ids: Sequence[str]) -> int:
        now = self._clock()

        def ack(slot: int) -> bool:
            if self._undelivered.pop(slot, False) is False:
                return False
            self._acked[slot] = now
            return True

        return self._count(order_ids, ack)

    async def wake(self, order_ids: Sequence[str]) -> int:
        now = self._clock()

        def wake(slot: int) -> bool:
            if slot in self._settled:
                return False
            if slot in self._fences and self._next[slot] > now:
                self._woken.add(slot)  # a poll is under way: poll again as soon as it answers
            elif self._next[slot] > now:
                self._next[slot] = now
                heapq.heappush(self._heap, (now, _FIRST, slot))
            return True

        count = self._count(order_ids, wake)
        if count:
            self._listeners.notify()
        return count

    async def get(self, order_id: str) -> WatchState | None:
        slot = self._slot(order_id)
        return None if slot is None else self._state(slot, order_id)

    async def count(self) -> WatchCounts:
        settled = len(self._settled)
        return WatchCounts(len(self) - settled, settled, len(self._undelivered))

    async def watches(self, settled: bool | None = None) -> AsyncIterator[WatchState]:
        for slot, order_id in enumerate(list(self._ids)):
            there = order_id is not None and self._ids[slot] == order_id  # not removed since
            if there and settled in (None, slot in self._settled):
                assert order_id is not None
                yield self._state(slot, order_id)

    async def retry(self, order_ids: Sequence[str]) -> int:
        now = self._clock()

        def rearm(slot: int) -> bool:
            delivery = self._settled.pop(slot, None)
            if delivery is None:
                return False
            self._undelivered.pop(slot, None)
            self._acked.pop(slot, None)
            self._keep_last(slot, delivery.outcome.order)
            self._count_polls(slot, 0)
            self._next[slot] = now
            heapq.heappush(self._heap, (now, _FIRST, slot))  # polled again first
            return True

        count = self._count(order_ids, rearm)
        if count:
            self._listeners.notify()
        return count

    def _state(self, slot: int, order_id: str) -> WatchState:
        settled = self._settled.get(slot)
        if settled is not None:
            acknowledged = slot in self._acked
            return stored_state(
                settled.outcome, self._polls(slot), None, settled=True, acknowledged=acknowledged
            )
        _, body = self._unpack_last(slot)
        outcome = stored_outcome(order_id, body, None, self._tag(slot))
        return stored_state(
            outcome,
            self._polls(slot),
            self._next[slot],
            settled=False,
            acknowledged=False,
            failure=self._failures.get(slot),
        )

    async def remove(self, order_ids: Sequence[str]) -> int:
        slots = self._slots()
        count = 0
        for order_id in order_ids:
            slot = slots.pop(order_id, None)
            if slot is None:
                continue
            count += 1
            self._ids[slot] = None
            self._next[slot] = _NEVER
            self._last.pop(slot, None)
            self._failures.pop(slot, None)
            self._specs.pop(slot, None)
            self._fences.pop(slot, None)
            self._answered.pop(slot, None)
            self._settled.pop(slot, None)
            self._undelivered.pop(slot, None)
            self._acked.pop(slot, None)
            self._many.pop(slot, None)
            self._woken.discard(slot)
        return count

    async def purge(self, retain: float) -> int:
        cutoff = self._clock() - retain
        old = [
            order_id
            for slot, acked_at in self._acked.items()
            if acked_at < cutoff and (order_id := self._ids[slot]) is not None
        ]
        return await self.remove(old)
