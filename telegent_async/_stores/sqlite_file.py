"""The SQLite file under `SQLiteStore`: its schema, and transactions that wait out other processes.

Calls run on the event loop's thread (see `sqlite`): a short `busy_timeout` bounds how long
one call blocks the loop on another process's lock; past it, the call gives the loop back
(`asyncio.sleep`, on `LOCK_RETRY`, the package's one retry formula) and tries again, until
`lock_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from .._timing import PollPolicy

__all__ = ["LOCK_RETRY", "SCHEMA_VERSION", "SQLiteFile", "is_locked"]

T = TypeVar("T")

#: Between two tries at a lock another process holds: 2 ms doubling to 50 ms, half jittered,
#: so that processes waiting on one lock do not retry in step.
LOCK_RETRY = PollPolicy(initial=0.002, factor=2.0, max_interval=0.05, jitter=0.5)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (
    order_id TEXT PRIMARY KEY NOT NULL,
    next_poll REAL,                     -- store clock; lease end while claimed; NULL if settled
    attempts INTEGER NOT NULL DEFAULT 0,
    fence INTEGER NOT NULL DEFAULT 0,   -- bumped by every claim; writes must match it
    leased_by TEXT,                     -- worker holding the claim, NULL when none
    woken INTEGER NOT NULL DEFAULT 0,   -- woken while claimed: poll again right after
    tag TEXT,
    policy TEXT,                        -- JSON of a PollPolicy, NULL: the watcher's default
    deadline REAL,
    last_status TEXT,
    last_order BLOB,                    -- the last order's JSON as received
    settled_seq INTEGER,                -- delivery order once settled
    error TEXT,                         -- versioned JSON of the outcome's error (pending:
                                        -- of the last poll's failure, NULL once answered)
    acked_at REAL,
    answered REAL,                      -- when it last answered; NULL: never (or woken since)
    queued INTEGER NOT NULL DEFAULT 0   -- 1: due, in the queue of the most overdue (`sqlite`)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS watches_undelivered ON watches (settled_seq)
    WHERE settled_seq IS NOT NULL AND acked_at IS NULL;
CREATE INDEX IF NOT EXISTS watches_acked ON watches (acked_at) WHERE acked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO counters VALUES ('settled_seq', 0);
"""

#: The queue of due watches, most overdue first, and the pending watches not in it yet, by
#: next poll (between them, every pending watch: `SQLiteStore.next_due` reads both).
_QUEUE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS watches_waiting ON watches (next_poll)"
    " WHERE queued = 0 AND next_poll IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS watches_overdue ON watches (answered, next_poll) WHERE queued = 1",
)

#: The file's schema (`PRAGMA user_version`); a file of an older one is upgraded when opened.
SCHEMA_VERSION = 2

#: The statements that take a file from version N (the key) to N + 1, in one transaction.
#: Version 1 is 0.2.0's: its watches are due as they were, and count as never answered.
_UPGRADES: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE watches ADD COLUMN answered REAL",
        "ALTER TABLE watches ADD COLUMN queued INTEGER NOT NULL DEFAULT 0",
        *_QUEUE_INDEXES,
        "DROP INDEX IF EXISTS watches_due",  # (next_poll): the two above take its place
    ),
}

#: The processes that hold leases (`processes`): added to files of any version, as it is
#: only read by workers that know it.
_PROCESSES = """
CREATE TABLE IF NOT EXISTS processes (
    worker TEXT PRIMARY KEY NOT NULL,   -- `leased_by` of its claims
    host TEXT NOT NULL,
    boot TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL
) WITHOUT ROWID
"""


