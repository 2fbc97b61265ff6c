"""`SQLiteStore`: durable watches in one SQLite file, shared by any number of local processes.

Plain `sqlite3` calls, batched, because each is a few microseconds (aiosqlite's thread hop
measured ~10x slower per claim). They run on the event loop's thread, so every transaction is
tiny and holds no `await`: `BEGIN IMMEDIATE` takes the write lock up front (no deadlock
between two readers that both want to write), and a short `busy_timeout` bounds how long one
call can block the loop when another process holds the lock; past it, the call gives the loop
back (`asyncio.sleep`) and tries again. WAL lets readers go on while one process writes, and
`synchronous=NORMAL` skips the fsync per commit (a power cut may lose the last commits; a
killed process loses nothing).

Due watches are claimed most overdue first, as `MemoryStore` does: never answered (and woken)
ones first, then the one whose last answer (`answered`) is oldest. "Due, ordered by another
column" is no single index range, so due watches join a queue (`queued = 1`, the index
`watches_overdue` on (answered, next_poll)) and a claim first moves into it up to
`QUEUE_BATCH` of the watches that fell due (`watches_waiting`: next poll, not queued), the
earliest first: every step is an index range, whatever the number of watches. A write that
moves a next poll to later takes its watch out of the queue; one that makes it due now puts
it in. Measured (100,000 answered watches all due, claims of 20): the first claim 2.5 ms
(queueing them all at once took 1.5 s, the event loop held), the next ones 4 to 6 ms (1 ms
in 0.2.0) until the backlog is queued.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from .._errors import TelegentError
from .._models import Order
from .base import (
    BATCH,
    QUEUE_BATCH,
    Claim,
    Delivery,
    NewWatch,
    PendingAnswer,
    Settlement,
    WatchCounts,
    WatchState,
    _Listeners,
)
from .processes import name, take_over
from .records import PolicyJSON, encode_error, encode_order, stored_outcome, stored_state
from .sqlite_file import SQLiteFile

__all__ = ["SQLiteStore"]

logger = logging.getLogger("telegent_async")

T = TypeVar("T")

_CLAIM_COLUMNS = "order_id, fence, attempts, policy, deadline, tag, last_status, last_order, error"
_HELD = "order_id = ? AND fence = ? AND leased_by IS NOT NULL"


_STATE_COLUMNS = "order_id, tag, last_order, attempts, next_poll, settled_seq, error, acked_at"


def _state(row: Any) -> WatchState:
    """A watch from its row (`_STATE_COLUMNS`)."""
    order_id, tag, body, attempts, next_poll, seq, error, acked_at = row
    settled = seq is not None  # pending, `error` holds its last poll's failure
    return stored_state(
        stored_outcome(order_id, body, error if settled else None, tag),
        attempts,
        next_poll,
        settled=settled,
        acknowledged=acked_at is not None,
        failure=error,
    )


def _last_fence(db: sqlite3.Connection) -> int:
    """The last fence handed out: one counter for the file, so fences only grow, even across
    remove and add of the same order ID (a file from 0.2.0 starts from its highest fence)."""
    row = db.execute("SELECT value FROM counters WHERE name = 'fence'").fetchone()
    if row is None:
        row = db.execute("SELECT coalesce(max(fence), 0) FROM watches").fetchone()
    return int(row[0])


def _storable(status: str) -> str | bytes:
    """A status as SQLite can store it: JSON may carry lone surrogates, which UTF-8 text
    cannot, so any other than ASCII is kept as its bytes, as it came (`_status`)."""
    return status if status.isascii() else status.encode("utf-8", "surrogatepass")


def _status(stored: str | bytes | None) -> str | None:
    """The status `_storable` kept (text, or its bytes)."""
    return stored.decode("utf-8", "surrogatepass") if isinstance(stored, bytes) else stored


def _written(claim: Claim, order: Order | None, error: TelegentError | None) -> tuple[Any, ...]:
    """What `record` and `settle` write of a watch, as they bind it: status, order JSON and
    error JSON (None: none; a record's failed poll, a settlement's error), then the watch and
    its fence."""
    return (
        None if order is None else _storable(order.raw_status),
        None if order is None else encode_order(order),
        None if error is None else encode_error(error),
        claim.order_id,
        claim.fence,
    )


class SQLiteStore:
    """Watches in an SQLite file (`SQLiteStore("watches.db")`); several processes may share it.

    Leases decide which process polls an order; a process killed at any instant loses
    nothing that was committed. A lease names its process (`processes`): a worker on the same
    host takes over the leases of a process that is gone at once (within `max_idle`); those
    of a process on another host come back when their lease ends.

    Args:
        path: The database file (created if missing).
        clock: Wall-clock seconds (deadlines, leases, next polls); injected by tests.
        busy_timeout: Seconds one call may block the event loop on another process's lock
            before it gives the loop back and tries again.
        lock_timeout: Seconds a write may keep retrying for the lock before it gives up.
    """

    #: Other processes' adds and wakes are seen within this many seconds.
    max_idle = 1.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 0.02,
        lock_timeout: float = 30.0,
    ) -> None:
        self.path = os.fspath(path)
        if not self.path:
            raise ValueError("SQLiteStore needs a file path")
        self._clock = clock
        self._db = SQLiteFile(self.path, busy_timeout=busy_timeout, lock_timeout=lock_timeout)
        self._run = self._db.run
        self._policies = PolicyJSON()
        self._listeners = _Listeners()
        self._named: set[str] = set()  # workers whose process this store has named
        self._reap_at = -math.inf  # when to look for leases of dead processes next

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- plumbing ------------------------------------------------------------------------------

    async def now(self) -> float:
        return self._clock()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._listeners.subscribe(callback)

    async def aclose(self) -> None:
        self._db.close()

    # -- contract ------------------------------------------------------------------------------

    async def add(self, watches: Sequence[NewWatch]) -> int:
        now = self._clock()
        encode = self._policies.encode
        rows = [(w.order_id, now, w.tag, encode(w.policy), w.deadline) for w in watches]

        def insert(db: sqlite3.Connection) -> int:
            cursor = db.executemany(
                "INSERT OR IGNORE INTO watches"
                " (order_id, next_poll, tag, policy, deadline, queued) VALUES (?, ?, ?, ?, ?, 1)",
                rows,
            )
            return cursor.rowcount

        added = await self._run(insert)
        if added:
            self._listeners.notify()
        return added

    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]:
        def claim(db: sqlite3.Connection) -> list[Claim]:
            now = self._clock()
            if now >= self._reap_at:
                self._reap_at = now + self.max_idle
                take_over(db, now, self._named)
            if worker not in self._named:
                name(db, worker)
            db.execute(
                "UPDATE watches SET queued = 1 WHERE order_id IN (SELECT order_id FROM watches"
                " WHERE queued = 0 AND next_poll <= ? ORDER BY next_poll LIMIT ?)",
                (now, QUEUE_BATCH),
            )
            rows = db.execute(
                f"SELECT {_CLAIM_COLUMNS} FROM watches WHERE queued = 1"
                " ORDER BY answered, next_poll LIMIT ?",
                (limit,),
            ).fetchall()
            if not rows:
                return []
            first = _last_fence(db) + 1
            db.executemany(
                "UPDATE watches SET fence = ?, next_poll = ?, leased_by = ?, queued = 0"
                " WHERE order_id = ?",
                [(first + n, now + lease, worker, row[0]) for n, row in enumerate(rows)],
            )
            db.execute(
                "INSERT OR REPLACE INTO counters VALUES ('fence', ?)", (first + len(rows) - 1,)
            )
            return [
                Claim(
                    order_id,
                    first + n,
                    attempts,
                    self._policies.decode(policy),
                    deadline,
                    tag,
                    _status(status),
                    last,
                    last_error=error,  # a pending watch's: its last poll's failure
                )
                for n, (order_id, _, attempts, policy, deadline, tag, status, last, error) in (
                    enumerate(rows)
                )
            ]

        claims = await self._run(claim)
        self._named.add(worker)  # committed: others can tell when this process is gone
        return claims

    async def next_due(self) -> float | None:
        def due(db: sqlite3.Connection) -> float | None:
            # Queued watches are due: the first of the queue stands for them all.
            (waiting,) = db.execute(
                "SELECT min(next_poll) FROM watches WHERE queued = 0 AND next_poll IS NOT NULL"
            ).fetchone()
            queued = db.execute(
                "SELECT next_poll FROM watches WHERE queued = 1 ORDER BY answered, next_poll"
                " LIMIT 1"
            ).fetchone()
            found = (waiting, queued[0] if queued else None)
            return min((at for at in found if at is not None), default=None)

        return await self._run(due, write=False)

    async def record(self, answers: Sequence[PendingAnswer]) -> list[str]:
        rows = [(a.next_poll, *_written(a.claim, a.order, a.error)) for a in answers]

        def record(db: sqlite3.Connection) -> list[str]:
            now = self._clock()
            stale = []
            for next_poll, status, body, error, order_id, fence in rows:
                cursor = db.execute(
                    "UPDATE watches SET attempts = attempts + 1,"
                    " next_poll = CASE WHEN woken THEN min(?, ?) ELSE ? END, woken = 0,"
                    " answered = CASE WHEN woken THEN NULL ELSE ? END, queued = woken,"
                    " leased_by = NULL, last_status = coalesce(?, last_status),"
                    f" last_order = coalesce(?, last_order), error = ? WHERE {_HELD}",
                    (next_poll, now, next_poll, now, status, body, error, order_id, fence),
                )
                if cursor.rowcount != 1:
                    stale.append(order_id)
            return stale

        return await self._run(record)

    async def settle(self, settlements: Sequence[Settlement]) -> list[str]:
        rows = [(int(s.polled), *_written(s.claim, s.order, s.error)) for s in settlements]

        def settle(db: sqlite3.Connection) -> list[str]:
            seq = db.execute("SELECT value FROM counters WHERE name = 'settled_seq'").fetchone()[0]
            stale = []
            for polled, status, body, error, order_id, fence in rows:
                cursor = db.execute(
                    "UPDATE watches SET attempts = attempts + ?, next_poll = NULL, woken = 0,"
                    " queued = 0, leased_by = NULL, last_status = coalesce(?, last_status),"
                    " last_order = coalesce(?, last_order), error = ?, settled_seq = ?"
                    f" WHERE {_HELD}",
                    (polled, status, body, error, seq + 1, order_id, fence),
                )
                if cursor.rowcount == 1:
                    seq += 1
                else:
                    stale.append(order_id)
            db.execute("UPDATE counters SET value = ? WHERE name = 'settled_seq'", (seq,))
            return stale

        return await self._run(settle)

    async def renew(self, claims: Sequence[Claim], lease: float) -> list[str]:
        def renew(db: sqlite3.Connection) -> list[str]:
            until = self._clock() + lease
            stale = []
            for claim in claims:
                cursor = db.execute(
                    f"UPDATE watches SET next_poll = ?, queued = 0 WHERE {_HELD}",
                    (until, claim.order_id, claim.fence),
                )
                if cursor.rowcount != 1:
                    stale.append(claim.order_id)
            return stale

        return await self._run(renew)

    async def release(self, claims: Sequence[Claim]) -> None:
        def release(db: sqlite3.Connection) -> None:
            now = self._clock()
            db.executemany(
                f"UPDATE watches SET next_poll = ?, leased_by = NULL, woken = 0, queued = 1"
                f" WHERE {_HELD}",
                [(now, claim.order_id, claim.fence) for claim in claims],
            )

        if claims:
            await self._run(release)
            self._listeners.notify()

    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]:
        def select(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT settled_seq, order_id, last_order, error, tag FROM watches"
                " WHERE settled_seq > ? AND acked_at IS NULL ORDER BY settled_seq LIMIT ?",
                (after, limit),
            ).fetchall()

        return [
            Delivery(seq, stored_outcome(order_id, body, error, tag))
            for seq, order_id, body, error, tag in await self._run(select, write=False)
        ]

    async def ack(self, order_ids: Sequence[str]) -> int:
        def ack(db: sqlite3.Connection) -> int:
            now = self._clock()
            return db.executemany(
                "UPDATE watches SET acked_at = ?"
                " WHERE order_id = ? AND settled_seq IS NOT NULL AND acked_at IS NULL",
                [(now, order_id) for order_id in order_ids],
            ).rowcount

        return await self._run(ack)

    async def wake(self, order_ids: Sequence[str]) -> int:
        def wake(db: sqlite3.Connection) -> int:
            now = self._clock()
            # A claimed watch keeps its lease (no second poll while one is under way) and is
            # polled again as soon as its answer is recorded; one not due yet is due now, first.
            moved = "leased_by IS NULL AND next_poll > :now"
            return db.executemany(
                "UPDATE watches SET woken = (leased_by IS NOT NULL AND next_poll > :now),"
                f" answered = CASE WHEN {moved} THEN NULL ELSE answered END,"
                f" queued = queued OR ({moved}),"
                f" next_poll = CASE WHEN {moved} THEN :now ELSE next_poll END"
                " WHERE order_id = :order_id AND next_poll IS NOT NULL",
                [{"now": now, "order_id": order_id} for order_id in order_ids],
            ).rowcount

        woken = await self._run(wake)
        if woken:
            self._listeners.notify()
        return woken

    async def get(self, order_id: str) -> WatchState | None:
        def select(db: sqlite3.Connection) -> Any:
            return db.execute(
                f"SELECT {_STATE_COLUMNS} FROM watches WHERE order_id = ?", (order_id,)
            ).fetchone()

        row = await self._run(select, write=False)
        return None if row is None else _state(row)

    async def count(self) -> WatchCounts:
        def count(db: sqlite3.Connection) -> Any:
            return db.execute(
                "SELECT count(*) - count(settled_seq), count(settled_seq),"
                " count(settled_seq) - count(acked_at) FROM watches"
            ).fetchone()

        return WatchCounts(*await self._run(count, write=False))

    async def watches(self, settled: bool | None = None) -> AsyncIterator[WatchState]:
        which = {None: "", True: " AND settled_seq IS NOT NULL", False: " AND settled_seq IS NULL"}
        query = (
            f"SELECT {_STATE_COLUMNS} FROM watches WHERE order_id > ?{which[settled]}"
            " ORDER BY order_id LIMIT ?"
        )

        def page(after: str) -> Callable[[sqlite3.Connection], list[Any]]:
            return lambda db: db.execute(query, (after, BATCH)).fetchall()

        after = ""
        while True:
            rows = await self._run(page(after), write=False)
            for row in rows:
                yield _state(row)
            if len(rows) < BATCH:
                return
            after = rows[-1][0]

    async def retry(self, order_ids: Sequence[str]) -> int:
        def retry(db: sqlite3.Connection) -> int:
            now = self._clock()
            # A claim made after this one gets a fence above any before it (`_last_fence`).
            return db.executemany(
                "UPDATE watches SET next_poll = ?, attempts = 0, woken = 0, leased_by = NULL,"
                " answered = NULL, queued = 1, settled_seq = NULL, error = NULL, acked_at = NULL"
                " WHERE order_id = ? AND settled_seq IS NOT NULL",
                [(now, order_id) for order_id in order_ids],
            ).rowcount

        rearmed = await self._run(retry)
        if rearmed:
            self._listeners.notify()
        return rearmed

    async def remove(self, order_ids: Sequence[str]) -> int:
        def remove(db: sqlite3.Connection) -> int:
            return db.executemany(
                "DELETE FROM watches WHERE order_id = ?", [(order_id,) for order_id in order_ids]
            ).rowcount

        return await self._run(remove)

    async def purge(self, retain: float) -> int:
        def purge(db: sqlite3.Connection) -> int:
            cutoff = self._clock() - retain
            return db.execute(
                "DELETE FROM watches WHERE acked_at IS NOT NULL AND acked_at < ?", (cutoff,)
            ).rowcount

        return await self._run(purge)
