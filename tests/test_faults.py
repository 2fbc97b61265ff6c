"""Unattended for days: real faults of what a watcher depends on, ridden out.

A `redis-server` stopped and restarted on its port (under a store, under a budget) or frozen
(SIGSTOP), an SQLite
write lock held by another process past `lock_timeout`, credentials refused then accepted, a
restart past a deadline, an unreachable budget. For each: every order settles exactly once
with the status the fake server holds, no request goes out unbudgeted, and polling resumes
within the stated time. Every process a test starts is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import pathlib
import random
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from helpers import (
    FAST,
    FAST_POLL,
    KEY,
    SECRET,
    cli_process,
    fast_client,
    finish,
    process,
    run_cli,
    wait_until,
)

import telegent_async as tg
from telegent_async._budgets import redis as redis_budget
from telegent_async._stores.base import Claim
from telegent_async.testing import FakeTelegent, RedisServer, Step

#: The promise: polling resumes within 2 s of the dependency coming back (plus a little for
#: a loaded test machine's scheduling).
RESUMES_WITHIN = 2.5


def scripted(fake: FakeTelegent, rng: random.Random, count: int, spread: float) -> dict[str, str]:
    """Orders that settle at random moments within `spread` s; returns each one's final status."""
    finals = {}
    for n in range(count):
        order_id = f"JNOID-{n:03d}"
        finals[order_id] = rng.choice(["Completed", "Completed", "Rejected", "Cancelled"])
        fake.add_order(
            order_id, [Step("Submitted"), Step(finals[order_id], rng.uniform(0.1, spread))]
        )
    return finals


class Delivered:
    """What `settled()` hands out, counted per order (exactly once is the promise)."""

    def __init__(self, watcher: tg.OrderWatcher) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.outcomes: dict[str, tg.OrderOutcome] = {}
        self._task = asyncio.ensure_future(self._consume(watcher))

    async def _consume(self, watcher: tg.OrderWatcher) -> None:
        async for outcome in watcher.settled():
            self.counts[outcome.order_id] += 1
            self.outcomes[outcome.order_id] = outcome

    async def all_of(self, finals: dict[str, str], timeout: float = 20.0) -> None:
        await wait_until(lambda: set(self.outcomes) >= set(finals), timeout, interval=0.05)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        assert set(self.counts.values()) == {1}, "an outcome was delivered twice"
        got = {i: o.order.raw_status if o.order is not None else repr(o.error) for i, o in
               self.outcomes.items()}  # fmt: skip
        assert got == finals


@contextlib.asynccontextmanager
async def watching(
    fake: FakeTelegent,
    store: tg.RedisStore | tg.SQLiteStore | pathlib.Path,
    finals: dict[str, str],
    **client_options: object,
) -> AsyncIterator[tuple[tg.OrderWatcher, Delivered]]:
    """A watcher of `finals` on `store` (closed at the end), and what it delivers."""
    async with contextlib.AsyncExitStack() as stack:
        if not isinstance(store, pathlib.Path):
            stack.push_async_callback(store.aclose)
        client = await stack.enter_async_context(fast_client(fake, **client_options))
        watcher = tg.OrderWatcher(client, store, policy=FAST_POLL, lease=2.0)
        await stack.enter_async_context(watcher)
        await watcher.add_many(finals)
        yield watcher, Delivered(watcher)


def polled_since(fake: FakeTelegent, moment: float) -> bool:
    return any(r.at > moment and r.path.endswith("/order") for r in fake.requests)


async def resumed(fake: FakeTelegent, since: float) -> float:
    """Seconds from `since` until the fake sees a lookup (fails after RESUMES_WITHIN)."""
    await wait_until(lambda: polled_since(fake, since), RESUMES_WITHIN, interval=0.01)
    return next(r.at for r in fake.requests if r.at > since and r.path.endswith("/order")) - since


# -- Redis restarted -------------------------------------------------------------------------


@pytest.fixture
def restartable_redis() -> Iterator[RedisServer]:
    with RedisServer(persist=True) as server:
        yield server


