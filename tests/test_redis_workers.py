"""Many workers on one RedisStore, in real processes, on the session's own redis-server.

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
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from helpers import ENOUGH, FakeClock, log_lines, ready, worker, write_ids

import telegent_async as tg
from telegent_async._models import converter
from telegent_async._stores import redis as _redis
from telegent_async._stores.base import NewWatch, PendingAnswer, Settlement
from telegent_async._stores.redis_scripts import redis_keys
from telegent_async.testing import FakeTelegent, Step


def order_ids(count: int) -> list[str]:
    return [f"JNOID-{n:04d}" for n in range(count)]


def script(fake: FakeTelegent, rng: random.Random, ids: list[str], latest: float) -> None:
    """The orders `ids` settle at random times up to `latest` seconds from now: scripted once
    the workers are running (scripted before, they had mostly settled under CI's load by the
    time three processes had started, and one worker polled none)."""
    for order_id in ids:
        final = rng.choice(["Completed", "Completed", "Rejected", "Cancelled"])
        fake.add_order(order_id, [Step("Submitted"), Step(final, rng.uniform(0.05, latest))])


def poll_spans(*logs: pathlib.Path) -> dict[str, list[tuple[float, float]]]:
    """Per order ID, the (start, end) of every poll the workers logged."""
    spans: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for log in logs:
        started: dict[str, float] = {}
        for words in log_lines(log):
            if words[0] == "start":
                started[words[1]] = float(words[2])
            elif words[0] == "end":
                spans[words[1]].append((started.pop(words[1]), float(words[2])))
    return spans


def assert_never_two_at_once(spans: dict[str, list[tuple[float, float]]]) -> None:
    for order_id, intervals in spans.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end, f"{order_id} polled by two workers at once"


async def leftovers(url: str, namespace: str) -> tuple[int, int, int]:
    """Watches still pending, still leased, and outcomes still unacknowledged."""
    keys = redis_keys(namespace)
    client = redis.asyncio.Redis.from_url(url)
    try:
        pending = await client.zcard(keys.due)
        leased = 0
        async for key in client.scan_iter(match=keys.watch + "*", count=1000):
            leased += await client.hexists(key, "leased")
        unacked = await client.xlen(keys.outcomes)
    finally:
        await client.aclose()
    return pending, leased, unacked


@contextlib.asynccontextmanager
async def workers(
    fake: FakeTelegent, url: str, ids: pathlib.Path, logs: list[pathlib.Path], *extra: str
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    async with contextlib.AsyncExitStack() as stack:
        procs = [
            await stack.enter_async_context(worker(fake, url, ids, log, *extra)) for log in logs
        ]
        for log in logs:
            await ready(log)
        yield procs


@pytest.mark.slow
async def test_three_workers_share_300_orders(
    redis_url: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    rng = random.Random(11)
    # Some polls stall for 50 ms, so that polls of different workers overlap in time.
    async with FakeTelegent(fault_rate={"stall": 0.1}, stall_seconds=0.05, seed=11) as fake:
        scripted = order_ids(300)
        ids = [*scripted, "JNOID-missing-1", "JNOID-missing-2"]  # 404: NotFoundError
        id_file = write_ids(tmp_path / "ids.txt", ids)
        logs = [tmp_path / f"w{n}.log" for n in range(3)]
        extra = ("--namespace", namespace, "--max-connections", "8")
        started = time.monotonic()
        async with workers(fake, redis_url, id_file, logs, *extra) as procs:
            # Orders settle over 3 s from now, longer than a running worker takes to look at
            # the store (`RedisStore.max_idle`, 1 s, at the most): every worker takes part.
            script(fake, rng, scripted, latest=3.0)
            store = tg.RedisStore(redis_url, namespace=namespace)  # a fourth process adds
            await store.add([NewWatch(order_id) for order_id in ids])
            await store.aclose()
            for proc in procs:
                assert await asyncio.wait_for(proc.wait(), ENOUGH) == 0
        elapsed = time.monotonic() - started

    lines = log_lines(*logs)
    delivered = {words[1] for words in lines if words[0] == "delivered"}
    acked = collections.Counter(words[1] for words in lines if words[0] == "acked")
    assert delivered == set(ids)
    assert set(acked) == set(ids) and max(acked.values()) == 1, "acknowledged twice"
    spans = poll_spans(*logs)
    assert_never_two_at_once(spans)
    assert sum(len(s) for s in spans.values()) == len(fake.order_requests())
    for log in logs:  # the work was divided: every worker polled
        assert any(words[0] == "start" for words in log_lines(log)), f"{log.name} never polled"
    assert await leftovers(redis_url, namespace) == (0, 0, 0)
    print(f"3 workers, {len(ids)} orders: {elapsed:.1f} s, {len(fake.order_requests())} polls")


@pytest.mark.slow
async def test_a_killed_workers_orders_come_back_after_its_lease(
    redis_url: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    lease = 1.0
    # Polls stall for 0.3 s now and then, so the killed worker surely holds polls in flight.
    async with FakeTelegent(fault_rate={"stall": 0.3}, stall_seconds=0.3, seed=seed) as fake:
        ids = order_ids(90)
        id_file = write_ids(tmp_path / "ids.txt", ids)
        logs = [tmp_path / f"w{n}.log" for n in range(3)]
        extra = ("--namespace", namespace, "--lease", str(lease), "--max-connections", "6")
        async with workers(fake, redis_url, id_file, logs, *extra) as procs:
            # Settling over 2 s from now, the orders keep the workers polling past the moment
            # below.
            script(fake, rng, ids, latest=2.0)
            store = tg.RedisStore(redis_url, namespace=namespace)
            await store.add([NewWatch(order_id) for order_id in ids])
            await store.aclose()
            await asyncio.sleep(rng.uniform(0.2, 0.5))
            # Then the first moment it holds a poll (one open for 20 ms: most likely a stall,
            # so still open when the kill lands), lest the random moment fall between polls.
            await asyncio.wait_for(_holding_a_poll(logs[0]), ENOUGH)
            os.kill(procs[0].pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert await procs[0].wait() == -signal.SIGKILL, f"seed {seed}: finished before"
            for proc in procs[1:]:
                assert await asyncio.wait_for(proc.wait(), ENOUGH) == 0
            finished = time.monotonic() - killed_at

    # Polls the killed worker had under way: the others took them over after the lease.
    orphans = {order_id for order_id, spans in _open_polls(logs[0]).items() if spans}
    assert orphans, f"seed {seed}: the killed worker held no poll"
    assert finished <= lease + 3.0, f"seed {seed}: the others needed {finished:.1f} s"
    lines = log_lines(*logs)
    acked = collections.Counter(words[1] for words in lines if words[0] == "acked")
    assert max(acked.values()) == 1, f"seed {seed}: acknowledged twice"
    # The killed worker may have acknowledged an outcome in Redis and died before logging it:
    # such an ID was delivered to it, and Redis holds nothing unacknowledged (below).
    unlogged = set(ids) - set(acked)
    delivered_to_killed = {words[1] for words in log_lines(logs[0]) if words[0] == "delivered"}
    assert unlogged <= delivered_to_killed and len(unlogged) <= 1, f"seed {seed}: {unlogged}"
    assert await leftovers(redis_url, namespace) == (0, 0, 0)
    print(f"seed {seed}: {len(orphans)} polls orphaned; all done {finished:.2f} s after the kill")


async def _holding_a_poll(log: pathlib.Path) -> None:
    """Until a poll has been open in `log` (started, not ended) for 20 ms."""
    seen: set[str] = set()
    while True:
        open_now = {order_id for order_id, spans in _open_polls(log).items() if spans}
        if open_now & seen:
            return
        seen = open_now
        await asyncio.sleep(0.02)


def _open_polls(log: pathlib.Path) -> dict[str, int]:
    """Per order ID, polls started but never ended in `log` (its process died in them)."""
    open_polls: collections.Counter[str] = collections.Counter()
    for words in log_lines(log):
        if words[0] in ("start", "end"):
            open_polls[words[1]] += 1 if words[0] == "start" else -1
    return dict(open_polls)


async def test_a_stale_worker_cannot_overwrite_the_newer_result(
    redis_url: str, namespace: str
) -> None:
    """On Redis's own clock: worker A pauses past its lease, B takes over and settles."""
    a = tg.RedisStore(redis_url, namespace=namespace)
    b = tg.RedisStore(redis_url, namespace=namespace)
    try:
        await a.add([NewWatch("JNOID-1")])
        (old,) = await a.claim(10, 0.2, "worker-a")
        assert await b.claim(10, 0.2, "worker-b") == []  # leased
        await asyncio.sleep(0.3)  # A is paused past its lease
        (new,) = await b.claim(10, 60.0, "worker-b")
        assert new.fence != old.fence
        done = _order("JNOID-1", "Completed")
        assert await b.settle([Settlement(new, done, None)]) == []
        # A wakes up with its old answers: nothing it writes lands.
        late = await a.now() + 5
        assert await a.record([PendingAnswer(old, late, _order("JNOID-1", "Submitted"))]) == [
            "JNOID-1"
        ]
        assert await a.settle([Settlement(old, _order("JNOID-1", "Error"), None)]) == ["JNOID-1"]
        assert await a.renew([old], 60.0) == ["JNOID-1"]
        await a.release([old])
        state = await a.get("JNOID-1")
        assert state is not None and state.settled and state.status is tg.OrderStatus.COMPLETE
        assert [d.outcome.order for d in await a.outcomes()] == [done]
        assert await a.next_due() is None  # never polled again
    finally:
        await a.aclose()
        await b.aclose()


