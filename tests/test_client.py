"""The client over real sockets: retries, Retry-After, budget, lifecycle, and what never leaks."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import cast

import aiohttp
import pytest
from helpers import fast_client, spaced, wait_until

import telegent_async as tg
from telegent_async.testing import FakeTelegent, FaultKind

ORDER_ID = "JNUOID-client"
RETRIED = [408, 429, 500, 502, 503, 504]
NOT_RETRIED = [400, 403, 404, 405]


@pytest.fixture
async def complete_fake() -> AsyncIterator[FakeTelegent]:
    """A fake that answers every order ID as Complete."""
    async with FakeTelegent(default_status="Complete") as server:
        yield server


def _answer_always(fake: FakeTelegent, status: int) -> None:
    """Every lookup of ORDER_ID gets `status` with a JSON error body."""
    fake.set_response(ORDER_ID, status=status, body=json.dumps({"Message": f"always {status}"}))


def _arrivals(fake: FakeTelegent) -> list[float]:
    return [r.at for r in fake.order_requests()]


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 3])
@pytest.mark.parametrize("status", RETRIED)
async def test_transient_status_retried_max_retries_times(
    fake: FakeTelegent, status: int, max_retries: int
) -> None:
    _answer_always(fake, status)
    async with fast_client(fake, max_retries=max_retries) as client:
        with pytest.raises(tg.APIStatusError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.status_code == status
    assert caught.value.message == f"always {status}"
    assert len(fake.order_requests(ORDER_ID)) == max_retries + 1


@pytest.mark.parametrize("status", NOT_RETRIED)
async def test_permanent_status_never_retried(fake: FakeTelegent, status: int) -> None:
    _answer_always(fake, status)
    async with fast_client(fake, max_retries=3) as client:
        with pytest.raises(tg.APIStatusError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.status_code == status
    assert len(fake.order_requests(ORDER_ID)) == 1


@pytest.mark.parametrize("status", RETRIED)
async def test_transient_status_then_success(fake: FakeTelegent, status: int) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject(cast(FaultKind, str(status)), count=2, retry_after="0")
    async with fast_client(fake, max_retries=2) as client:
        assert (await client.get_order(ORDER_ID)).succeeded
    assert [r.status for r in fake.order_requests()] == [status, status, 200]


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_connection_resets_retried_then_transport_error(
    fake: FakeTelegent, max_retries: int
) -> None:
    # aiohttp resends a GET once by itself after a reset, so each attempt costs two resets.
    fake.inject("reset", count=2 * (max_retries + 1))
    async with fast_client(fake, max_retries=max_retries) as client:
        with pytest.raises(tg.TransportError):
            await client.get_order(ORDER_ID)
    assert [r.status for r in fake.order_requests()] == [0] * 2 * (max_retries + 1)


async def test_connection_reset_then_success(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject("reset", count=2)
    async with fast_client(fake, max_retries=1) as client:
        assert (await client.get_order(ORDER_ID)).succeeded
    assert [r.status for r in fake.order_requests()] == [0, 0, 200]


async def test_each_attempt_times_out_on_its_own_deadline() -> None:
    """One timer serves every attempt: each stalled one ends at its own deadline, not later,
    and a quick attempt that starts meanwhile is not cut short."""
    async with FakeTelegent(default_status="Complete", stall_seconds=2.0) as fake:
        fake.inject("stall", count=2)
        async with fast_client(fake, timeout=0.2, max_retries=0) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def stalled(delay: float) -> float:
                await asyncio.sleep(delay)
                with pytest.raises(tg.TransportError, match="timed out"):
                    await client.get_order(ORDER_ID)
                return loop.time() - started

            first, second = await asyncio.gather(stalled(0.0), stalled(0.1))
            assert 0.19 <= first < 0.28  # 0.2 s after it began
            assert 0.29 <= second < 0.38  # 0.2 s after it began, 0.1 s later
            assert (await client.get_order(ORDER_ID)).succeeded


async def test_stalls_time_out_retried_then_transport_error() -> None:
    async with FakeTelegent(default_status="Complete", stall_seconds=2.0) as fake:
        fake.inject("stall", count=3)
        async with fast_client(fake, timeout=0.1, max_retries=2) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(tg.TransportError, match="timed out"):
                await client.get_order(ORDER_ID)
            assert loop.time() - started < 1.0  # three 0.1 s attempts, not the 2 s stall
            fake.inject("stall")
            assert (await client.get_order(ORDER_ID)).succeeded  # a stall, then a retry
        assert len(fake.order_requests()) == 5


# -- Retry-After and the client-wide pause ------------------------------------------------------


async def test_retry_after_honoured(complete_fake: FakeTelegent) -> None:
    complete_fake.inject("429", retry_after="0.1")  # 20 times FAST_RETRY's first delay
    async with fast_client(complete_fake) as client:
        assert (await client.get_order(ORDER_ID)).succeeded
    (gap,) = _gaps(_arrivals(complete_fake))
    assert 0.1 <= gap < 0.1 + 0.25


async def test_429_pauses_the_whole_client(complete_fake: FakeTelegent) -> None:
    complete_fake.inject("429", retry_after="0.1")
    async with fast_client(complete_fake) as client:
        first = asyncio.ensure_future(client.get_order("JNUOID-first"))
        await wait_until(lambda: client.budget.paused_until > 0)  # the 429 has reached the client
        await client.get_order("JNUOID-other")  # another caller, which never saw the 429
        await first
    limited_at = complete_fake.order_requests("JNUOID-first")[0].at
    other_at = complete_fake.order_requests("JNUOID-other")[0].at
    assert other_at - limited_at >= 0.1


async def test_max_retry_after_caps_the_wait(complete_fake: FakeTelegent) -> None:
    complete_fake.inject("429", retry_after="30")
    async with fast_client(complete_fake, max_retry_after=0.1) as client:
        assert (await client.get_order(ORDER_ID)).succeeded
    (gap,) = _gaps(_arrivals(complete_fake))
    assert 0.1 <= gap < 0.1 + 0.25


async def test_rate_limit_error_carries_retry_after(fake: FakeTelegent) -> None:
    fake.set_response(ORDER_ID, status=429, body="{}", headers={"Retry-After": "0.05"})
    async with fast_client(fake, max_retries=1) as client:
        with pytest.raises(tg.RateLimitError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.retry_after == 0.05
    assert len(fake.order_requests()) == 2


# -- the budget ------------------------------------------------------------------------------------


@pytest.mark.slow  # real time: the budget paced over most of a second
async def test_budget_cancelled_waiters_give_their_slots_back() -> None:
    """Whatever order the queue's tail is cancelled in, a newcomer takes the first freed start;
    a hole in the middle of the queue stays (the callers behind it keep their starts)."""
    budget = spaced(600)  # one request per 0.1 s window
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiters = [asyncio.ensure_future(budget.acquire()) for _ in range(10)]
    await asyncio.sleep(0)  # every waiter has its start: started + 0.0, 0.1, ... 0.9
    for index in (7, 9, 3, 5, 8, 6):
        waiters[index].cancel()
    await asyncio.wait(waiters[3:])
    await budget.acquire()
    assert 0.45 <= loop.time() - started < 0.65  # start 5, not 1.0; start 3 stayed a hole
    assert all(waiter.done() and not waiter.cancelled() for waiter in waiters[:3])
    await asyncio.gather(waiters[4])


@pytest.mark.slow  # real time: the budget paced over most of a second
async def test_budget_is_taken_before_a_connection() -> None:
    """200 calls on 2 connections take far longer than one attempt's timeout, yet none fail."""
    async with FakeTelegent(default_status="Complete", stall_seconds=0.005) as fake:
        fake.inject("stall", count=200)  # every answer takes 5 ms
        async with fast_client(fake, max_connections=2, timeout=0.1, max_retries=0) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            orders = await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(200)))
            elapsed = loop.time() - started
    assert all(order.succeeded for order in orders)
    assert elapsed > 0.1 * 2  # the test means something: queueing outlasted a timeout
    assert fake.peak_connections <= 2


