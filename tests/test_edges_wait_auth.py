"""Edges of waiting and authentication (issue 9), over real sockets with FakeTelegent.

The poll at the deadline, timeouts that say "never polled", callbacks that return values,
leaving a fan-out early, closing the client while calls wait for a token, token requests that
take budget slots and back off together, and tokens from a server whose clock is off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from conftest import FAST_POLL, fast_client

import telegent_async as tg
from telegent_async.testing import FakeTelegent, Step

#: The issue's 1 -> 2 -> 4 s cadence, scaled down tenfold: polls at 0, 0.1, 0.3, then 0.7.
SCALED = tg.PollPolicy(initial=0.1, factor=2.0, max_interval=0.4, jitter=0.0)
#: Settles at 0.35 s, between the poll at 0.3 s and the deadline at 0.65 s.
SETTLES_LATE = [Step("Pending", 0.0), Step("Complete", 0.35)]


async def _wait(client: tg.TelegentClient, order_id: str, timeout: float) -> tg.Order:
    return await client.wait_for_order(order_id, timeout=timeout, policy=SCALED)


async def _watch(client: tg.TelegentClient, order_id: str, timeout: float) -> tg.Order:
    seen = [o async for o in client.watch_order(order_id, timeout=timeout, policy=SCALED)]
    return seen[-1]


async def _fan_out(client: tg.TelegentClient, order_id: str, timeout: float) -> tg.Order:
    stream = client.wait_for_orders([order_id], timeout=timeout, policy=SCALED)
    [outcome] = [o async for o in stream]
    assert outcome.error is None, outcome.error
    assert outcome.order is not None
    return outcome.order


@pytest.mark.parametrize("wait", [_wait, _watch, _fan_out], ids=["wait", "watch", "fan-out"])
async def test_polls_once_more_at_the_deadline(fake: FakeTelegent, wait: Any) -> None:
    fake.add_order("JNUOID-late", SETTLES_LATE)
    async with fast_client(fake) as client:
        started = time.monotonic()
        order = await wait(client, "JNUOID-late", 0.65)
        elapsed = time.monotonic() - started
    assert order.status is tg.OrderStatus.COMPLETE
    assert 0.6 <= elapsed < 0.65 + 0.2  # at the deadline, not at the next poll (0.7 s)
    assert len(fake.order_requests("JNUOID-late")) == 4  # 0, 0.1, 0.3 and the deadline


async def test_unpolled_orders_say_never_polled_and_one_warning_names_both_numbers(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [f"JNUOID-n{index}" for index in range(30)]
    for order_id in ids:
        fake.add_order(order_id, "Pending")
    caplog.set_level(logging.WARNING, logger="telegent_async")
    # 20 requests/s for 0.2 s: about 5 polls for 30 orders.
    async with fast_client(fake, requests_per_minute=1200, max_connections=2, timeout=0.3) as c:
        await c.get_order(ids[0])  # the token, before the measurement
        outcomes = [o async for o in c.wait_for_orders(ids, timeout=0.2, policy=FAST_POLL)]
    polled = {r.query[0][1] for r in fake.order_requests()}
    never = [o for o in outcomes if o.order_id not in polled]
    assert len(outcomes) == len(ids) and len(never) >= 10
    for outcome in never:
        assert isinstance(outcome.error, tg.OrderWaitTimeout)
        assert "never polled" in str(outcome.error) and not outcome.error.polled
    for outcome in outcomes:
        if outcome.order is not None:
            assert "never polled" not in str(outcome.error)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "30 orders" in warnings[0] and "about 5 polls" in warnings[0]


async def test_on_update_may_return_a_plain_value(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-cb", [Step("Pending", 0.0), Step("Complete", 0.03)])
    rows: list[str] = []

    def save(order: tg.Order) -> int:
        rows.append(order.raw_status)
        return len(rows)  # a row id, not an awaitable

    async with fast_client(fake) as client:
        order = await client.wait_for_order(
            "JNUOID-cb", timeout=2.0, policy=FAST_POLL, on_update=save
        )
    assert order.succeeded and rows == ["Pending", "Complete"]


async def _break_keeping_the_stream(stream: tg.OrderStream) -> None:
    async for _outcome in stream:
        break


async def _break_in_async_with(stream: tg.OrderStream) -> None:
    async with stream:
        async for _outcome in stream:
            break


@pytest.mark.parametrize("how", ["kept", "async-with", "dropped"])
async def test_leaving_a_fan_out_frees_the_budget_and_sends_nothing_more(
    fake: FakeTelegent, how: str
) -> None:
    ids = [f"JNUOID-x{index}" for index in range(50)]
    fake.add_order(ids[0], "Complete")
    for order_id in ids[1:]:
        fake.add_order(order_id, "Pending")
    # 10 requests/s: the fan-out's 20 polls in flight hold slots 2 s into the future.
    async with fast_client(fake, requests_per_minute=600) as client:
        await client.get_order(ids[0])  # the token, before the measurement
        stream: tg.OrderStream | None = client.wait_for_orders(ids, timeout=None, policy=FAST_POLL)
        assert stream is not None
        if how == "kept":
            await _break_keeping_the_stream(stream)
        elif how == "async-with":
            await _break_in_async_with(stream)
        else:
            async for _outcome in stream:
                break
            stream = None
        sent = len(fake.order_requests())
        started = time.monotonic()
        await client.get_order(ids[0])
        assert time.monotonic() - started < 0.4, "the next call queued behind phantom slots"
        await asyncio.sleep(0.3)
        assert len(fake.order_requests()) == sent + 1, "polls went on after leaving the loop"
        if stream is not None:
            assert stream.in_flight == 0