class SQLiteFile:
    """One connection to a store's file, opened (and the schema created) on first use."""

    def __init__(self, path: str, *, busy_timeout: float, lock_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._lock_timeout = lock_timeout
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._check()

    def _check(self) -> None:
        """A `ValueError` naming the file, now, if no store can live there: a missing
        directory, no permission, not a database, a newer schema (not at first use)."""
        where = os.path.abspath(self.path)
        folder = os.path.dirname(where)
        if not os.path.isdir(folder):
            raise ValueError(f"{self.path}: no such directory: {folder}")
        if os.path.exists(where) and not os.path.isfile(where):
            raise ValueError(f"{self.path}: not a file")
        if os.path.exists(where) and not os.access(where, os.R_OK | os.W_OK):
            raise ValueError(f"{self.path}: no permission to read and write it")
        if not os.access(folder, os.W_OK | os.X_OK):  # the file, its journal and WAL go there
            raise ValueError(f"{self.path}: no permission to write in {folder}")
        if os.path.isfile(where) and os.path.getsize(where) > 0:
            with contextlib.suppress(_Busy):
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout)
                self._version(conn)
                conn.close()

    def _version(self, conn: sqlite3.Connection) -> int:
        """The schema version of `conn`'s file, one this version reads (else `conn` is closed
        and a `ValueError` names the file; `_Busy` if another process holds it locked). Version
        0 with tables is another program's database: a store's are made with its version."""
        try:
            version, tables = conn.execute(  # one statement: one snapshot of both
                "SELECT user_version, (SELECT count(*) FROM sqlite_master) FROM pragma_user_version"
            ).fetchone()
            if version == 0 and tables:
                raise ValueError(f"{self.path}: not a store file: another program's database")
            if not 0 <= version <= SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path}: store version {version} is newer than this version of "
                    f"telegent_async reads ({SCHEMA_VERSION})"
                )
        except sqlite3.OperationalError as exc:
            conn.close()
            if is_locked(exc):
                raise _Busy(exc) from None
            raise ValueError(f"{self.path}: cannot be used as a store: {exc}") from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ValueError(f"{self.path}: not a store file: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return int(version)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.OperationalError as exc:
            raise ValueError(f"{self.path}: cannot be opened: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as exc:
            if is_locked(exc):
                conn.close()
                raise _Busy(exc) from None
        except sqlite3.DatabaseError:
            pass  # not a database: `_version` says so, naming the file
        version = self._version(conn)
        try:
            if version == 0:
                # A new file: create the schema once, whoever gets there first.
                indexes = "; ".join(_QUEUE_INDEXES)
                conn.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA}; {indexes};"
                    f" PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            elif version < SCHEMA_VERSION:
                _upgrade(conn)
            conn.execute(_PROCESSES)
        except BaseException:
            conn.close()
            raise
        return conn

    async def run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Run `work` in one transaction; when another process holds the lock, retry later."""
        give_up = time.monotonic() + self._lock_timeout
        attempt = 0
        while True:
            if self._closed:
                raise RuntimeError(f"SQLiteStore({self.path!r}) is closed")
            try:
                if self._conn is None:
                    self._conn = self._connect()
                return _transaction(self._conn, work, write)
            except _Busy as busy:
                if time.monotonic() > give_up:
                    raise busy.error from None
            except sqlite3.OperationalError as exc:
                if not is_locked(exc) or time.monotonic() > give_up:
                    raise
            await asyncio.sleep(LOCK_RETRY.delay(attempt))
            attempt += 1

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _upgrade(db: sqlite3.Connection) -> None:
    """Take the file to `SCHEMA_VERSION`, one step per version, in one transaction (the
    version read again under the lock: another process may have upgraded it meanwhile)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version, SCHEMA_VERSION):
            for statement in _UPGRADES[step]:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class _Busy(Exception):
    """Another process holds the file locked: try again later."""

    def __init__(self, error: sqlite3.OperationalError) -> None:
        super().__init__(str(error))
        self.error = error


def is_locked(error: sqlite3.OperationalError) -> bool:
    """True when another connection holds the lock that `error` waited for."""
    text = str(error)
    return "locked" in text or "busy" in text


def _transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T], write: bool) -> T:
    if not write:
        return work(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result
