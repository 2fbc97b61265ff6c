"""`RedisBudget`: one account budget across processes, on the session's own redis-server.

The multi-process tests run `tests/budget_worker.py`; the FakeTelegent runs here, so its
request log is what the account's server would count.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import pathlib
import sys
from collections.abc import AsyncIterator
from typing import cast

import pytest
from helpers import ENOUGH, busiest_window, fast_client, process, ready, wait_until

import telegent_async as tg
from telegent_async._budgets.redis import redis_budget_keys
from telegent_async._redis_connection import connect
from telegent_async.testing import FakeTelegent

WORKER = pathlib.Path(__file__).with_name("budget_worker.py")


@contextlib.asynccontextmanager
async def budget_workers(
    fake: FakeTelegent, logs: list[pathlib.Path], *args: str
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Budget worker processes, each stopped by its PID whatever happens."""
    env = {
        **os.environ,
        "TELEGENT_ACCOUNT_KEY": fake.account_key,
        "TELEGENT_ACCOUNT_SECRET": fake.account_secret,
    }
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                process(
                    sys.executable,
                    str(WORKER),
                    "--base-url",
                    fake.base_url,
                    "--log",
                    str(log),
                    *args,
                    env=env,
                )
            )
            for log in logs
        ]


@pytest.mark.slow  # real time: three 1 s windows
async def test_two_budgets_of_one_name_share_the_window(redis_url: str, namespace: str) -> None:
    """Two RedisBudget objects (as two processes would), 10 requests per 1 s window, counted
    where the budget counts them: the starts it recorded, on Redis's clock. (When this loop
    resumes each caller adds the loop's own latency, which a loaded machine stretches.)"""
    a = tg.RedisBudget(redis_url, 600, namespace, window=1.0)
    b = tg.RedisBudget(redis_url, 600, namespace, window=1.0)
    redis = connect(redis_url)
    sent: dict[bytes, float] = {}  # reservation -> when it was sent, as the budget recorded it

    async def take(budget: tg.RedisBudget) -> None:
        await budget.acquire()
        # Read at once: a start leaves the record a window after it (its own is there now).
        recorded = await redis.zrange(a.keys.sent, 0, -1, withscores=True)
        sent.update(cast("list[tuple[bytes, float]]", recorded))

    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        await asyncio.gather(*(take(budget) for budget in [a, b] * 12 + [a]))
        waited = loop.time() - began
    finally:
        await redis.aclose()
        await a.aclose()
        await b.aclose()
    starts = sorted(sent.values())
    assert len(starts) == 25
    assert busiest_window(starts, 1.0) <= 10
    # The first ten at once, then ten a window (a window later would be 3.15 s).
    assert starts[9] - starts[0] < 0.5
    assert 2.0 <= starts[-1] - starts[0] < 3.1
    assert waited >= 2.0  # and the callers really waited for their starts


async def test_reservations_given_up_free_their_places(redis_url: str, namespace: str) -> None:
    a = tg.RedisBudget(redis_url, 600, namespace, window=1.0)
    b = tg.RedisBudget(redis_url, 600, namespace, window=1.0)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.gather(*(a.acquire() for _ in range(10)))  # the window is full
        waiters = [asyncio.ensure_future(a.acquire()) for _ in range(10)]  # all for +1 s
        await asyncio.sleep(0.05)
        assert not any(waiter.done() for waiter in waiters)  # all ten wait for the next window
        a.abandon(set(waiters))  # a fan-out left early: give their places back at once
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await asyncio.sleep(0.05)  # the give-back reaches Redis
        started = loop.time()
        await b.acquire()
        assert 0.8 < loop.time() - started < 1.1  # the next window, not the one after it
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_pause_reaches_every_budget_of_the_name(redis_url: str, namespace: str) -> None:
    a = tg.RedisBudget(redis_url, 6000, namespace)
    b = tg.RedisBudget(redis_url, 6000, namespace)
    loop = asyncio.get_running_loop()
    try:
        await a.pause(0.4)
        started = loop.time()
        await b.acquire()
        assert 0.35 <= loop.time() - started < 0.6
        await a.pause(0.1)  # a shorter pause never shortens a longer one
        await b.pause(0.5)
        started = loop.time()
        await a.acquire()
        assert 0.45 <= loop.time() - started < 0.7
        assert a.limit == 6000  # 429s while sending far below the limit: someone else's traffic
    finally:
        await a.aclose()
        await b.aclose()


def _senders(fake: FakeTelegent) -> set[str]:
    """The PIDs of the budget workers whose lookups reached `fake` (IDs JNUOID-<pid>-<n>)."""
    ids = (value for r in fake.order_requests() for name, value in r.query if name == "OrderId")
    return {order_id.split("-")[1] for order_id in ids}


