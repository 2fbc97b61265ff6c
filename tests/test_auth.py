"""Scoped tokens from account credentials: fetched once, renewed before expiry, re-fetched once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from helpers import fast_client, spaced, wait_until

import telegent_async as tg
from telegent_async.testing import FakeTelegent

ORDER_SCOPE = "/v1.0/numbers/order"


async def _look_up_all(client: tg.TelegentClient, count: int) -> list[tg.Order]:
    return await asyncio.gather(*(client.get_order(f"JNUOID-{n}") for n in range(count)))


def _statuses(fake: FakeTelegent) -> list[int]:
    return [r.status for r in fake.order_requests()]


@pytest.fixture
async def complete_fake() -> AsyncIterator[FakeTelegent]:
    """A fake that answers every order ID as Complete."""
    async with FakeTelegent(default_status="Complete") as server:
        yield server


async def test_one_token_request_for_200_concurrent_calls(complete_fake: FakeTelegent) -> None:
    async with fast_client(complete_fake) as client:
        orders = await _look_up_all(client, 200)
    assert all(order.succeeded for order in orders)
    assert len(complete_fake.token_requests) == 1
    assert _statuses(complete_fake) == [200] * 200
    assert len({r.token for r in complete_fake.order_requests()}) == 1


async def test_token_is_scoped_to_the_order_endpoint(complete_fake: FakeTelegent) -> None:
    async with fast_client(complete_fake) as client:
        await client.get_order("JNUOID-1")
    (token_request,) = complete_fake.token_requests
    assert token_request.token_scope == ORDER_SCOPE
    assert complete_fake.order_requests()[0].token_scope == ORDER_SCOPE


async def test_revoked_tokens_reauthenticate_exactly_once(complete_fake: FakeTelegent) -> None:
    async with fast_client(complete_fake) as client:
        await client.get_order("JNUOID-warm")
        complete_fake.revoke_tokens()
        orders = await _look_up_all(client, 50)
    assert all(order.succeeded for order in orders)
    assert len(complete_fake.token_requests) == 2  # the first token and one replacement
    statuses = _statuses(complete_fake)
    assert statuses.count(200) == 51
    assert set(statuses) <= {200, 401}
    first, *after = (r.token for r in complete_fake.order_requests() if r.status == 200)
    assert len(set(after)) == 1 and first not in after


async def test_second_401_after_reauth_is_final(complete_fake: FakeTelegent) -> None:
    complete_fake.inject("401", count=2)
    async with fast_client(complete_fake) as client:
        with pytest.raises(tg.AuthenticationError) as caught:
            await client.get_order("JNUOID-1")
    assert caught.value.status_code == 401
    assert len(complete_fake.token_requests) == 2
    assert _statuses(complete_fake) == [401, 401]


async def test_static_token_401_is_final(complete_fake: FakeTelegent) -> None:
    async with fast_client(complete_fake, token="not-a-token-the-fake-issued") as client:
        with pytest.raises(tg.AuthenticationError):
            await client.get_order("JNUOID-1")
    assert complete_fake.token_requests == []
    assert _statuses(complete_fake) == [401]


async def test_wrong_credentials(complete_fake: FakeTelegent) -> None:
    secret = "wrong-secret-5f3a9c"
    async with fast_client(complete_fake, account_secret=secret) as client:
        outcomes = await asyncio.gather(
            *(client.get_order(f"JNUOID-{n}") for n in range(20)), return_exceptions=True
        )
    assert all(isinstance(o, tg.AuthenticationError) for o in outcomes)
    error = outcomes[0]
    assert isinstance(error, tg.AuthenticationError)
    assert "refused (Invalid AccountKey or AccountSecret): check the account key" in error.message
    for text in (str(error), repr(error), repr(error.body), repr(client)):
        assert secret not in text
    # One flight shared by all twenty, and a refusal is final: the same secret would be
    # refused again (asked again on the defaults, it took 15 s to surface).
    assert len(complete_fake.token_requests) == 1
    assert complete_fake.order_requests() == []


@pytest.mark.slow  # real time: past a token lifetime of whole seconds
async def test_token_renewed_before_expiry() -> None:
    async with FakeTelegent(default_status="Complete", token_lifetime=1.5) as fake:
        loop = asyncio.get_running_loop()
        stop = loop.time() + 1.8  # past the fake's 1.5 s lifetime
        async with fast_client(fake) as client:
            while loop.time() < stop:
                await client.get_order("JNUOID-1")
                await asyncio.sleep(0.05)
    assert len(fake.token_requests) >= 2
    assert set(_statuses(fake)) == {200}


@pytest.mark.slow  # real time: past a token lifetime of whole seconds
async def test_token_renewed_while_calls_wait_in_the_budget() -> None:
    """A token that expires while its call queues for the budget is not sent stale."""
    async with FakeTelegent(default_status="Complete", token_lifetime=1.5) as fake:
        client = fast_client(fake, budget=spaced(1500))
        async with client:
            orders = await _look_up_all(client, 45)  # queued 1.8 s, past the lifetime
    assert all(order.succeeded for order in orders)
    assert len(fake.token_requests) >= 2
    assert set(_statuses(fake)) == {200}
    # The renewal jumped the queue: no stall while it waited behind the calls needing it.
    arrivals = [r.at for r in fake.order_requests()]
    assert max(b - a for a, b in itertools.pairwise(arrivals)) < 0.5


@pytest.mark.slow  # real time: past a token lifetime of whole seconds
async def test_token_renewed_while_a_call_waits_for_a_connection() -> None:
    """A token that expires while its call queues for a connection is not sent stale.

    One connection, held 1.3 s by a stalled answer; a second call takes the token (issued
    at 0, renewed at 0.8 s, expired at 1 s) as the stall begins and gets the connection at
    about 1.3 s. Sent as taken, it would be answered 401 (and renewed only then).
    """
    async with FakeTelegent(
        default_status="Complete", token_lifetime=1.0, stall_seconds=1.3
    ) as fake:
        client = fast_client(fake, max_connections=1, timeout=3.0)
        async with client:
            await client.get_order("JNUOID-first")  # the token, issued now
            fake.inject("stall")
            held = asyncio.ensure_future(client.get_order("JNUOID-held"))
            await wait_until(lambda: len(fake.order_requests()) == 2)  # the stall began
            queued = await client.get_order("JNUOID-queued")
            await held
    assert queued.succeeded
    assert [r.status for r in fake.order_requests("JNUOID-queued")] == [200]
    assert len(fake.token_requests) == 2