@pytest.mark.slow
async def test_a_store_on_redis_restarted_mid_run_loses_nothing(
    fake: FakeTelegent, restartable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    seed = random.randrange(1 << 30)
    finals = scripted(fake, random.Random(seed), 40, spread=3.5)
    store = tg.RedisStore(restartable_redis.url, namespace=f"faults-{seed}")
    async with watching(fake, store, finals) as (watcher, delivered):
        for _ in range(3):
            await asyncio.sleep(0.2)
            restartable_redis.down()
            await wait_until(lambda: not watcher.health.store_ok, 5.0)
            assert "store unavailable" in (watcher.health.fault or "")
            await asyncio.sleep(0.3)
            restartable_redis.up()
            back = time.monotonic()
            await resumed(fake, back)
            await wait_until(lambda: watcher.health.store_ok, RESUMES_WITHIN)
        await delivered.all_of(finals)
        assert watcher.health.running
    outages = [r.getMessage() for r in caplog.records if "store" in r.getMessage()]
    assert sum("store unavailable" in m for m in outages) >= 3, f"seed {seed}"
    assert sum("store available again after" in m for m in outages) >= 3, f"seed {seed}"


@pytest.mark.slow
async def test_a_store_on_a_frozen_redis_is_an_outage_not_a_hang(
    fake: FakeTelegent, restartable_redis: RedisServer
) -> None:
    """A redis-server that stops answering (SIGSTOP: the connection stays open, nothing
    comes back) is an outage after the URL's `socket_timeout`, ridden out like a restart."""
    seed = random.randrange(1 << 30)
    finals = scripted(fake, random.Random(seed), 10, spread=2.0)
    url = restartable_redis.url + "?socket_timeout=0.3&socket_connect_timeout=0.3"
    store = tg.RedisStore(url, namespace=f"frozen-{seed}")
    assert restartable_redis.proc is not None
    pid = restartable_redis.proc.pid
    async with watching(fake, store, finals) as (watcher, delivered):
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGSTOP)
        try:
            await wait_until(lambda: not watcher.health.store_ok, 5.0)
            assert "store unavailable" in (watcher.health.fault or ""), f"seed {seed}"
        finally:
            os.kill(pid, signal.SIGCONT)
        await resumed(fake, time.monotonic())
        await wait_until(lambda: watcher.health.store_ok, RESUMES_WITHIN)
        await delivered.all_of(finals)


@pytest.mark.slow
async def test_a_budget_on_redis_restarted_mid_run_never_lets_a_request_out_unbudgeted(
    fake: FakeTelegent, restartable_redis: RedisServer, tmp_path: pathlib.Path
) -> None:
    seed = random.randrange(1 << 30)
    finals = scripted(fake, random.Random(seed), 30, spread=3.0)
    budget = tg.RedisBudget(restartable_redis.url, 60000, name=f"faults-{seed}")
    outages: list[tuple[float, float]] = []
    async with watching(fake, tmp_path / "w.db", finals, budget=budget) as (watcher, delivered):
        for _ in range(3):
            await asyncio.sleep(0.2)
            restartable_redis.down()
            down = time.monotonic()
            await wait_until(lambda: not watcher.health.budget_ok, 5.0)
            await asyncio.sleep(0.3)
            restartable_redis.up()
            back = time.monotonic()
            outages.append((down, back))
            await resumed(fake, back)
        await delivered.all_of(finals)
        sent = len(fake.requests)  # every request that reached the server
    # Every request sent holds a start that Redis granted (the window is 60 s: none expired).
    import redis

    with contextlib.closing(redis.Redis.from_url(restartable_redis.url)) as check:
        granted = check.zcard(budget.keys.sent)
    assert isinstance(granted, int) and sent <= granted, f"seed {seed}"
    # None started while Redis was away (those under way at the stop may still arrive).
    for down, back in outages:
        during = [r for r in fake.requests if down + 0.2 < r.at < back]
        assert during == [], f"seed {seed}"


