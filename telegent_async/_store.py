"""Where watches live: the `WatchStore` contract, its records, their JSON, and `MemoryStore`.

A store holds, per order ID, when to poll it next, how often it was polled, the last answer
and, once settled, its outcome until acknowledged. Several workers may share one store
(SQLite across processes, Redis across hosts), so every poll goes through a *claim*: the
store pushes the watch's next poll out by a lease and hands out a fencing token; the answer is
written back only if the token still matches, so a worker whose lease ran out (paused,
killed) can never overwrite a newer result, and a dead worker's watches come back by
themselves when their lease ends. The store owns the clock (`now()`), so that processes that
share a store agree on time.

Stored data is order data only: the order's JSON as received (minus any secret-looking field)
and errors as versioned JSON, both read back through the package's one cattrs converter.
Never pickle, never a token or a secret.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, TypeAlias

import attrs

from . import _errors
from ._errors import OrderFailed, TelegentError
from ._models import Order, OrderOutcome, OrderStatus, converter, decode_order, parse_status
from ._timing import PollPolicy

__all__ = [
    "Answer",
    "Claim",
    "Delivery",
    "MemoryStore",
    "NewWatch",
    "Settlement",
    "StoreLike",
    "WatchState",
    "WatchStore",
    "decode_error",
    "decode_policy",
    "encode_error",
    "encode_order",
    "encode_policy",
    "open_store",
]

#: Version of the stored JSON records (errors; the SQLite schema carries it too).
RECORD_VERSION = 1
#: Fields an order body must never bring into a store, should a server ever echo them.
_SECRET_KEYS = frozenset(
    key.casefold()
    for key in (
        "AccountKey",
        "AccountSecret",
        "access_token",
        "Authorization",
        "CurrentAccountNumber",
        "CurrentAccountPassword",
        "Password",
        "Pin",
        "token",
    )
)


# -- records ---------------------------------------------------------------------------------


@attrs.frozen
class WatchState:
    """A watch as its store knows it (`OrderWatcher.get`).

    Attributes:
        order_id: The order watched.
        tag: The caller's label, or None.
        status: The last status seen, or None before the first answer.
        last_order: The last `Order` seen, or None.
        attempts: How many polls were answered (or failed) so far.
        next_poll: When the order is polled next (aware datetime), or None once settled.
        settled: True once the watch has its outcome.
        acknowledged: True once that outcome was acknowledged (`settled()`, `ack`).
        error: The error the watch settled with (`NotFoundError`, `OrderWaitTimeout` ...).
    """

    order_id: str
    tag: str | None
    status: OrderStatus | None  # None before the first answer
    last_order: Order | None
    attempts: int
    next_poll: datetime | None  # None once settled
    settled: bool
    acknowledged: bool
    error: TelegentError | None = attrs.field(eq=False)


@attrs.frozen(slots=True)
class NewWatch:
    """A watch to add. `deadline` is on the store's clock (seconds since the epoch)."""

    order_id: str
    policy: PollPolicy | None = None  # None: the watcher's default
    deadline: float | None = None
    tag: str | None = None


@attrs.frozen(slots=True)
class Claim:
    """A due watch leased to one worker; writes about it must carry the same `fence`."""

    order_id: str
    fence: int
    attempts: int
    policy: PollPolicy | None
    deadline: float | None
    tag: str | None
    last_status: str | None
    last_order: bytes | None  # compact JSON, decoded only when needed
    ref: int = -1  # the store's own handle on the watch (MemoryStore: its slot)

    def last(self) -> Order | None:
        return None if self.last_order is None else decode_order(200, self.last_order)


@attrs.frozen(slots=True)
class Answer:
    """A poll that left its order pending: poll it again at `next_poll`."""

    claim: Claim
    next_poll: float
    order: Order | None  # None when the poll failed (transiently)


@attrs.frozen(slots=True)
class Settlement:
    """The final word on a watch: its last order and, if it did not settle well, the error."""

    claim: Claim
    order: Order | None
    error: TelegentError | None
    polled: bool = True  # False: timed out without a last poll (see `expired_unpolled`)


@attrs.frozen(slots=True)
class Delivery:
    """A settled outcome not yet acknowledged; `seq` orders deliveries."""

    seq: int
    outcome: OrderOutcome


