"""Watchers in real processes on one SQLite file: a SIGKILL loses nothing, two never collide.

Each worker is `tests/watch_worker.py` (see its docstring for its log); the FakeTelegent runs
here, so its request log counts every poll of every process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import pathlib
import random
import signal
import sqlite3
import time

import pytest
from helpers import ENOUGH, log_lines, log_shows, ready, worker, write_ids

import telegent_async as tg
from telegent_async._stores.base import NewWatch
from telegent_async.testing import FakeTelegent, Step


def settled_in(db: pathlib.Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT order_id FROM watches WHERE settled_seq IS NOT NULL")
        return {order_id for (order_id,) in rows}


def unacknowledged_in(db: pathlib.Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(
            conn.execute("SELECT count(*) FROM watches WHERE acked_at IS NULL").fetchone()[0]
        )


def scripted_orders(
    fake: FakeTelegent,
    rng: random.Random,
    count: int,
    settle_after: float = 0.05,
    spread: float = 1.2,
) -> list[str]:
    ids = [f"JNOID-{n:04d}" for n in range(count)]
    for order_id in ids:
        final = rng.choice(["Completed", "Completed", "Rejected", "Cancelled"])
        at = rng.uniform(settle_after, settle_after + spread)
        fake.add_order(order_id, [Step("Submitted"), Step(final, at)])
    return [*ids, "JNOID-missing-1", "JNOID-missing-2"]  # 404: settle with NotFoundError


@pytest.mark.slow
async def test_a_killed_worker_loses_nothing(fake: FakeTelegent, tmp_path: pathlib.Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ids = scripted_orders(fake, rng, 80, spread=2.5)
    db, id_file = tmp_path / "watches.db", write_ids(tmp_path / "ids.txt", ids)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    async with worker(fake, db, id_file, first_log, "--add") as first:
        await ready(first_log)
        # A random moment mid-run: after a random number of deliveries, plus a random instant
        # (a plain random delay could fall after the end on a slow interpreter start-up).
        await log_shows(first_log, "delivered", rng.randint(1, 30))
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL, f"seed {seed}: it finished before the kill"
    committed = settled_in(db)
    restarted_at = time.monotonic()
    async with worker(fake, db, id_file, second_log) as second:
        assert await asyncio.wait_for(second.wait(), ENOUGH) == 0

    lines = log_lines(first_log, second_log)
    delivered = {words[1] for words in lines if words[0] == "delivered"}
    acked = collections.Counter(words[1] for words in lines if words[0] == "acked")
    assert delivered == set(ids), f"seed {seed}"
    assert max(acked.values()) == 1, f"seed {seed}: acknowledged twice"
    assert unacknowledged_in(db) == 0
    for order_id in committed:  # settled before the kill: never polled again
        polls = fake.order_requests(order_id)
        assert [r for r in polls if r.at >= restarted_at] == [], f"seed {seed}: {order_id}"
    for order_id in ids[:-2]:
        # After it settled, an order is polled once (the answer that settles it), or twice if
        # the first worker died holding that answer. (The fake logs a request when it arrives
        # and reads its clock again to answer: 10 ms of slack for that.)
        settled = fake.settled_at(order_id) + 0.01
        late = [r for r in fake.order_requests(order_id) if r.at > settled]
        assert len(late) <= 2, f"seed {seed}: {order_id}"


@pytest.mark.slow
async def test_two_workers_never_poll_one_order_at_once(tmp_path: pathlib.Path) -> None:
    rng = random.Random(7)
    # Some polls stall for 50 ms, so that polls overlap in time across the two workers.
    async with FakeTelegent(fault_rate={"stall": 0.2}, stall_seconds=0.05, seed=7) as fake:
        ids = [*(f"JNOID-{n:04d}" for n in range(60)), "JNOID-missing-1", "JNOID-missing-2"]
        db, id_file = tmp_path / "watches.db", write_ids(tmp_path / "ids.txt", ids)
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        async with (
            worker(fake, db, id_file, logs[0], "--max-connections", "4") as a,
            worker(fake, db, id_file, logs[1], "--max-connections", "4") as b,
        ):
            await ready(logs[0])
            await ready(logs[1])
            # Lifecycles start now, and last long enough (1 s or more) for both to take part.
            assert scripted_orders(fake, rng, 60, settle_after=1.0) == ids
            store = tg.SQLiteStore(db)  # a third process adds: both see it within max_idle
            await store.add([NewWatch(order_id) for order_id in ids])
            await store.aclose()
            assert await asyncio.wait_for(a.wait(), ENOUGH) == 0
            assert await asyncio.wait_for(b.wait(), ENOUGH) == 0

    intervals: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for log in logs:
        started: dict[str, float] = {}
        words_by_line = log_lines(log)
        assert any(words[0] == "start" for words in words_by_line), f"{log.name} never polled"
        for words in words_by_line:
            if words[0] == "start":
                started[words[1]] = float(words[2])
            elif words[0] == "end":
                intervals[words[1]].append((started.pop(words[1]), float(words[2])))
    for order_id, spans in intervals.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{order_id} polled by two workers at once"
    assert sum(len(spans) for spans in intervals.values()) == len(fake.order_requests())


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["mid-poll", "right after a wake"])
async def test_a_restart_takes_over_a_killed_workers_leases_at_once(
    tmp_path: pathlib.Path, moment: str
) -> None:
    # The lease is a minute: without the lease naming its process, the restarted worker would
    # wait that long before polling the order the dead one held.
    async with FakeTelegent(stall_seconds=3.0) as fake:
        await killed_and_restarted(fake, tmp_path, moment)


async def killed_and_restarted(fake: FakeTelegent, tmp_path: pathlib.Path, moment: str) -> None:
    fake.add_order("JNOID-woken", "Submitted")
    fake.add_order("JNOID-other", [Step("Submitted"), Step("Completed", 1.0)])
    ids = ["JNOID-woken", "JNOID-other"]
    db, id_file = tmp_path / "watches.db", write_ids(tmp_path / "ids.txt", ids)
    first_ids = write_ids(tmp_path / "first.txt", ids[:1])
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    fake.inject("stall", 1)  # its first poll hangs: the worker dies holding its lease
    async with worker(fake, db, first_ids, first_log, "--add", "--lease", "60") as first:
        await ready(first_log)
        await log_shows(first_log, "start")
        if moment == "right after a wake":  # a webhook said it changed: poll it again now
            store = tg.SQLiteStore(db)
            assert await store.wake(["JNOID-woken"]) == 1
            await store.aclose()
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    fake.add_order("JNOID-woken", "Completed")
    assert settled_in(db) == set()
    restarted_at = time.monotonic()
    async with worker(fake, db, id_file, second_log, "--add", "--lease", "60") as second:
        assert await asyncio.wait_for(second.wait(), ENOUGH) == 0
    polls = [float(w[2]) for w in log_lines(second_log) if w[:2] == ["start", "JNOID-woken"]]
    # Within seconds of the restart (most of which is the interpreter starting), not 60 s.
    assert polls and polls[0] - restarted_at < 5.0
    delivered = [w[1] for w in log_lines(first_log, second_log) if w[0] == "delivered"]
    assert sorted(delivered) == sorted(ids)  # each exactly once
