"""Two kinds of caller on one budget, on a fake clock: direct calls take the window's room at
once; background polls go at the steady pace (the limit less `reserve`, spread over the
window) and leave `reserve` starts of every window to direct calls; no window ever holds more
than the limit, whatever the interleaving (Hypothesis). Then the same budget in a real loop,
and deadlines kept on an exhausted budget."""

from __future__ import annotations

import asyncio
import bisect
import itertools
from types import SimpleNamespace

import aiohttp
import pytest
from helpers import FakeClock, busiest_window, fast_client, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

import telegent_async as tg
from telegent_async._budgets.base import (
    background_interval,
    background_polls,
    default_reserve,
    span_of,
)
from telegent_async._budgets.local import Reservations, Ticket
from telegent_async.testing import FakeTelegent

LIMIT, WINDOW = 60, 6.0  # the compressed account: 60 requests per rolling 6 s
SPAN = span_of(WINDOW)  # the window and its margin (0.25 s)
RESERVE = 6  # the default: a tenth of the limit
INTERVAL = SPAN / (LIMIT - RESERVE)  # one background start each 0.116 s


def test_the_default_reserve_is_a_tenth_at_least_one_below_the_limit() -> None:
    assert [default_reserve(n) for n in (1, 2, 9, 10, 50, 300)] == [0, 1, 1, 1, 5, 30]
    assert tg.LocalBudget(50).reserve == 5
    assert tg.LocalBudget(50, reserve=0).reserve == 0
    with pytest.raises(ValueError, match="below the window's limit"):
        tg.LocalBudget(50, reserve=50)
    with pytest.raises(ValueError, match="at least 0"):
        tg.LocalBudget(50, reserve=-1)
    with pytest.raises(TypeError, match="reserve must be an int"):
        tg.LocalBudget(50, reserve=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"limit \(5\)"):
        tg.RedisBudget("redis://127.0.0.1:1/0", 50, window=6.0, reserve=5)


def test_direct_calls_start_at_once_up_to_the_window() -> None:
    clock = FakeClock(0.0)
    book = Reservations(LIMIT, WINDOW)
    at = [book.reserve(clock(), f"d{n}").at for n in range(LIMIT + 5)]
    assert at[:LIMIT] == [0.0] * LIMIT  # the whole window at once
    assert at[LIMIT:] == [SPAN] * 5  # then as the window rolls


def background_caller(book: Reservations, clock: FakeClock, polls: int) -> list[float]:
    """A scheduler with polls always waiting: it asks for the next start when the previous
    one has come (its caller sleeps to it), `polls` times."""
    starts = []
    for n in range(polls):
        ticket = book.reserve(clock(), f"poll-{n}", background=True)
        clock.now = max(clock.now, ticket.at)
        starts.append(ticket.at)
    return starts


def test_background_polls_are_spread_evenly_never_a_burst() -> None:
    clock = FakeClock(0.0)
    book = Reservations(LIMIT, WINDOW)
    starts = background_caller(book, clock, 200)  # about four windows of polls waiting
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(starts)}
    assert gaps == {round(INTERVAL, 9)}  # one each (window + margin) / (limit - reserve)
    # No sub-interval of a tenth of the window is empty while polls wait, none holds more
    # than its share (0.6 s / 0.116 s = 5.2 starts: 5 or 6).
    tenth = WINDOW / 10
    counts = [
        bisect.bisect_left(starts, t + tenth) - bisect.bisect_left(starts, t)
        for t in (n * tenth for n in range(int(starts[-1] / tenth)))
    ]
    assert set(counts) <= {5, 6}
    assert busiest_window(starts, WINDOW) <= LIMIT - RESERVE


