"""Cancellation under faults: a cancelled wait stops at once and leaves the client as it was.

Waits are cancelled at seeded random moments while the fake fails, stalls, answers 429 or is
still issuing the token. Afterwards no task of the SDK is left, no connection stays open (and
none beyond max_connections was ever open), and a later call on the same client goes through
promptly: nobody is stuck on the budget or on the token's single flight.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from helpers import FAST_POLL, client_tasks, fast_client, spaced, wait_until

import telegent_async as tg
from telegent_async._watcher import through_cancels
from telegent_async.testing import FakeTelegent, Step

SEED = 7
#: A cancelled wait must end within this many seconds of `task.cancel()`.
PROMPT = 0.2
#: A later call may meet a fault or two of the fake's random ones before it succeeds.
LATER_CALL = 1.5
FAULTS = {"503": 0.1, "500": 0.05, "reset": 0.05, "stall": 0.05, "malformed": 0.02}
MAX_CONNECTIONS = 5
SLOW_ORDER = [Step("Submitted", 0.0), Step("InProgress", 0.2), Step("Complete", 30.0)]


async def cancel_at(task: asyncio.Task[Any], delay: float) -> float:
    """Cancel `task` after `delay` s and return how long it took to end once cancelled."""
    await asyncio.sleep(delay)
    task.cancel()
    cancelled_at = time.monotonic()
    await asyncio.wait([task])
    return time.monotonic() - cancelled_at


class ConnectionGauge:
    """Samples `fake.open_connections` every millisecond inside `async with`; `peak` is the most.

    The fake counts a connection as open until it has read the client's FIN. When the client
    closes a timed-out socket and opens the next one in the same turn of the loop, the server
    may accept the new one before it reads the old one's FIN (psutil shows the client holding
    no more than max_connections sockets at that moment). So a sample above `limit` is taken
    again once the loop has run the callbacks already due: that settled count is what counts.
    """

    def __init__(self, fake: FakeTelegent, limit: int) -> None:
        self._fake = fake
        self._limit = limit
        self._task: asyncio.Task[None] | None = None
        self.peak = 0

    async def _sample(self) -> None:
        while True:
            count = self._fake.open_connections
            if count > self._limit:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                count = self._fake.open_connections
            self.peak = max(self.peak, count)
            await asyncio.sleep(0.001)

    async def __aenter__(self) -> ConnectionGauge:
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait([self._task])


async def assert_client_recovers(
    client: tg.TelegentClient, order_id: str, within: float = PROMPT
) -> None:
    """No SDK task is left and the same client answers a new call promptly (a wait, so that
    a malformed answer from a faulty fake is polled through rather than raised)."""
    assert not client_tasks(), client_tasks()
    started = time.monotonic()
    order = await client.wait_for_order(order_id, timeout=within, policy=FAST_POLL)
    assert order.order_id == order_id
    assert time.monotonic() - started < within


async def close_and_check(client: tg.TelegentClient, fake: FakeTelegent) -> None:
    """Closing the client closes every connection it opened and leaves no task behind."""
    await client.aclose()
    await asyncio.sleep(0)  # the server sees the last FIN on the next turn of the loop
    assert fake.open_connections == 0
    assert not client_tasks(), client_tasks()


def faulty_fake(**overrides: Any) -> FakeTelegent:
    """A fake that fails, stalls and expires tokens every second, so cancels land anywhere."""
    options: dict[str, Any] = {
        "fault_rate": FAULTS,
        "stall_seconds": 0.5,
        "seed": SEED,
        "token_lifetime": 1.0,
        "default_status": "Complete",
    }
    options.update(overrides)
    return FakeTelegent(**options)


async def cancel_many(
    make: Callable[[int], Coroutine[Any, Any, object]], count: int, rng: random.Random
) -> list[float]:
    """Start `count` coroutines and cancel each at a seeded moment within 0.4 s."""
    tasks = [asyncio.ensure_future(make(index)) for index in range(count)]
    lags = await asyncio.gather(*(cancel_at(task, rng.uniform(0.0, 0.4)) for task in tasks))
    for task in tasks:
        assert task.cancelled(), task
    return lags


# -- waits cancelled at random moments, under faults ------------------------------------------


@pytest.mark.slow  # chaos: random faults, cancels at random moments over 0.4 s
async def test_wait_for_order_cancelled_at_random_moments() -> None:
    async with faulty_fake() as fake:
        for index in range(40):
            fake.add_order(f"JNUOID-w{index}", SLOW_ORDER)
        client = fast_client(fake, timeout=0.2, max_connections=MAX_CONNECTIONS, max_retries=20)
        async with client:

            def wait(index: int) -> Coroutine[Any, Any, object]:
                return client.wait_for_order(f"JNUOID-w{index}", policy=FAST_POLL, timeout=10)

            async with ConnectionGauge(fake, MAX_CONNECTIONS) as gauge:
                lags = await cancel_many(wait, 40, random.Random(SEED))
            assert max(lags) < PROMPT, sorted(lags)[-3:]
            assert 0 < gauge.peak <= MAX_CONNECTIONS
            assert fake.status_counts.get(0), "no stall or reset happened during the waits"
            await assert_client_recovers(client, "JNUOID-after", LATER_CALL)
        await close_and_check(client, fake)


@pytest.mark.slow  # chaos: random faults, cancels at random moments over 0.4 s
async def test_wait_for_orders_cancelled_at_random_moments() -> None:
    ids = [f"JNUOID-s{index}" for index in range(60)]
    async with faulty_fake() as fake:
        for order_id in ids:
            fake.add_order(order_id, SLOW_ORDER)
        client = fast_client(fake, timeout=0.2, max_connections=MAX_CONNECTIONS, max_retries=20)
        async with client:
            streams: list[tg.OrderStream] = []

            async def consume(_index: int) -> None:
                stream = client.wait_for_orders(ids, policy=FAST_POLL, timeout=10)
                streams.append(stream)
                async for outcome in stream:
                    raise AssertionError(f"nothing settles during the test: {outcome}")

            async with ConnectionGauge(fake, MAX_CONNECTIONS) as gauge:
                lags = await cancel_many(consume, 8, random.Random(SEED + 1))
            assert max(lags) < PROMPT, sorted(lags)[-3:]
            assert 0 < gauge.peak <= MAX_CONNECTIONS
            assert all(stream.in_flight == 0 for stream in streams)
            await assert_client_recovers(client, "JNUOID-after", LATER_CALL)
        await close_and_check(client, fake)


async def test_leaving_wait_for_orders_early_stops_polling() -> None:
    ids = [f"JNUOID-e{index}" for index in range(50)]
    async with faulty_fake(fault_rate={"503": 0.2}) as fake:
        fake.add_order(ids[0], "Complete")
        for order_id in ids[1:]:
            fake.add_order(order_id, SLOW_ORDER)
        async with fast_client(fake, max_connections=MAX_CONNECTIONS, max_retries=20) as client:
            async with client.wait_for_orders(ids, policy=FAST_POLL, timeout=10) as stream:
                async for outcome in stream:
                    assert outcome.order_id == ids[0]
                    break
            assert stream.in_flight == 0
            sent = fake.request_count
            await asyncio.sleep(0.1)
            assert fake.request_count == sent, "polls went on after leaving the loop"
            await assert_client_recovers(client, ids[0], LATER_CALL)
        await close_and_check(client, fake)


# -- cancelled at chosen moments -----------------------------------------------------------------


async def test_cancel_during_a_stall_returns_at_once_and_frees_the_connection() -> None:
    async with FakeTelegent(stall_seconds=5.0, default_status="Complete") as fake:
        client = fast_client(fake, timeout=5.0, max_connections=1)
        async with client:
            fake.inject("stall")
            task = asyncio.ensure_future(client.wait_for_order("JNUOID-stall", timeout=10))
            await wait_until(lambda: any(r.fault == "stall" for r in fake.requests), interval=0)
            assert fake.open_connections == 1
            assert await cancel_at(task, 0.0) < PROMPT
            # max_connections=1: the later call needs the slot the stalled attempt held.
            await assert_client_recovers(client, "JNUOID-stall")
        await close_and_check(client, fake)


def block_the_loop(seconds: float) -> None:
    """A callback that hogs the loop, as a busy process does: timers due meanwhile fire in one
    batch afterwards, in order, before any task resumes."""
    time.sleep(seconds)


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10 cannot count cancel requests (no Task.cancelling): a cancel landing in "
    "the same loop turn as an attempt timeout is lost there, as with asyncio.wait_for",
)
async def test_cancel_landing_with_the_attempt_timeout_is_not_lost() -> None:
    """The attempt timeout and task.cancel() fire in the same turn of the loop: the wait must
    end cancelled, not take the cancel for its own timeout and poll on.

    The loop is held busy across both moments, so that the timeout's timer and the cancel run
    back to back, timeout first. Without the hog this happens by chance under load.
    """
    attempt_timeout = 0.05
    async with FakeTelegent(stall_seconds=5.0, default_status="Complete") as fake:
        async with fast_client(fake, timeout=attempt_timeout) as client:
            await client.get_order("JNUOID-warm")  # token and connection ready
            loop = asyncio.get_running_loop()

            def stalls_beyond(count: int) -> Callable[[], bool]:
                return lambda: fake.status_counts.get(0, 0) > count

            for trial in range(5):
                fake.inject("stall")
                task = asyncio.ensure_future(
                    client.wait_for_order(f"JNUOID-race{trial}", timeout=10, policy=FAST_POLL)
                )
                await wait_until(stalls_beyond(trial), interval=0)
                # The attempt started a little before the server saw it: its timer is due
                # within a few ms before `expires`. Cancel just after, hog the loop across both.
                expires = loop.time() + attempt_timeout
                loop.call_at(expires - 0.015, block_the_loop, 0.03)
                loop.call_at(expires + 0.003, task.cancel)
                await asyncio.wait([task], timeout=2.0)
                assert task.cancelled(), f"trial {trial}: the cancel was lost: {task}"
            assert not client_tasks(), client_tasks()
        await close_and_check(client, fake)


async def test_cancel_before_the_token_arrives_leaves_no_stuck_flight() -> None:
    async with FakeTelegent(default_status="Complete") as fake:
        client = fast_client(fake)  # credentials: the first calls all wait for one token
        async with client:
            tasks = [asyncio.ensure_future(client.get_order(f"JNUOID-t{i}")) for i in range(30)]
            await wait_until(lambda: bool(fake.token_requests), interval=0)
            for task in tasks:
                task.cancel()
            done, pending = await asyncio.wait(tasks, timeout=PROMPT)
            assert not pending and all(task.cancelled() for task in done)
            assert len(fake.token_requests) == 1, "one token request for 30 callers"
            assert not fake.order_requests(), "a cancelled caller still sent its request"
            await assert_client_recovers(client, "JNUOID-after")
            assert len(fake.token_requests) <= 2
        await close_and_check(client, fake)


async def test_token_flight_survives_the_cancellation_of_its_first_callers() -> None:
    """The caller that started the token request may give up; the others still get it."""
    async with FakeTelegent(default_status="Complete") as fake:
        async with fast_client(fake) as client:
            tasks = [asyncio.ensure_future(client.get_order(f"JNUOID-f{i}")) for i in range(10)]
            await wait_until(lambda: bool(fake.token_requests), interval=0)
            for task in tasks[:9]:
                task.cancel()
            order = await asyncio.wait_for(tasks[9], PROMPT)
            assert order.order_id == "JNUOID-f9"
            assert len(fake.token_requests) == 1
            assert [r.query for r in fake.order_requests()] == [(("OrderId", "JNUOID-f9"),)]
        await close_and_check(client, fake)


# -- cancelled while the budget holds the caller -----------------------------------------------


async def test_cancel_during_a_long_retry_after_pause_returns_at_once() -> None:
    async with FakeTelegent(default_status="Complete") as fake:
        client = fast_client(fake, max_connections=MAX_CONNECTIONS)
        async with client:
            fake.inject("429", 10, retry_after="5")
            waits = [
                asyncio.ensure_future(client.wait_for_order(f"JNUOID-p{i}", timeout=30))
                for i in range(10)
            ]
            # As many as there are connections are sent; the callers waiting for a connection
            # are held by the pause too.
            await wait_until(lambda: fake.status_counts.get(429) == MAX_CONNECTIONS, interval=0)
            loop = asyncio.get_running_loop()
            await wait_until(lambda: client.budget.paused_until > loop.time() + 4)
            assert not any(task.done() for task in waits)
            lags = await asyncio.gather(*(cancel_at(task, 0.0) for task in waits))
            assert max(lags) < PROMPT
            assert not client_tasks(), client_tasks()
            assert fake.request_count == 1 + MAX_CONNECTIONS  # the token, then 429s
        started = time.monotonic()
        await close_and_check(client, fake)
        assert time.monotonic() - started < PROMPT


async def test_callers_cancelled_in_a_retry_after_pause_do_not_delay_later_ones() -> None:
    async with FakeTelegent(default_status="Complete") as fake:
        async with fast_client(fake) as client:
            await client.get_order("JNUOID-warm")  # the token is cached: only the pause counts
            fake.inject("429", retry_after="0.15")  # outlasts the 0.05 s the waiters queue
            first = asyncio.ensure_future(client.get_order("JNUOID-429"))
            loop = asyncio.get_running_loop()
            await wait_until(lambda: client.budget.paused_until > loop.time(), interval=0)
            pause_ends = client.budget.paused_until
            waiters = [asyncio.ensure_future(client.get_order(f"JNUOID-q{i}")) for i in range(50)]
            await asyncio.sleep(0.05)
            for task in [first, *waiters]:
                task.cancel()
            await asyncio.wait([first, *waiters])
            await client.get_order("JNUOID-later")
            late = loop.time() - pause_ends
            assert late < PROMPT, f"the later call ended {late:.2f} s after the pause"
        await close_and_check(client, fake)


async def test_callers_cancelled_while_paced_give_their_slots_back() -> None:
    """A budget of 10 requests per second: 50 queued callers reserve 5 s of slots. Once they
    are cancelled, a new caller must not wait behind slots that nobody will use."""
    async with FakeTelegent(default_status="Complete") as fake:
        client = fast_client(fake, budget=spaced(600.0))
        async with client:
            await client.get_order("JNUOID-warm")  # the token is cached: only slots count
            queued = [asyncio.ensure_future(client.get_order(f"JNUOID-b{i}")) for i in range(50)]
            await asyncio.sleep(0.05)
            for task in queued:
                task.cancel()
            await asyncio.wait(queued)
            sent = len(fake.order_requests())
            assert sent <= 3, f"{sent} requests in 50 ms at 10 per second"
            # The slot after the last one used is at most 0.1 s away.
            await assert_client_recovers(client, "JNUOID-after", 0.1 + PROMPT)
        await close_and_check(client, fake)


async def test_attempt_timeout_during_cleanup_after_a_cancel_is_a_timeout() -> None:
    """A task that caught its own cancellation and cleans up with a lookup: an attempt timeout
    there is a timeout (retried), not a second, spurious CancelledError."""
    async with (
        FakeTelegent(default_status="Complete", stall_seconds=3.0) as fake,
        fast_client(fake, timeout=0.2, max_retries=1) as client,
    ):
        await client.get_order("JNUOID-warm")
        fake.inject("stall")

        async def cancelled_then_cleans_up() -> tg.Order:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return await client.get_order("JNUOID-cleanup")  # stalls once, then retried
            raise AssertionError("not cancelled")

        task = asyncio.ensure_future(cancelled_then_cleans_up())
        await asyncio.sleep(0)  # one turn: the task is in its sleep
        task.cancel()
        order = await asyncio.wait_for(task, 2.0)
    assert order.succeeded
    assert [r.status for r in fake.order_requests("JNUOID-cleanup")] == [0, 200]


# -- a watcher's close through further cancels (`through_cancels`) --------------------------


async def test_a_close_not_cancelled_waits_for_its_stop_however_long_it_takes() -> None:
    """The grace counts from a cancel: a stop slower than it (a store waiting out a lock) is
    waited for to its end, not cut."""
    stopping = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.15, stopping.set_result, None)
    await through_cancels(stopping, grace=0.05)
    assert stopping.done() and not stopping.cancelled()


async def test_a_close_cancelled_twice_finishes_its_stop_then_passes_the_cancel_on() -> None:
    stopping = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.1, stopping.set_result, None)
    closing = asyncio.ensure_future(through_cancels(stopping, grace=5.0))
    for _ in range(2):  # `watch run` cancels again every 0.5 s; two, one turn apart, here
        await asyncio.sleep(0)
        closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert stopping.done() and not stopping.cancelled()  # the stop ran to its end


async def test_a_close_cancelled_gives_its_stop_up_after_the_grace() -> None:
    stopping = asyncio.get_running_loop().create_future()  # a stop that never ends
    closing = asyncio.ensure_future(through_cancels(stopping, grace=0.05))
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(closing, 2.0)
    assert stopping.cancelled()
