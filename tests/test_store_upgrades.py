"""Stores written by 0.2.0 keep working: an SQLite file of schema version 1 is upgraded when
opened, a Redis keyspace without the queue of the most overdue gets it on its first claim.
Their watches count as never answered (polled first), and the oldest answer goes first after.
"""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
from helpers import FakeClock

import telegent_async as tg
from telegent_async._stores.base import NewWatch, PendingAnswer, Settlement, WatchStore
from telegent_async._stores.redis_scripts import redis_keys
from telegent_async._stores.sqlite_file import SCHEMA_VERSION

NOW = 1_800_000_000.0
ORDER = b'{"OrderId":"OLD-1","OrderStatus":"Submitted","OrderType":"PortIn"}'

#: The schema 0.2.0 created (`PRAGMA user_version = 1`), as it shipped.
SCHEMA_0_2_0 = """
CREATE TABLE watches (
    order_id TEXT PRIMARY KEY NOT NULL, next_poll REAL, attempts INTEGER NOT NULL DEFAULT 0,
    fence INTEGER NOT NULL DEFAULT 0, leased_by TEXT, woken INTEGER NOT NULL DEFAULT 0,
    tag TEXT, policy TEXT, deadline REAL, last_status TEXT, last_order BLOB,
    settled_seq INTEGER, error TEXT, acked_at REAL
) WITHOUT ROWID;
CREATE INDEX watches_due ON watches (next_poll) WHERE next_poll IS NOT NULL;
CREATE INDEX watches_undelivered ON watches (settled_seq)
    WHERE settled_seq IS NOT NULL AND acked_at IS NULL;
CREATE INDEX watches_acked ON watches (acked_at) WHERE acked_at IS NOT NULL;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters VALUES ('settled_seq', 1);
PRAGMA user_version = 1;
"""


async def check_old_watches(store: WatchStore, clock: FakeClock) -> None:
    """OLD-1 (answered "Submitted", due 10 s ago) and OLD-2 (due 5 s ago) were written by 0.2.0,
    OLD-3 settled; a new watch and new answers go by the new rule."""
    first = await store.claim(1, 60.0, "w")
    assert [c.order_id for c in first] == ["OLD-1"]  # never answered as far as we know
    assert (first[0].attempts, first[0].last_status, first[0].fence) == (3, "Submitted", 9)
    await store.record([PendingAnswer(first[0], clock.now - 1.0, None)])  # due again at once
    await store.add([NewWatch("NEW")])
    claims = await store.claim(9, 60.0, "w")
    assert [c.order_id for c in claims] == ["OLD-2", "NEW", "OLD-1"]
    assert all(c.fence > 9 for c in claims)
    state = await store.get("OLD-3")
    assert state is not None and state.settled
    assert [d.outcome.order_id for d in await store.outcomes()] == ["OLD-3"]
    await store.settle([Settlement(c, None, None) for c in claims])
    assert await store.count() == tg.WatchCounts(pending=0, settled=4, unacknowledged=4)


async def test_an_sqlite_file_of_0_2_0_is_upgraded_and_keeps_working(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_0_2_0)
    conn.executemany(
        "INSERT INTO watches (order_id, next_poll, attempts, fence, last_status, last_order,"
        " settled_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("OLD-1", NOW - 10, 3, 7, "Submitted", ORDER, None),
            ("OLD-2", NOW - 5, 0, 0, None, None, None),
            ("OLD-3", None, 1, 8, "Completed", None, 1),
        ],
    )
    conn.commit()
    conn.close()
    clock = FakeClock(NOW)
    store = tg.SQLiteStore(path, clock=clock)
    try:
        await check_old_watches(store, clock)
    finally:
        await store.aclose()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    plans = conn.execute(
        "EXPLAIN QUERY PLAN SELECT order_id FROM watches WHERE queued = 1"
        " ORDER BY answered, next_poll LIMIT 5"
    ).fetchall()
    conn.close()
    assert any("watches_overdue" in row[-1] for row in plans)  # the upgrade made the index
    # Opened again (already upgraded), and by a newer version's file: a clear error.
    await tg.SQLiteStore(path, clock=clock).aclose()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="store version 3 is newer"):
        tg.SQLiteStore(path, clock=clock)


async def test_a_redis_keyspace_of_0_2_0_keeps_working(redis_url: str, namespace: str) -> None:
    import redis.asyncio

    keys = redis_keys(namespace)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await raw.hset(
            keys.watch + "OLD-1",
            mapping={"attempts": 3, "fence": 7, "status": "Submitted", "order": ORDER},
        )
        await raw.hset(keys.watch + "OLD-2", mapping={"attempts": 0, "fence": 0})
        await raw.zadd(keys.due, {"OLD-1": NOW - 10, "OLD-2": NOW - 5})
        await raw.hset(keys.watch + "OLD-3", mapping={"attempts": 1, "fence": 8, "seq": 1})
        await raw.xadd(keys.outcomes, {"id": "OLD-3"}, id="0-1")
        await raw.set(keys.fence, 8)
        await raw.set(keys.seq, 1)
    finally:
        await raw.aclose()
    clock = FakeClock(NOW)
    store = tg.RedisStore(redis_url, namespace=namespace, clock=clock)
    try:
        await check_old_watches(store, clock)
    finally:
        await store.aclose()


async def test_a_failure_a_0_2_0_worker_left_on_a_settled_redis_watch_is_no_last_error(
    redis_url: str, namespace: str
) -> None:
    # A 0.2.0 worker settles a watch without knowing the `failure` field a newer worker
    # recorded: the settled watch has no last poll's failure, and a retry clears the field.
    import redis.asyncio

    clock = FakeClock(NOW)
    store = tg.RedisStore(redis_url, namespace=namespace, clock=clock)
    raw = redis.asyncio.Redis.from_url(redis_url)
    key = redis_keys(namespace).watch + "A"
    try:
        await store.add([NewWatch("A")])
        (claim,) = await store.claim(1, 60.0, "w")
        busy = tg.ServiceUnavailableError(503, "busy")
        await store.record([PendingAnswer(claim, clock.now + 5, None, busy)])
        assert await raw.hexists(key, "failure")
        await raw.hset(key, "seq", 1)  # settled as 0.2.0 settles: `failure` left in place
        await raw.zrem(redis_keys(namespace).due, "A")
        settled = await store.get("A")
        assert settled is not None and (settled.settled, settled.last_error) == (True, None)
        assert await store.retry(["A"]) == 1
        again = await store.get("A")
        assert again is not None and (again.settled, again.last_error) == (False, None)
        assert not await raw.hexists(key, "failure")
    finally:
        await raw.aclose()
        await store.aclose()