def test_the_reserve_is_held_for_direct_calls_under_background_load() -> None:
    clock = FakeClock(0.0)
    book = Reservations(LIMIT, WINDOW)
    polls: list[Ticket] = []
    direct: list[tuple[float, float]] = []  # (asked, granted)
    # Polls always waiting (one queued ahead of its time, as a scheduler keeps it); every
    # 6.5 s, a burst of `reserve` direct calls.
    next_burst = 1.0
    while clock.now < 30.0:
        ticket = book.reserve(clock(), f"poll-{len(polls)}", background=True)
        polls.append(ticket)
        if clock.now <= next_burst < ticket.at:
            clock.now = next_burst
            direct += [(clock.now, book.reserve(clock(), f"d{n}").at) for n in range(RESERVE)]
            next_burst += SPAN + 0.25
        clock.now = max(clock.now, ticket.at)
    assert len(direct) >= 4 * RESERVE
    assert all(granted == asked for asked, granted in direct)  # every one at once
    every = sorted([t.at for t in polls] + [granted for _, granted in direct])
    assert busiest_window(every, WINDOW) <= LIMIT
    assert busiest_window([t.at for t in polls], WINDOW) <= LIMIT - RESERVE


def test_direct_calls_go_before_polls_booked_ahead() -> None:
    """A poll booked for later never holds back a direct call the window has room for."""
    FakeClock(0.0)
    book = Reservations(4, 1.0, reserve=1)  # background: 3 a window, one each 0.35 s
    polls = [book.reserve(0.0, f"p{n}", background=True).at for n in range(6)]
    assert polls == pytest.approx([0.0, 0.35, 0.7, 1.05, 1.4, 1.75])
    assert book.reserve(0.1, "direct").at == 0.1  # a fourth start fits in every window
    assert book.reserve(0.1, "direct-2").at > 0.1  # a fifth would not


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 0.7),  # seconds since the previous event
            st.sampled_from(["direct", "background", "token", "give back", "429"]),
        ),
        max_size=120,
    ),
    st.integers(1, 12),
    st.integers(0, 3),
)
def test_no_window_ever_holds_more_than_the_limit(
    events: list[tuple[float, str]], limit: int, reserve: int
) -> None:
    """Any interleaving of direct calls, background polls, token requests, callers giving up
    and 429s: the starts granted (where they end up) never overfill a window."""
    reserve = min(reserve, limit - 1)
    clock = FakeClock(0.0)
    book = Reservations(limit, 1.0, reserve)
    tickets: list[Ticket] = []
    for step, kind in events:
        clock.advance(step)
        if kind == "give back":
            waiting = [t for t in tickets if t.at > clock.now and not t.gone]
            if waiting:
                book.give_back(waiting[-1], clock.now)
        elif kind == "429":
            book.rate_limited(0.1, clock.now, clock.now)
        else:
            ticket = book.reserve(
                clock.now, kind, first=kind == "token", background=kind == "background"
            )
            assert ticket.at >= clock.now
            tickets.append(ticket)
    starts = sorted(t.at for t in tickets if not t.gone)
    assert busiest_window(starts, 1.0) <= limit


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 0.5), max_size=80), st.integers(2, 12))
def test_background_polls_alone_never_take_the_reserve(steps: list[float], limit: int) -> None:
    clock = FakeClock(0.0)
    reserve = default_reserve(limit)
    book = Reservations(limit, 1.0)
    starts = []
    for step in steps:
        clock.advance(step)
        starts.append(book.reserve(clock.now, "poll", background=True).at)
    assert busiest_window(starts, 1.0) <= limit - reserve
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= background_interval(limit, reserve, span_of(1.0)) - 1e-9 for gap in gaps)


# -- in a loop, at the fake --------------------------------------------------------------------