def _order(order_id: str, status: str) -> tg.Order:
    return converter.structure({"OrderId": order_id, "OrderStatus": status}, tg.Order)


async def test_workers_divide_deliveries_and_a_dead_ones_come_back(
    redis_url: str, namespace: str
) -> None:
    """Each outcome is handed to one worker's `settled()` at a time; one handed to a worker
    that died goes to another when the delivery lease ends, even behind that one's cursor."""
    clock = FakeClock(1_800_000_000.0)
    a = tg.RedisStore(redis_url, namespace=namespace, clock=clock)
    b = tg.RedisStore(redis_url, namespace=namespace, clock=clock)
    try:
        await a.add([NewWatch("JNOID-1"), NewWatch("JNOID-2")])
        one, two = await a.claim(10, 60.0, "a")
        await a.settle([Settlement(one, _order("JNOID-1", "Completed"), None)])
        (handed,) = await a.outcomes()
        assert handed.outcome.order_id == "JNOID-1"
        assert await b.outcomes() == []  # A has it: B does not print it too
        assert [d.outcome.order_id for d in await a.outcomes()] == ["JNOID-1"]  # A again
        await a.settle([Settlement(two, _order("JNOID-2", "Completed"), None)])
        (second,) = await b.outcomes()
        assert second.outcome.order_id == "JNOID-2"
        assert await b.ack(["JNOID-2"]) == 1
        clock.advance(_redis.DELIVERY_LEASE + 1)  # A died holding JNOID-1
        (again,) = await b.outcomes(after=second.seq)  # behind B's cursor, yet B gets it
        assert again.outcome.order_id == "JNOID-1"
        assert await b.ack(["JNOID-1"]) == 1 and await a.outcomes() == []
    finally:
        await a.aclose()
        await b.aclose()
