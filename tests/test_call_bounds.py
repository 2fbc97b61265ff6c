"""Per-call `timeout=` and `max_retries=`: what a web request handler needs to bound its wait.

`timeout` is one deadline for the whole call: token and budget waits, every attempt and every
backoff sleep. Over real sockets against FakeTelegent, with intervals of tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import fast_client, wait_until

import telegent_async as tg
from telegent_async.testing import FakeTelegent

ORDER = "JNUOID-bounds"
PORT_IN = "JNOID-bounds"
#: A backoff too long for the deadlines below (no jitter: the delay is exactly 1 s).
SLOW_RETRY = tg.PollPolicy(initial=1.0, factor=2.0, max_interval=1.0, jitter=0.0)

Call = Callable[..., Awaitable[Any]]


def _calls(client: tg.TelegentClient) -> dict[str, Call]:
    return {
        "get_order": lambda **kw: client.get_order(ORDER, **kw),
        "update_port_in": lambda **kw: client.update_port_in(
            PORT_IN, current_account_number="A-1", **kw
        ),
        "cancel_port_in": lambda **kw: client.cancel_port_in(PORT_IN, **kw),
    }


@pytest.fixture
def orders(fake: FakeTelegent) -> FakeTelegent:
    fake.add_order(ORDER, "Complete")
    fake.add_order(PORT_IN, "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    # An updated port-in stays Submitted (pending), so every later update is answered alike,
    # however long a loaded machine takes between the tries.
    fake.port_in_delay = 3600.0
    return fake


@pytest.mark.parametrize("call", ["get_order", "update_port_in", "cancel_port_in"])
@pytest.mark.parametrize(
    ("bounds", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": True}, TypeError),
        ({"timeout": "5"}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": False}, TypeError),
    ],
)
async def test_bad_bounds_are_refused_before_any_request(
    orders: FakeTelegent, call: str, bounds: dict[str, Any], error: type[Exception]
) -> None:
    async with fast_client(orders) as client:
        with pytest.raises(error, match=next(iter(bounds))):
            await _calls(client)[call](**bounds)
    assert orders.requests == []  # not even a token request


@pytest.mark.parametrize("call", ["get_order", "update_port_in", "cancel_port_in"])
async def test_max_retries_overrides_the_clients_either_way(
    orders: FakeTelegent, call: str
) -> None:
    async with fast_client(orders, max_retries=5) as client:
        orders.inject("503", count=2)  # the client's 5 retries would get past these
        with pytest.raises(tg.ServiceUnavailableError):
            await _calls(client)[call](max_retries=1)
        assert orders.status_counts[503] == 2
    async with fast_client(orders, max_retries=0) as client:
        orders.inject("503", count=2)
        await _calls(client)[call](max_retries=2)  # a client with no retries, this call has 2


async def test_a_retry_that_cannot_start_in_time_raises_the_real_failure_at_once(
    orders: FakeTelegent,
) -> None:
    orders.inject("503", count=10)
    async with fast_client(orders, retry_policy=SLOW_RETRY) as client:
        started = time.monotonic()
        with pytest.raises(tg.ServiceUnavailableError):
            await client.get_order(ORDER, timeout=0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 0.45  # no sleeping towards a deadline the retry could not meet
    assert len(orders.order_requests(ORDER)) == 1


@pytest.mark.parametrize("call", ["get_order", "update_port_in", "cancel_port_in"])
async def test_timeout_cuts_a_stalled_attempt_shorter_than_the_clients(
    orders: FakeTelegent, call: str
) -> None:
    orders.inject("stall", count=10)
    async with fast_client(orders, timeout=30.0) as client:
        started = time.monotonic()
        with pytest.raises(tg.TransportTimeoutError) as caught:
            await _calls(client)[call](timeout=0.1)
        elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 1.0  # not the client's 30 s
    assert caught.value.http_status == 504


async def test_timeout_covers_retries_and_backoff_in_total(orders: FakeTelegent) -> None:
    """Attempts of 0.15 s that each stall, retried 5 times, would take 0.9 s and more."""
    orders.inject("stall", count=20)
    async with fast_client(orders, timeout=0.15, max_retries=5) as client:
        started = time.monotonic()
        with pytest.raises(tg.TransportTimeoutError):
            await client.get_order(ORDER, timeout=0.35)
        elapsed = time.monotonic() - started
    assert 0.34 <= elapsed < 0.8
    assert 2 <= len(orders.order_requests(ORDER)) <= 3


async def test_timeout_bounds_the_wait_for_the_budget(orders: FakeTelegent) -> None:
    """A 429 pauses the whole client for 5 s: a call with 0.1 s to live gives up, unsent."""
    orders.inject("429", retry_after="5")
    async with fast_client(orders) as client:
        with pytest.raises(tg.RateLimitError):
            await client.get_order(ORDER, max_retries=0)
        sent = len(orders.order_requests(ORDER))
        started = time.monotonic()
        with pytest.raises(tg.TransportTimeoutError) as caught:
            await client.get_order(ORDER, timeout=0.1)
        elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 1.0  # not the 5 s pause
    assert len(orders.order_requests(ORDER)) == sent  # nothing went out past the pause
    assert caught.value.http_status == 504


async def test_without_bounds_the_clients_settings_apply(orders: FakeTelegent) -> None:
    orders.inject("503", count=3)
    async with fast_client(orders, max_retries=3) as client:
        assert (await client.get_order(ORDER)).succeeded
    assert orders.status_counts[503] == 3


async def test_timeout_bounds_the_wait_for_a_pooled_connection(orders: FakeTelegent) -> None:
    """One connection, held by a stalled lookup: a call with 0.1 s to live does not wait for
    it to come back."""
    async with fast_client(orders, max_connections=1, timeout=5.0) as client:
        await client.get_order(ORDER)  # the token first
        orders.inject("stall")
        holder = asyncio.create_task(client.get_order(ORDER, max_retries=0))
        await wait_until(lambda: client.stats.in_flight == 1)
        started = time.monotonic()
        with pytest.raises(tg.TransportTimeoutError):
            await client.get_order(ORDER, timeout=0.1)
        elapsed = time.monotonic() - started
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
    assert 0.09 <= elapsed < 1.0  # not the 5 s stall