class WatchStore(Protocol):
    """The contract every store meets (tests/test_store_contract.py holds it to it).

    Methods that take sequences work in one transaction; write methods return the order IDs
    whose fence no longer matched (their lease was taken over: nothing was written for them).
    A lease of `math.inf` holds a claim until it is answered or released (one process owns
    the store).
    """

    #: The longest a scheduler may sleep without looking at the store (changes made by other
    #: processes are seen at the latest after this many seconds).
    max_idle: float

    async def now(self) -> float: ...
    async def add(self, watches: Sequence[NewWatch]) -> int: ...
    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]: ...
    async def next_due(self) -> float | None: ...
    async def record(self, answers: Sequence[Answer]) -> list[str]: ...
    async def settle(self, settlements: Sequence[Settlement]) -> list[str]: ...
    async def renew(self, claims: Sequence[Claim], lease: float) -> list[str]: ...
    async def release(self, claims: Sequence[Claim]) -> None: ...
    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]: ...
    async def ack(self, order_ids: Sequence[str]) -> int: ...
    async def wake(self, order_ids: Sequence[str]) -> int: ...
    async def get(self, order_id: str) -> WatchState | None: ...
    async def remove(self, order_ids: Sequence[str]) -> int: ...
    async def purge(self, retain: float) -> int: ...
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...
    async def aclose(self) -> None: ...


#: What `OrderWatcher` accepts as its store: a store, a path (SQLite), a URL, or None (memory).
StoreLike: TypeAlias = "WatchStore | str | os.PathLike[str] | None"


def open_store(store: object) -> tuple[WatchStore, bool]:
    """The store for `store` (a store, a path, a URL, or None for memory) and whether we own it."""
    if store is None:
        return MemoryStore(), True
    if isinstance(store, (str, os.PathLike)):
        location = os.fspath(store)
        if location.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"a Redis store needs RedisStore, which is not available: {location}")
        from ._sqlite import SQLiteStore

        return SQLiteStore(location), True
    if isinstance(store, MemoryStore) or all(
        callable(getattr(store, name, None)) for name in ("claim", "record", "settle", "now")
    ):
        return store, False  # type: ignore[return-value]
    raise TypeError(f"store must be a WatchStore, a path or a URL, not {type(store).__name__}")


# -- stored JSON -----------------------------------------------------------------------------


def encode_order(order: Order) -> bytes:
    """The order's JSON as received, compact, without any secret-looking field."""
    raw = order.raw
    if any(key.casefold() in _SECRET_KEYS for key in raw):
        raw = {key: value for key, value in raw.items() if key.casefold() not in _SECRET_KEYS}
    return json.dumps(raw, separators=(",", ":")).encode()


def encode_policy(policy: PollPolicy) -> str:
    return json.dumps(converter.unstructure(policy), separators=(",", ":"))


def decode_policy(text: str) -> PollPolicy:
    return converter.structure(json.loads(text), PollPolicy)


_ERROR_TYPES: dict[str, type[TelegentError]] = {
    name: value
    for name, value in vars(_errors).items()
    if isinstance(value, type) and issubclass(value, TelegentError)
}
_ERROR_FIELDS = ("status_code", "message", "body", "retry_after", "order_id", "timeout")
_ORDER_FIELDS = ("last_order", "order")


def encode_error(error: TelegentError) -> str:
    """Versioned JSON that `decode_error` turns back into the same class with the same fields."""
    fields: dict[str, Any] = {
        name: getattr(error, name) for name in _ERROR_FIELDS if hasattr(error, name)
    }
    for name in _ORDER_FIELDS:
        value = getattr(error, name, None)
        if isinstance(value, Order):
            fields[name] = json.loads(encode_order(value))
        elif hasattr(error, name):
            fields[name] = None
    record = {"v": RECORD_VERSION, "type": type(error).__name__, "text": str(error)}
    record["fields"] = fields
    return json.dumps(record, separators=(",", ":"), default=str)