# -- order IDs on the wire -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "order_id",
    ["x&OrderId=y", "a#b", "a/../b", "a+b", "%41", "a b", "?x=1", "a=b;c", "é€-ID"],
)
async def test_order_id_sent_as_one_exact_query_value(
    complete_fake: FakeTelegent, order_id: str
) -> None:
    async with fast_client(complete_fake) as client:
        order = await client.get_order(order_id)
    assert order.order_id == order_id
    (request,) = complete_fake.order_requests()
    assert request.path == "/v1.0/numbers/order"
    assert request.query == (("OrderId", order_id),)


# -- many orders ---------------------------------------------------------------------------------


async def test_get_orders_keeps_input_order_and_asks_each_id_once(fake: FakeTelegent) -> None:
    for name, status in (("A", "Complete"), ("B", "Error"), ("C", "Pending")):
        fake.add_order(f"JNUOID-{name}", status)
    ids = ["JNUOID-B", "JNUOID-A", "JNUOID-missing", "JNUOID-A", "JNUOID-C", "JNUOID-B"]
    async with fast_client(fake) as client:
        outcomes = await client.get_orders(ids)
        assert await client.get_orders([]) == []
    assert [outcome.order_id for outcome in outcomes] == ids
    by_id = {outcome.order_id: outcome for outcome in outcomes}
    assert by_id["JNUOID-A"].ok and by_id["JNUOID-A"].order is not None
    assert not by_id["JNUOID-B"].ok and by_id["JNUOID-B"].error is None
    missing = by_id["JNUOID-missing"]
    assert missing.order is None and isinstance(missing.error, tg.NotFoundError)
    assert outcomes[1] is outcomes[3]  # duplicates share the one lookup
    for order_id in set(ids):
        assert len(fake.order_requests(order_id)) == 1