async def test_an_unreachable_budget_is_budget_unavailable_and_sends_nothing(
    fake: FakeTelegent, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_order("JNOID-1", "Completed")
    with RedisServer(persist=True) as server:
        budget = tg.RedisBudget(server.url, 60000, name="away")
        async with fast_client(fake, budget=budget) as client:
            assert (await client.get_order("JNOID-1")).succeeded
            server.down()
            started = time.monotonic()
            with pytest.raises(tg.BudgetUnavailableError) as caught:
                await client.get_order("JNOID-1", timeout=0.8)
            assert 0.6 < time.monotonic() - started < 2.0  # within the call's timeout
            assert isinstance(caught.value, tg.TelegentError)
            monkeypatch.setattr(redis_budget, "UNAVAILABLE_AFTER", 0.5)
            with pytest.raises(tg.BudgetUnavailableError):  # no timeout: the budget's own
                await client.get_order("JNOID-1")
            assert len(fake.order_requests("JNOID-1")) == 1  # nothing sent unbudgeted
            assert budget.outage.error is not None
            server.up()
            assert (await client.get_order("JNOID-1")).succeeded
            assert budget.outage.error is None
        server.down()  # a client's first call: its token request waits for the budget too
        budget = tg.RedisBudget(server.url, 60000, name="away")
        async with fast_client(fake, budget=budget) as client:
            with pytest.raises(tg.BudgetUnavailableError):
                await client.get_order("JNOID-1", timeout=0.5)
        assert len(fake.token_requests) == 1  # the first client's: none sent unbudgeted


async def test_a_fan_out_timed_out_by_an_unreachable_budget_names_it(
    fake: FakeTelegent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out whose budget cannot be reached to its deadline: each timeout says the order
    was never polled and names the budget's failure (its polls were given back unrecorded),
    as a single wait's does; not "no cause", as if the budget had merely run out."""
    monkeypatch.setattr(redis_budget, "UNAVAILABLE_AFTER", 0.3)
    fake.add_order("JNOID-1", "Pending")
    with RedisServer(persist=True) as server:
        budget = tg.RedisBudget(server.url, 60000, name="away")
        async with fast_client(fake, budget=budget) as client:
            await client.get_order("JNOID-1")  # the token, while the budget is there
            server.down()
            ids = ["JNOID-1", "JNOID-2"]
            outcomes = [o async for o in client.wait_for_orders(ids, timeout=1.0)]
    assert sorted(o.order_id for o in outcomes) == ids
    for outcome in outcomes:
        assert isinstance(outcome.error, tg.OrderWaitTimeout), outcome
        assert not outcome.error.polled
        assert isinstance(outcome.error.__cause__, tg.BudgetUnavailableError), outcome
        assert "could not be reached" in str(outcome.error.__cause__)
    assert len(fake.order_requests()) == 1  # the lookup before the outage: none unbudgeted


# -- SQLite locked by another process --------------------------------------------------------

LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(60)
"""


@contextlib.asynccontextmanager
async def lock_held(db: pathlib.Path) -> AsyncIterator[asyncio.subprocess.Process]:
    async with process(
        sys.executable, "-c", LOCK_HOLDER, str(db), stdout=asyncio.subprocess.PIPE
    ) as holder:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 10.0) == b"locked\n"
        yield holder


@pytest.mark.slow
async def test_an_sqlite_lock_held_past_lock_timeout_pauses_the_watcher_only(
    fake: FakeTelegent, tmp_path: pathlib.Path
) -> None:
    seed = random.randrange(1 << 30)
    finals = scripted(fake, random.Random(seed), 30, spread=2.5)
    db = tmp_path / "w.db"
    store = tg.SQLiteStore(db, lock_timeout=0.2)
    async with watching(fake, store, finals) as (watcher, delivered):
        for _ in range(2):
            await asyncio.sleep(0.2)
            async with lock_held(db) as holder:
                await wait_until(lambda: not watcher.health.store_ok, 5.0)
                assert "locked" in (watcher.health.fault or "")
                await asyncio.sleep(0.3)
                os.kill(holder.pid, signal.SIGKILL)  # the lock goes with its process
                await holder.wait()
            back = time.monotonic()
            await resumed(fake, back)
            await wait_until(lambda: watcher.health.store_ok, RESUMES_WITHIN)
        await delivered.all_of(finals)


@pytest.mark.slow
async def test_a_stop_cancelled_again_still_gives_back_the_polls_under_way(
    fake: FakeTelegent, tmp_path: pathlib.Path
) -> None:
    """A stopping watcher may be cancelled again: `watch run` re-cancels every 0.5 s after
    SIGTERM, a caller's timeout may cancel a close. The claims of the polls under way are
    given back all the same, not left leased until their lease ends. Another process holds
    the file's lock as the stop begins, so the release waits for it, and the second cancel
    lands in that wait."""
    ids = [f"JNOID-{n}" for n in range(4)]
    for order_id in ids:
        fake.add_order(order_id, "Submitted")
    fake.inject("stall", count=len(ids))  # every first poll is under way when the stop comes
    db = tmp_path / "w.db"
    store = tg.SQLiteStore(db, lock_timeout=5.0)  # ours to close: the watcher did not open it
    async with fast_client(fake, timeout=5.0) as client:
        watcher = tg.OrderWatcher(client, store, policy=FAST_POLL)

        async def watch() -> None:
            async with watcher:
                await watcher.add_many(ids)
                await asyncio.Event().wait()

        task = asyncio.ensure_future(watch())
        await wait_until(lambda: len(fake.order_requests()) == len(ids))
        async with lock_held(db) as holder:
            task.cancel()
            await wait_until(lambda: fake.open_connections == 0)  # the polls were cancelled
            await asyncio.sleep(0.1)  # (the release waits for the lock: up to 5 s)
            task.cancel()
            await asyncio.sleep(0.2)
            os.kill(holder.pid, signal.SIGKILL)  # the lock goes with its process
            await holder.wait()
        await asyncio.gather(task, return_exceptions=True)
    await store.aclose()
    assert task.cancelled()
    with contextlib.closing(sqlite3.connect(db)) as file:
        leased = file.execute("SELECT count(*) FROM watches WHERE leased_by IS NOT NULL")
        assert leased.fetchone() == (0,)


async def test_a_close_cancelled_again_still_closes_the_store_it_opened(
    fake: FakeTelegent, tmp_path: pathlib.Path
) -> None:
    """Closing the file it opened is part of a watcher's stop: a close cancelled again
    (`watch run` after SIGTERM, a caller's timeout) goes on to it before passing the cancel on."""
    async with fast_client(fake) as client:
        watcher = tg.OrderWatcher(client, str(tmp_path / "w.db"), policy=FAST_POLL)

        async def watch() -> None:
            async with watcher:
                await asyncio.Event().wait()

        task = asyncio.ensure_future(watch())
        await wait_until(lambda: watcher.health.running)
        task.cancel()  # the close begins ...
        await asyncio.sleep(0)
        task.cancel()  # ... and is cancelled again while its tasks end
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    with pytest.raises(RuntimeError, match="is closed"):
        await watcher.store.count()


# -- credentials -----------------------------------------------------------------------------


@pytest.mark.usefixtures("short_refusal_pauses")
@pytest.mark.parametrize("fault", ["token refused", "403"])
async def test_refused_credentials_pause_polls_and_settle_nothing(
    fake: FakeTelegent, fault: str
) -> None:
    finals = {"JNOID-a": "Completed", "JNOID-b": "Rejected", "JNOID-c": "Completed"}
    for order_id, status in finals.items():
        fake.add_order(order_id, status)
    if fault == "403":
        fake.inject("403", 3)
    else:
        fake.fail_tokens("refused", seconds=0.4)  # a wrong secret, then the right one
    async with (
        fast_client(fake, max_retries=1) as client,
        tg.OrderWatcher(client, policy=FAST_POLL) as watcher,
    ):
        await watcher.add_many(finals)
        delivered = Delivered(watcher)
        await wait_until(lambda: not watcher.health.credentials_ok, 5.0)
        health = watcher.health
        assert health.paused_until is not None and health.running
        assert "credentials refused" in (health.fault or "")
        await delivered.all_of(finals, timeout=15.0)  # resumed by itself
        assert watcher.health.credentials_ok and watcher.health.paused_until is None
    assert not any(isinstance(o.error, tg.TelegentError) for o in delivered.outcomes.values())


async def test_a_base_url_reaching_no_endpoint_pauses_polls_and_settles_nothing(
    fake: FakeTelegent,
) -> None:
    """A routing miss (`EndpointNotFoundError`: every poll would get it) is the setup's fault,
    not the orders': the watches stay pending for a watcher with the right base URL."""
    finals = {"JNOID-a": "Completed", "JNOID-b": "Rejected"}
    for order_id, status in finals.items():
        fake.add_order(order_id, status)
    wrong = fake.base_url.replace("/v1.0", "/v2.0")
    async with fast_client(fake, base_url=wrong) as client:
        watcher = tg.OrderWatcher(client, policy=FAST_POLL)
        async with watcher:
            await watcher.add_many(finals)
            delivered = Delivered(watcher)
            await wait_until(lambda: not watcher.health.credentials_ok, 5.0)
            assert "EndpointNotFoundError" in (watcher.health.fault or "")
            assert watcher.health.running and watcher.health.paused_until is not None
            assert (await watcher.count()).pending == 2
            assert delivered.outcomes == {}


# -- restart ---------------------------------------------------------------------------------


async def test_a_restart_past_the_deadline_polls_once_before_settling(
    fake: FakeTelegent, tmp_path: pathlib.Path
) -> None:
    fake.add_order("JNOID-done", "Completed")  # completed while no worker ran
    fake.add_order("JNOID-slow", "Submitted")
    db = tmp_path / "w.db"
    async with fast_client(fake) as client:
        offline = tg.OrderWatcher(client, db)
        await offline.add_many(["JNOID-done", "JNOID-slow"], deadline=0.1)
        await offline.aclose()
        await asyncio.sleep(0.5)  # well past deadline + lease
        async with tg.OrderWatcher(client, db, policy=FAST_POLL, lease=0.1) as watcher:
            done = await watcher.wait("JNOID-done", timeout=5.0)
            with pytest.raises(tg.OrderWaitTimeout) as timed_out:
                await watcher.wait("JNOID-slow", timeout=5.0)
    assert done.raw_status == "Completed"  # not a timeout on a days-old answer
    assert timed_out.value.polled and timed_out.value.last_order is not None
    assert [len(fake.order_requests(i)) for i in ("JNOID-done", "JNOID-slow")] == [1, 1]


# -- a fault that does not pass --------------------------------------------------------------


class CorruptedStore(tg.MemoryStore):
    """A store whose file turns out not to be a database once `broken` is set."""

    broken = False

    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]:
        if self.broken:
            raise sqlite3.DatabaseError("file is not a database")
        return await super().claim(limit, lease, worker)


async def test_a_fault_that_does_not_pass_stops_the_watcher_loudly(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_order("JNOID-1", "Submitted")
    store = CorruptedStore()
    client = fast_client(fake)
    watcher = tg.OrderWatcher(client, store, policy=FAST_POLL)
    with pytest.raises(sqlite3.DatabaseError):
        async with client, watcher:
            await watcher.add("JNOID-1")
            await wait_until(lambda: watcher.health.last_poll_at is not None, 5.0)
            store.broken = True
            with pytest.raises(sqlite3.DatabaseError):
                await watcher.wait("JNOID-1", timeout=5.0)
            with pytest.raises(sqlite3.DatabaseError):
                async for _ in watcher.settled():
                    pass
            health = watcher.health
            assert not health.running and not health.store_ok
            assert health.fault == (
                "stopped: store unavailable: DatabaseError: file is not a database"
            )
    assert any(r.levelno == logging.ERROR for r in caplog.records)


# -- cancellations ---------------------------------------------------------------------------


async def test_in_flight_returns_to_zero_after_cancellations(fake: FakeTelegent) -> None:
    fake.add_order("JNOID-1", "Submitted")
    fake.inject("stall", 5)
    async with fast_client(fake, timeout=30.0) as client:
        lookups = [asyncio.ensure_future(client.get_order("JNOID-1")) for _ in range(5)]
        await wait_until(lambda: len(fake.order_requests("JNOID-1")) == 5, 5.0)
        assert client.stats.in_flight == 5
        for lookup in lookups:
            lookup.cancel()
        await asyncio.gather(*lookups, return_exceptions=True)
        assert client.stats.in_flight == 0
        assert client.stats.cancelled == 5


async def logged_until(stream: asyncio.StreamReader, words: str) -> str:
    """What `stream` says up to and including its first line holding `words`."""
    lines: list[str] = []
    while words not in (line := (await stream.readline()).decode()):
        assert line, f"no line holds {words!r}: {''.join(lines)}"
        lines.append(line)
    return "".join([*lines, line])


@pytest.mark.slow
async def test_watch_run_logs_each_redis_outage_at_its_default_verbosity(
    restartable_redis: RedisServer,
) -> None:
    url, namespace = restartable_redis.url, "cli-outage"
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as fake:
        fake.add_order("JNOID-a", [Step("Submitted"), Step("Completed", 1.5)])
        added = await run_cli("watch", "add", "--store", url, "--namespace", namespace, "JNOID-a")
        assert added.code == 0, added.err
        argv = ("watch", "run", "--json", *FAST, "--store", url, "--namespace", namespace)
        async with cli_process(fake, *argv) as proc:
            await wait_until(lambda: len(fake.order_requests("JNOID-a")) > 0, 20.0)
            await asyncio.to_thread(restartable_redis.down)
            assert proc.stderr is not None and proc.stdout is not None
            logged = await asyncio.wait_for(logged_until(proc.stderr, "store unavailable"), 20.0)
            await asyncio.to_thread(restartable_redis.up)
            line = await asyncio.wait_for(proc.stdout.readline(), 20.0)
            back = logged_until(proc.stderr, "store available again after")
            logged += await asyncio.wait_for(back, 20.0)
            proc.send_signal(signal.SIGTERM)
            code, _, err = await finish(proc)
            err = logged + err
    assert code == 0 and b'"JNOID-a"' in line and b"COMPLETE" in line.upper()
    assert "store unavailable: ConnectionError" in err and "Traceback" not in err
    assert "store available again after" in err