def decode_error(text: str | bytes) -> TelegentError:
    """The error `encode_error` wrote (an unknown class comes back as `TelegentError`)."""
    record = json.loads(text)
    if record.get("v") != RECORD_VERSION:
        raise ValueError(f"unsupported stored error version {record.get('v')!r}")
    cls = _ERROR_TYPES.get(record["type"], TelegentError)
    error = cls.__new__(cls)
    error.args = (record["text"],)
    for name, value in record["fields"].items():
        if name in _ORDER_FIELDS and value is not None:
            value = converter.structure(value, Order)
        setattr(error, name, value)
    if isinstance(error, OrderFailed):
        error.carrier_error = error.order.carrier_error
    return error


def utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


# -- MemoryStore -----------------------------------------------------------------------------


@attrs.define(slots=True)
class _Outcome:
    seq: int
    order: Order | None
    error: TelegentError | None
    acked_at: float | None = None


@attrs.define(slots=True)
class _Run:
    """Slots `start` to `end` (exclusive), added together and all due at `due`."""

    due: float
    start: int
    end: int


class _Listeners:
    """Callbacks run when watches are added or woken: how a store nudges sleeping schedulers."""

    __slots__ = ("callbacks",)

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def notify(self) -> None:
        for callback in list(self.callbacks):
            callback()


_NEVER = math.nan  # next poll of a watch that is not scheduled (settled or removed)