@pytest.mark.slow
async def test_one_429_holds_every_worker_for_its_retry_after(
    redis_url: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    logs = [tmp_path / f"b{n}.log" for n in range(3)]
    args = ("--redis", redis_url, "--name", namespace, "--rpm", "60000", "--count", "50")
    async with FakeTelegent(default_status="Complete") as fake:
        extra = ("--concurrency", "1", "--interval", "0.02")
        async with budget_workers(fake, logs, *args, *extra) as procs:
            for log in logs:
                await ready(log)
            # All three are looking orders up (their IDs are JNUOID-<pid>-<n>).
            pids = {str(proc.pid) for proc in procs}
            await wait_until(lambda: _senders(fake) >= pids, ENOUGH, interval=0.01)
            fake.inject("429", retry_after="1")
            for proc in procs:
                assert await asyncio.wait_for(proc.wait(), ENOUGH) == 0
    requests = fake.order_requests()
    limited = next(r.at for r in requests if r.status == 429)
    # (a request already on its way when the 429 came may land in the loop's next turns)
    held = [r.at - limited for r in requests if limited + 0.1 < r.at < limited + 0.95]
    assert held == [], f"requests during the shared pause: {held}"
    resumed = [r for r in requests if r.at >= limited + 1.0]
    assert len(resumed) >= 30  # every worker carried on after the pause
    assert min(r.at for r in resumed) - limited < 1.3


@pytest.mark.slow  # real time: one 1 s window and the start of the next
async def test_three_processes_share_60_requests_per_window(
    redis_url: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    """3 processes want 300 lookups at 60 requests per window (a 1 s window: 3,600 a minute).
    Watched for 1.5 windows: no rolling window above 60, the first 60 at once, and the 61st
    only once the first has left the window.

    Counted where the budget counts: each request's moment of sending as the budget recorded
    it, on Redis's clock (read every 0.1 s; a record stays a window and its margin). The
    server's stamps add the lag between that moment and the request's arrival, which no
    client can bound: CI once stamped 84 in 0.9 s when the first window's requests, sent in
    one burst by three processes on a machine loaded three times over, reached the fake's
    loop up to a few tenths of a second late while the next window's came on time."""
    logs = [tmp_path / f"b{n}.log" for n in range(3)]
    args = ("--redis", redis_url, "--name", namespace, "--rpm", "3600", "--window", "1")
    key = redis_budget_keys(namespace).sent
    redis = connect(redis_url)
    sent: dict[bytes, float] = {}  # reservation -> when it was sent, as the budget recorded it

    async def record() -> None:
        recorded = await redis.zrange(key, 0, -1, withscores=True)
        sent.update(cast("list[tuple[bytes, float]]", recorded))

    try:
        async with (
            FakeTelegent(default_status="Complete") as fake,
            budget_workers(fake, logs, *args, "--count", "100") as procs,
        ):
            for log in logs:
                await ready(log)
            await wait_until(lambda: bool(fake.requests), 30.0, interval=0.01)
            loop = asyncio.get_running_loop()
            until = fake.requests[0].at + 1.5
            while loop.time() < until:
                await record()
                await asyncio.sleep(0.1)
            arrived = len(fake.requests)
            await record()
            # Every request the fake saw was recorded before it was sent, and read here (a
            # record stays a window and its margin): none went round the budget, none missed.
            assert len(sent) >= arrived
            # Demand outlasts the window (one process may finish its share early: the budget
            # is shared first come, first served, not split per process), and none failed.
            assert any(proc.returncode is None for proc in procs)
            assert not [log for log in logs if "failed" in log.read_text()]
    finally:
        await redis.aclose()
    times = sorted(sent.values())  # token requests count too
    # Without the shared budget, the first window would hold 180.
    assert busiest_window(times, 1.0) <= 60
    assert len(times) > 60 and times[60] - times[0] >= 1.0  # the 61st waited for the window
    # The first 60 at once: spaced evenly, half a window would hold only 30. (Counted at the
    # fake from the first lookup: each process asks for its token first, at its own pace.)
    lookups = sorted(r.at for r in fake.order_requests())
    assert sum(1 for t in lookups if t - lookups[0] < 0.5) >= 45


@pytest.mark.slow  # real time: about 2 s of polls from three processes
async def test_three_processes_poll_at_one_steady_pace_and_leave_the_reserve(
    redis_url: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    """20 per 1 s window (reserve 2: background polls 18 a window, one each 58 ms, shared).
    Three processes poll 36 orders in the background; meanwhile this process makes two direct
    lookups every 1.1 s on the same budget: they go at once. At the fake: no window above 20,
    the polls alone never above 18, and spread evenly, never a burst then silence."""
    logs = [tmp_path / f"b{n}.log" for n in range(3)]
    args = ("--redis", redis_url, "--name", namespace, "--rpm", "1200", "--window", "1.0")
    extra = ("--count", "12", "--concurrency", "3", "--background")
    direct_waits: list[float] = []
    async with FakeTelegent(default_status="Complete") as fake:
        budget = tg.RedisBudget(redis_url, 1200, namespace, window=1.0)
        async with (
            fast_client(fake, budget=budget) as client,
            budget_workers(fake, logs, *args, *extra) as procs,
        ):
            for log in logs:
                await ready(log)
            await wait_until(lambda: len(fake.order_requests()) >= 10, ENOUGH)
            loop = asyncio.get_running_loop()
            for burst in range(2):
                began = loop.time()
                await asyncio.gather(
                    *(client.get_order(f"JNUOID-direct-{burst}-{n}") for n in (0, 1))
                )
                direct_waits.append(loop.time() - began)
                await asyncio.sleep(1.1)
            for proc in procs:
                assert await asyncio.wait_for(proc.wait(), ENOUGH) == 0
    # At once, under the polls' load (a window's wait would be 1 s; a loaded machine's loop
    # and the reservation's round trip take some of the 0.3 s).
    assert max(direct_waits) < 0.3, direct_waits
    times = sorted(r.at for r in fake.requests)  # token requests count too
    polls = sorted(r.at for r in fake.order_requests() if "direct" not in r.query[0][1])
    assert len(polls) == 36
    assert busiest_window(times, 1.0) <= 20
    assert busiest_window(polls, 1.0) <= 18
    # Evenly: every half second of the polling holds some polls (its share is 8.6), none
    # holds a burst (a window's 18 at once, as the budget before round 3 sent them).
    halves = collections.Counter(int((t - polls[0]) / 0.5) for t in polls)
    counts = [halves[n] for n in range(max(halves))]  # the last, partial half left out
    assert min(counts) >= 2 and max(counts) <= 14, counts
