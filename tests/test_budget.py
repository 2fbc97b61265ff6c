"""The account budget: the pure reservation and pace decisions, then `LocalBudget` measured at
the fake (the rolling-window guarantee, idle bursts, a stray 429, a real limit found)."""

from __future__ import annotations

import asyncio
import bisect
import collections
import math

import pytest
from conftest import fast_client

import telegent_async as tg
from telegent_async._budget import (
    Pace,
    allowance,
    limit_at,
    next_start,
    on_rate_limited,
    span_of,
    window_limit,
)
from telegent_async.testing import FakeTelegent

W = 60.0


def busiest_window(times: list[float], window: float) -> int:
    """The most requests any rolling `window` (half-open, as a server counts) holds."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


# -- pure --------------------------------------------------------------------------------------


def test_window_limit_and_allowance() -> None:
    assert window_limit(50, 60.0) == 50
    assert window_limit(600, 0.1) == 1
    assert window_limit(1, 1.0) == 1  # never zero
    assert allowance(0.2, 1, 0.05) == 5
    assert allowance(59.0, 50, 60.0) == 50  # an idle budget: the whole window at once
    assert allowance(61.0, 50, 60.0) == 100


def test_next_start_bursts_then_rolls() -> None:
    span = span_of(W)
    starts: list[float] = []
    for _ in range(130):
        starts.append(next_start(starts, 0.0, 50, span))
    assert starts[:50] == [0.0] * 50  # an idle client's first requests go out at once
    assert starts[50:100] == [span] * 50  # then as the window frees, in arrival order
    assert starts[100:] == [2 * span] * 30
    assert busiest_window(starts, W) == 50


def test_next_start_after_holes_never_overfills_a_window() -> None:
    """Cancelled reservations leave holes anywhere; whatever is left, a new start fits."""
    span = span_of(1.0)
    starts: list[float] = []
    for n in range(40):
        starts.append(next_start(starts, n * 0.05, 4, span))
        if n % 3 == 1:
            del starts[-2]  # a caller in the middle gave up
    assert busiest_window(starts, 1.0) <= 4
    assert starts == sorted(starts)


def test_a_stray_429_costs_its_pause_and_nothing_else() -> None:
    pace = on_rate_limited(
        Pace(), now=100.0, pause=2.0, configured=50, window=W, sent=30, rejected=1
    )
    assert pace.paused_until == 102.0 and pace.limit is None
    assert limit_at(pace, 103.0, 50, W) == 50
    # 429s answering requests already in flight belong to the same signal: no lowering.
    same = on_rate_limited(pace, now=100.5, pause=2.0, configured=50, window=W, sent=30, rejected=5)
    assert same.limit is None and same.paused_until == 102.5
    # The pause only ever moves later.
    short = on_rate_limited(
        same, now=100.6, pause=0.1, configured=50, window=W, sent=30, rejected=6
    )
    assert short.paused_until == 102.5


def test_a_repeated_429_lowers_the_limit_to_what_the_server_accepted() -> None:
    first = on_rate_limited(
        Pace(), now=0.0, pause=1.0, configured=50, window=W, sent=41, rejected=1
    )
    again = on_rate_limited(
        first, now=61.0, pause=1.0, configured=50, window=W, sent=42, rejected=2
    )
    assert again.repeat and again.limit == 40
    # Quiet for long enough, it climbs back one request a window, up to the configured limit.
    assert limit_at(again, 61.0 + 9 * W, 50, W) == 40
    assert limit_at(again, 61.0 + 10 * W, 50, W) == 41
    assert limit_at(again, 61.0 + 30 * W, 50, W) == 50
    # Much later, a single 429 is a stray again.
    later = on_rate_limited(
        again, now=10_000.0, pause=1.0, configured=50, window=W, sent=9, rejected=1
    )
    assert not later.repeat and later.limit == again.limit
    # A repeat while sending far below the limit is someone else's traffic, not a lower limit.
    quiet = on_rate_limited(first, now=30.0, pause=1.0, configured=50, window=W, sent=9, rejected=1)
    assert quiet.repeat and quiet.limit is None


def simulate(
    configured: int, real: int, windows: int, stray: tuple[float, ...] = ()
) -> tuple[list[float], list[float], Pace]:
    """A client with endless work behind the pure budget, against a server that accepts `real`
    requests per rolling window and answers 429 (Retry-After 1 s) beyond; `stray` adds 429s
    from another client of the account at those times. Returns accepted and rejected starts."""
    span = span_of(W)
    starts: list[float] = []
    accepted: list[float] = []
    rejected: list[float] = []
    strays = list(stray)
    pace, now = Pace(), 0.0
    while True:
        limit = limit_at(pace, now, configured, W)
        now = max(next_start(starts, now, limit, span), pace.paused_until)
        if now >= windows * W:
            return accepted, rejected, pace
        starts.append(now)
        if strays and now >= strays[0]:
            strays.pop(0)
        elif len(accepted) - bisect.bisect_right(accepted, now - W) < real:
            accepted.append(now)
            continue
        rejected.append(now)
        pace = on_rate_limited(
            pace,
            now=now,
            pause=1.0,
            configured=configured,
            window=W,
            sent=len(starts) - bisect.bisect_right(starts, now - W),
            rejected=len(rejected) - bisect.bisect_right(rejected, now - W),
        )


def per_window(times: list[float]) -> list[int]:
    counts = collections.Counter(int(t // W) for t in times)
    return [counts[n] for n in range(max(counts) + 1)]


def test_repeated_429s_converge_to_the_servers_real_rate() -> None:
    accepted, rejected, pace = simulate(configured=60, real=40, windows=10)
    assert per_window(accepted) == [40] * 10  # the real rate, every window
    assert len(rejected) <= 3 and max(rejected) < W  # found within the first window
    assert pace.limit == 40


def test_a_stray_429_in_simulation_costs_one_request() -> None:
    accepted, rejected, pace = simulate(configured=60, real=60, windows=5, stray=(90.0,))
    assert len(rejected) == 1 and pace.limit is None
    assert sum(per_window(accepted)) >= 5 * 60 - 1


# -- LocalBudget at the fake ---------------------------------------------------------------------


async def test_local_budget_holds_the_rolling_window_at_the_fake() -> None:
    """20 per 1 s window, 50 lookups: three windows, measured where the server counts."""
    async with FakeTelegent(default_status="Complete") as fake:
        budget = tg.LocalBudget(1200, window=1.0)
        async with fast_client(fake, budget=budget, max_connections=50) as client:
            await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(50)))
    times = sorted(r.at for r in fake.requests)  # the token request counts too
    assert len(times) == 51
    assert busiest_window(times, 1.0) == 20
    assert times[19] - times[0] < 0.1  # an idle client's first 20 go out at once
    assert 2.0 <= times[-1] - times[0] < 2.3  # and the rest as each window frees


async def test_an_idle_clients_first_requests_do_not_wait() -> None:
    async with (
        FakeTelegent(default_status="Complete") as fake,
        fast_client(fake, budget=tg.LocalBudget(50)) as client,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(49)))
        assert loop.time() - started < 1.0  # 49 lookups and a token: the whole minute's worth
        assert client.budget.allowance(30.0) == 50


async def test_one_stray_429_pauses_for_its_retry_after_and_keeps_the_limit() -> None:
    async with FakeTelegent(default_status="Complete") as fake:
        budget = tg.LocalBudget(600, window=1.0)  # 10 per window
        async with fast_client(fake, budget=budget) as client:
            await client.get_order("JNUOID-warm")
            fake.inject("429", retry_after="0.3")
            first = asyncio.ensure_future(client.get_order("JNUOID-429"))
            loop = asyncio.get_running_loop()
            while budget.paused_until < loop.time():  # noqa: ASYNC110 - the 429 has no event
                await asyncio.sleep(0.002)
            await asyncio.gather(first, *(client.get_order(f"JNUOID-{n}") for n in range(5)))
            assert budget.limit == 10  # a stray: the limit stays
    rejected = next(r.at for r in fake.order_requests() if r.status == 429)
    after = [r.at for r in fake.order_requests() if r.at > rejected]
    assert len(after) == 6 and min(after) - rejected >= 0.3  # everyone held for Retry-After


@pytest.mark.slow
async def test_repeated_429s_find_the_servers_rate() -> None:
    """The server takes 10 requests a second (a bucket of 10); the budget believes 40 per
    0.5 s. After a couple of signals it settles near the server's rate and 429s stop."""
    async with FakeTelegent(default_status="Complete", rate_limit=10.0, retry_after="0.2") as fake:
        budget = tg.LocalBudget(4800, window=0.5)
        async with fast_client(fake, budget=budget, max_connections=40, max_retries=20) as client:
            await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(40)))
            limit = budget.limit
    statuses = [(r.at, r.status) for r in fake.order_requests()]
    first = statuses[0][0]
    late_429s = [at for at, status in statuses if status == 429 and at - first > 2.0]
    assert limit <= 8, limit  # from 40 down to about the 5 a half-second the server takes
    assert late_429s == [], "still rate limited after converging"
    assert math.isclose(budget.rate, limit / 0.5)