class MemoryStore:
    """Watches in this process's memory: what `wait_for_orders` uses, and the watcher default.

    Compact because a fan-out holds 100,000 watches: per watch, a slot in a list of IDs, a
    double (next poll) and a byte (attempts); watches added together wait in one run of slots
    instead of one heap entry each until their first poll; the last answer is kept as compact
    JSON, not as an `Order`. Heap entries are checked against the double when popped, so
    moving a poll (wake, claim, answer) just pushes a new entry.

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
        self._attempts = bytearray()
        self._runs: deque[_Run] = deque()  # slots added together, all due at once
        self._heap: list[tuple[float, int]] = []
        # The last answer of each pending watch: its compact JSON, a newline, its status (one
        # bytes object rather than a tuple of two: 50 bytes less per order at 100,000 orders).
        self._last: dict[int, bytes] = {}
        self._specs: dict[int, tuple[PollPolicy | None, float | None, str | None]] = {}
        self._fences: dict[int, int] = {}  # slot -> fence of its claim
        self._woken: set[int] = set()  # woken while claimed: poll again right after
        self._settled: dict[int, _Outcome] = {}
        self._undelivered: dict[int, None] = {}  # slots, in settle order
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

    def _pop_due(self, now: float) -> int | None:
        """The slot that fell due first (fair: in the order they fell due), or None."""
        while True:
            run = self._runs[0] if self._runs else None
            heap = self._heap
            if run is not None and (not heap or run.due <= heap[0][0]):
                due, slot = run.due, run.start
                if due > now:
                    return None
                run.start += 1
                if run.start >= run.end:
                    self._runs.popleft()
            elif heap and heap[0][0] <= now:
                due, slot = heapq.heappop(heap)
            else:
                return None
            if self._next[slot] == due:  # else a stale entry: the poll was moved
                return slot

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
            slot = self._pop_due(now)
            if slot is None:
                break
            order_id = self._ids[slot]
            assert order_id is not None
            self._fence += 1
            self._fences[slot] = self._fence
            until = now + lease
            self._next[slot] = until
            if until != math.inf:  # comes back if the worker never answers
                heapq.heappush(self._heap, (until, slot))
            policy, deadline, tag = self._specs.get(slot, (None, None, None))
            status, body = self._unpack_last(slot)
            claims.append(
                Claim(
                    order_id,
                    self._fence,
                    self._attempts[slot],
                    policy,
                    deadline,
                    tag,
                    status,
                    body,
                    slot,
                )
            )
        return claims

    async def next_due(self) -> float | None:
        nexts = self._next
        while self._heap and nexts[self._heap[0][1]] != self._heap[0][0]:
            heapq.heappop(self._heap)
        while self._runs and nexts[(run := self._runs[0]).start] != run.due:
            run.start += 1
            if run.start >= run.end:
                self._runs.popleft()
        candidates = [self._heap[0][0]] if self._heap else []
        if self._runs:
            candidates.append(self._runs[0].due)
        return min(candidates, default=None)

    async def record(self, answers: Sequence[Answer]) -> list[str]:
        now = self._clock()
        stale: list[str] = []
        for answer in answers:
            slot = self._held(answer.claim)
            if slot is None:
                stale.append(answer.claim.order_id)
                continue
            del self._fences[slot]
            self._attempts[slot] = min(self._attempts[slot] + 1, 255)
            order = answer.order
            if order is not None:
                status = order.raw_status.encode("utf-8", "surrogatepass")
                self._last[slot] = encode_order(order) + b"\n" + status
            due = answer.next_poll
            if slot in self._woken:
                self._woken.discard(slot)
                due = min(due, now)
            self._next[slot] = due
            heapq.heappush(self._heap, (due, slot))
        return stale

    async def settle(self, settlements: Sequence[Settlement]) -> list[str]:
        stale: list[str] = []
        for settlement in settlements:
            slot = self._held(settlement.claim)
            if slot is None:
                stale.append(settlement.claim.order_id)
                continue
            del self._fences[slot]
            self._woken.discard(slot)
            self._last.pop(slot, None)
            self._next[slot] = _NEVER
            if not self._keep_outcomes:
                self._ids[slot] = None
                self._specs.pop(slot, None)
                continue
            if settlement.polled:
                self._attempts[slot] = min(settlement.claim.attempts + 1, 255)
            self._seq += 1
            self._settled[slot] = _Outcome(self._seq, settlement.order, settlement.error)
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
                heapq.heappush(self._heap, (until, slot))
        return stale

    async def release(self, claims: Sequence[Claim]) -> None:
        now = self._clock()
        for claim in claims:
            slot = self._held(claim)
            if slot is not None:
                del self._fences[slot]
                self._woken.discard(slot)
                self._next[slot] = now
                heapq.heappush(self._heap, (now, slot))
        if claims:
            self._listeners.notify()

    def _outcome(self, slot: int) -> OrderOutcome:
        stored = self._settled[slot]
        order_id = self._ids[slot]
        assert order_id is not None
        return OrderOutcome(order_id, stored.order, stored.error, self._tag(slot))

    def _tag(self, slot: int) -> str | None:
        spec = self._specs.get(slot)
        return None if spec is None else spec[2]

    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]:
        found: list[Delivery] = []
        for slot in self._undelivered:
            seq = self._settled[slot].seq
            if seq > after:
                found.append(Delivery(seq, self._outcome(slot)))
                if len(found) >= limit:
                    break
        return found

    async def ack(self, order_ids: Sequence[str]) -> int:
        now = self._clock()
        count = 0
        for order_id in order_ids:
            slot = self._slot(order_id)
            if slot is not None and slot in self._undelivered:
                del self._undelivered[slot]
                self._settled[slot].acked_at = now
                count += 1
        return count

    async def wake(self, order_ids: Sequence[str]) -> int:
        now = self._clock()
        count = 0
        for order_id in order_ids:
            slot = self._slot(order_id)
            if slot is None or slot in self._settled:
                continue
            count += 1
            if slot in self._fences and self._next[slot] > now:
                self._woken.add(slot)  # a poll is under way: poll again as soon as it answers
            elif self._next[slot] > now:
                self._next[slot] = now
                heapq.heappush(self._heap, (now, slot))
        if count:
            self._listeners.notify()
        return count

    async def get(self, order_id: str) -> WatchState | None:
        slot = self._slot(order_id)
        if slot is None:
            return None
        tag = self._tag(slot)
        stored = self._settled.get(slot)
        if stored is not None:
            order = stored.order
            return WatchState(
                order_id,
                tag,
                None if order is None else order.status,
                order,
                self._attempts[slot],
                None,
                True,
                stored.acked_at is not None,
                stored.error,
            )
        status, body = self._unpack_last(slot)
        return WatchState(
            order_id,
            tag,
            None if status is None else parse_status(status),
            None if body is None else decode_order(200, body),
            self._attempts[slot],
            utc(self._next[slot]),
            False,
            False,
            None,
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
            self._specs.pop(slot, None)
            self._fences.pop(slot, None)
            self._settled.pop(slot, None)
            self._undelivered.pop(slot, None)
            self._woken.discard(slot)
        return count

    async def purge(self, retain: float) -> int:
        cutoff = self._clock() - retain
        old = [
            order_id
            for slot, stored in self._settled.items()
            if stored.acked_at is not None
            and stored.acked_at < cutoff
            and (order_id := self._ids[slot]) is not None
        ]
        return await self.remove(old)