async def test_polls_in_background_polls_wait_their_turn_direct_calls_do_not() -> None:
    """20 per 0.5 s window (reserve 2): 12 background lookups queue at the steady pace (one
    each 29 ms); two direct lookups meanwhile go at once: in their first step, ahead of the
    queued polls (counted in turns of the loop, which a loaded machine cannot stretch)."""
    loop = asyncio.get_running_loop()
    first_turn = [False]  # while the loop runs the direct lookups' first steps
    direct_at_once: list[str] = []  # the lookups that started in that turn

    async def on_start(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        if first_turn[0]:
            direct_at_once.append(params.url.query["OrderId"])

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with FakeTelegent(default_status="Complete") as fake:
        budget = tg.LocalBudget(2400, window=0.5)
        options = {"budget": budget, "max_connections": 20, "trace_configs": [trace]}
        async with fast_client(fake, **options) as client:
            await client.get_order("JNUOID-warm")  # the token

            async def poll(n: int) -> None:
                with background_polls():
                    await client.get_order(f"JNUOID-bg-{n}")

            polls = asyncio.gather(*(poll(n) for n in range(12)))
            await wait_until(lambda: len(fake.order_requests()) >= 3)
            first_turn[0] = True
            direct = asyncio.gather(client.get_order("JNUOID-d1"), client.get_order("JNUOID-d2"))
            loop.call_soon(first_turn.__setitem__, 0, False)  # after their first steps
            await direct
            await polls
    # Not behind the queued polls (a poll whose time came may start in that turn too).
    assert {"JNUOID-d1", "JNUOID-d2"} <= set(direct_at_once)
    bg = sorted(r.at for r in fake.order_requests() if "-bg-" in r.query[0][1])
    assert len(bg) == 12
    assert bg[-1] - bg[0] >= 11 * (span_of(0.5) / 18) * 0.9  # spread, not a burst


async def test_a_single_wait_on_an_exhausted_budget_reports_within_half_a_second() -> None:
    async with FakeTelegent(default_status="Pending") as fake:
        budget = tg.LocalBudget(20, window=60.0)  # 20 a minute, all taken below
        async with fast_client(fake, budget=budget) as client:
            await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(19)))
            loop = asyncio.get_running_loop()
            began = loop.time()
            with pytest.raises(tg.OrderWaitTimeout) as caught:
                await client.wait_for_order("JNUOID-w", timeout=0.8)
            late = loop.time() - began - 0.8
    assert late < 0.5  # was 30.8 s in all (the next window, plus an attempt timeout)
    assert not caught.value.polled and "never polled" in str(caught.value)


async def test_a_fan_out_on_an_exhausted_budget_reports_within_half_a_second() -> None:
    async with FakeTelegent(default_status="Pending") as fake:
        budget = tg.LocalBudget(20, window=60.0)
        async with fast_client(fake, budget=budget) as client:
            await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(19)))
            loop = asyncio.get_running_loop()
            began = loop.time()
            ids = [f"JNUOID-w{n}" for n in range(30)]
            outcomes = [o async for o in client.wait_for_orders(ids, timeout=0.8)]
            late = loop.time() - began - 0.8
    assert late < 0.5
    assert sorted(o.order_id for o in outcomes) == sorted(ids)
    for outcome in outcomes:  # no room left in the window: none was polled, each says so
        assert isinstance(outcome.error, tg.OrderWaitTimeout) and not outcome.error.polled


async def test_a_timeout_with_no_room_for_a_last_poll_names_the_failure_of_the_last() -> None:
    # 18 background polls a minute: after its first poll (a 503) the order's next would come
    # 3.3 s later, so the deadline passes without one. The timeout's cause is that 503, as a
    # single wait's would be, handed to the settling claim by the store (`Claim.last_error`).
    async with FakeTelegent(default_status="Pending") as fake:
        fake.inject("503", count=1_000)
        budget = tg.LocalBudget(20, window=60.0)
        async with fast_client(fake, budget=budget, max_retries=0) as client:
            (outcome,) = [o async for o in client.wait_for_orders(["JNUOID-1"], timeout=0.5)]
    assert fake.status_counts[503] == 1  # polled once, then no room before the deadline
    assert isinstance(outcome.error, tg.OrderWaitTimeout) and outcome.error.polled
    cause = outcome.error.__cause__
    assert isinstance(cause, tg.ServiceUnavailableError) and cause.status_code == 503


async def test_start_now_counts_a_direct_call_with_room_and_nothing_else() -> None:
    """The send path's fast path: a direct call the window has room for starts (and counts)
    without an await; a background poll, a full window or a 429 pause send it to `acquire`."""
    budget = tg.LocalBudget(180, window=1.0)  # 3 per window
    now = asyncio.get_running_loop().time()
    with background_polls():
        assert not budget.start_now(now)  # a poll always takes its start from `acquire`
    assert [budget.start_now(now) for _ in range(4)] == [True, True, True, False]
    await budget.pause(5.0)
    assert not budget.start_now(now + span_of(1.0))  # the window rolled, but the pause holds
    assert tg.LocalBudget(None).start_now(now)