# -- lifecycle -----------------------------------------------------------------------------------


async def test_own_session_closed_on_exit(complete_fake: FakeTelegent) -> None:
    client = fast_client(complete_fake)
    async with client:
        await client.get_order(ORDER_ID)
        assert complete_fake.open_connections > 0
    await wait_until(lambda: complete_fake.open_connections == 0)
    await client.aclose()  # idempotent


async def test_given_session_is_not_closed(complete_fake: FakeTelegent) -> None:
    async with aiohttp.ClientSession() as session:
        async with fast_client(complete_fake, session=session) as client:
            assert (await client.get_order(ORDER_ID)).succeeded
        assert not session.closed
        async with session.get(f"{complete_fake.base_url}/elsewhere") as response:
            assert response.status == 404  # still usable by its owner
    assert len(complete_fake.order_requests()) == 1


async def test_given_session_raising_for_status_still_gets_typed_errors(
    fake: FakeTelegent,
) -> None:
    """A caller's session with raise_for_status=True must not turn a 404 into retried
    transport errors: the client classifies statuses itself."""
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        fast_client(fake, session=session) as client,
    ):
        with pytest.raises(tg.NotFoundError):
            await client.get_order("JNUOID-unknown")
    assert len(fake.order_requests()) == 1


async def test_closing_the_client_keeps_deadlines_of_attempts_under_way() -> None:
    """With a caller's session (not closed by us), an attempt still running when the client
    closes keeps its deadline: it must not hang on a stalled server."""
    async with FakeTelegent(default_status="Complete", stall_seconds=3.0) as fake:
        fake.inject("stall")
        async with aiohttp.ClientSession() as session:
            async with fast_client(fake, session=session, timeout=0.2, max_retries=0) as client:
                call = asyncio.ensure_future(client.get_order(ORDER_ID))
                await wait_until(lambda: len(fake.order_requests()) == 1)  # stalled
            with pytest.raises(tg.TransportError, match="timed out"):
                await asyncio.wait_for(call, 1.0)


async def test_closed_client_refuses_work(complete_fake: FakeTelegent) -> None:
    async with fast_client(complete_fake) as client:
        await client.get_order(ORDER_ID)
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_order(ORDER_ID)
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_orders([ORDER_ID])
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    assert len(complete_fake.order_requests()) == 1


# -- environment ---------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("TOKEN", "ACCOUNT_KEY", "ACCOUNT_SECRET", "BASE_URL"):
        monkeypatch.delenv(f"TELEGENT_{name}", raising=False)
    yield monkeypatch


async def test_environment_fallbacks(complete_fake: FakeTelegent, env: pytest.MonkeyPatch) -> None:
    env.setenv("TELEGENT_BASE_URL", complete_fake.base_url)
    env.setenv("TELEGENT_ACCOUNT_KEY", complete_fake.account_key)
    env.setenv("TELEGENT_ACCOUNT_SECRET", complete_fake.account_secret)
    async with tg.TelegentClient(allow_insecure=True, requests_per_minute=None) as client:
        assert repr(client).endswith("auth=credentials>")
        await client.get_order(ORDER_ID)
    assert len(complete_fake.token_requests) == 1
    token = complete_fake.order_requests()[-1].token
    assert token is not None

    env.setenv("TELEGENT_TOKEN", token)  # a token wins over account variables...
    async with tg.TelegentClient(allow_insecure=True, requests_per_minute=None) as client:
        assert repr(client).endswith("auth=token>")
        await client.get_order(ORDER_ID)
    assert len(complete_fake.token_requests) == 1

    env.setenv("TELEGENT_BASE_URL", "https://api.invalid/v1.0")  # ...and arguments win over both
    async with tg.TelegentClient(
        account_key=complete_fake.account_key,
        account_secret=complete_fake.account_secret,
        base_url=complete_fake.base_url,
        allow_insecure=True,
        requests_per_minute=None,
    ) as client:
        await client.get_order(ORDER_ID)
    assert len(complete_fake.token_requests) == 2
    assert all(r.status == 200 for r in complete_fake.order_requests())
