"""Where watches live: the `WatchStore` contract and its records (their JSON: `records`).

A store holds, per order ID, when to poll it next, how often it was polled, the last answer
and, once settled, its outcome until acknowledged. Several workers may share one store
(SQLite across processes, Redis across hosts), so every poll goes through a *claim*: the
store pushes the watch's next poll out by a lease and hands out a fencing token; the answer is
written back only if the token still matches, so a worker whose lease ran out (paused,
killed) can never overwrite a newer result, and a dead worker's watches come back by
themselves when their lease ends. The store owns the clock (`now()`), so that processes that
share a store agree on time.

Stored data is order data only (`records`): never pickle, never a token or a secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from .._errors import TelegentError
from .._models import Order, OrderOutcome, OrderStatus, decode_error, stored_order
from .._timing import PollPolicy

__all__ = [
    "BATCH",
    "QUEUE_BATCH",
    "Claim",
    "Delivery",
    "NewWatch",
    "PendingAnswer",
    "Settlement",
    "WatchCounts",
    "WatchState",
    "WatchStore",
]

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
        last_error: While pending, the failure of its last recorded poll, if that poll
            failed (a later answer clears it); None once settled (see `error`). A poll the
            API refused for the account's credentials, or one an unreachable budget held
            back, says nothing of the order and is not recorded.
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
    last_error: TelegentError | None = attrs.field(default=None, eq=False)


@attrs.frozen
class WatchCounts:
    """How many watches a store holds (`OrderWatcher.count`).

    Attributes:
        pending: Watches not settled yet (polled on).
        settled: Watches settled, acknowledged or not (until purged).
        unacknowledged: Of the settled ones, those whose outcome `settled()` still delivers.
    """

    pending: int
    settled: int
    unacknowledged: int


#: Watches read per batch by `WatchStore.watches` (and purged, re-armed... per script).
BATCH = 500

#: Of the watches that fell due, how many one claim queues at most (SQLite, Redis: see
#: `sqlite`). Each costs SQLite a row write (~40 us, a page each): a backlog of 100,000 (a
#: restart) is queued, earliest due first, over 1,000 claims of a few ms each, not in one
#: claim that holds the event loop for 1.5 s.
QUEUE_BATCH = 100


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
    last_error: str | bytes | None = None  # the last poll's failure (`encode_error`), if it failed

    def last(self) -> Order | None:
        return None if self.last_order is None else stored_order(self.last_order, self.order_id)

    def last_failure(self) -> TelegentError | None:
        """What the last poll failed with, or None when it was answered (or none was made, or
        its record is one this version cannot read: a newer worker's)."""
        if self.last_error is None:
            return None
        try:
            return decode_error(self.last_error, self.order_id)
        except ValueError:
            return None


@attrs.frozen(slots=True)
class PendingAnswer:
    """A poll that left its order pending: poll it again at `next_poll`."""

    claim: Claim
    next_poll: float
    order: Order | None  # None when the poll failed (transiently)
    error: TelegentError | None = None  # that failure: the store keeps it until an answer


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
    the store). `claim` hands out due watches most overdue first: never polled and woken ones
    (in the order they fell due), then the one whose last answer is oldest, whatever the poll
    intervals (issue 20). Fences only grow, across remove and add of the same order ID, so a
    claim of a removed watch never writes to its successor. `retry` re-arms settled watches (pending
    again, due now, its outcome no longer delivered); `watches` reads every watch (or the
    pending or settled ones) in batches, in no set order. A failed poll's error (`record`) is
    handed out with the watch's next claims (`Claim.last_error`) until a poll is answered, so
    a timeout settled by any worker can name it.
    """

    #: The longest a scheduler may sleep without looking at the store (changes made by other
    #: processes are seen at the latest after this many seconds).
    max_idle: float

    async def now(self) -> float: ...
    async def add(self, watches: Sequence[NewWatch]) -> int: ...
    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]: ...
    async def next_due(self) -> float | None: ...
    async def record(self, answers: Sequence[PendingAnswer]) -> list[str]: ...
    async def settle(self, settlements: Sequence[Settlement]) -> list[str]: ...
    async def renew(self, claims: Sequence[Claim], lease: float) -> list[str]: ...
    async def release(self, claims: Sequence[Claim]) -> None: ...
    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]: ...
    async def ack(self, order_ids: Sequence[str]) -> int: ...
    async def wake(self, order_ids: Sequence[str]) -> int: ...
    async def get(self, order_id: str) -> WatchState | None: ...
    async def remove(self, order_ids: Sequence[str]) -> int: ...
    async def retry(self, order_ids: Sequence[str]) -> int: ...
    async def count(self) -> WatchCounts: ...
    def watches(self, settled: bool | None = None) -> AsyncIterator[WatchState]: ...
    async def purge(self, retain: float) -> int: ...
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...
    async def aclose(self) -> None: ...


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
