"""Creating is never doubled: after each kind of fault, the create requests that reached the
fake and the orders it made are counted (real sockets, real resets, real stalls).

Expected, from DESIGN.md "Creating is never doubled": sent again only when the request cannot
have been acted on (the connection was never made, 429, 503); after a reset once the request
was read, a timeout, 500, 502 or 504: `SubmitOutcomeUnknownError`, one request, one order
(the fake made it before the fault, the worst case), and a message saying how to find out.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import fast_client, wait_until

import telegent_async as tg
from telegent_async.testing import (
    FAST_RETRY,
    PORTIN_SUBMIT_PATH,
    PORTOUT_PATH,
    PROVISION_PATH,
    STATUS_PATH,
    FakeTelegent,
)

NUMBER = "+12815551234"
ADDRESS = tg.BillingAddress(street1="1 Main St", city="Houston", state="TX", zip="77002")

Create = Callable[[tg.TelegentClient], Awaitable[tg.SubmittedOrder]]

CREATES: dict[str, tuple[str, Create]] = {
    "submit_port_in": (
        PORTIN_SUBMIT_PATH,
        lambda c: c.submit_port_in(
            NUMBER,
            current_carrier_name="Verizon",
            current_account_number="ACCT-1",
            current_account_password="pw-secret-1",
            current_billing_address=ADDRESS,
        ),
    ),
    "provision_number": (
        PROVISION_PATH,
        lambda c: c.provision_number(
            number_type="mvno", message_type="a2p", voice_enabled=True, product_type="Sms-Only"
        ),
    ),
    "port_out": (PORTOUT_PATH, lambda c: c.port_out(NUMBER, pin="1234")),
    "change_number_status": (
        STATUS_PATH,
        lambda c: c.change_number_status("park", [NUMBER]),
    ),
}

#: fault -> (create requests the fake saw, orders it made, the call's outcome)
EXPECTED: dict[str, tuple[int, int, type[Exception] | None]] = {
    "reset after read": (1, 1, tg.SubmitOutcomeUnknownError),
    "timeout": (1, 1, tg.SubmitOutcomeUnknownError),
    "429": (2, 1, None),
    "500": (1, 1, tg.SubmitOutcomeUnknownError),
    "502": (1, 1, tg.SubmitOutcomeUnknownError),
    "503": (2, 1, None),
    "504": (1, 1, tg.SubmitOutcomeUnknownError),
}
FAULTS: dict[str, Any] = {"reset after read": "reset", "timeout": "stall"}


@pytest.mark.parametrize("fault", list(EXPECTED))
@pytest.mark.parametrize("call", list(CREATES))
async def test_after_each_fault_a_create_reaches_the_fake_the_expected_times(
    call: str, fault: str
) -> None:
    path, create = CREATES[call]
    requests, orders, outcome = EXPECTED[fault]
    async with FakeTelegent(stall_seconds=2.0, retry_after="0") as fake:
        fake.port_in_delay = 60.0  # a port-in made stays active while the test looks at it
        fake.inject(FAULTS.get(fault, fault), path=path)
        async with fast_client(fake, timeout=0.3) as client:
            if outcome is None:
                await create(client)
            else:
                with pytest.raises(outcome) as caught:
                    await create(client)
                error = caught.value
                assert isinstance(error, tg.SubmitOutcomeUnknownError)
                assert error.call == call and "To find out" in str(error)
                if call == "submit_port_in":
                    assert f"check_port_in_eligibility('{NUMBER}')" in str(error)
                    # ... and the eligibility check does show the port-in made.
                    elig = await client.check_port_in_eligibility(
                        NUMBER, target_classification="mvno"
                    )
                    assert not elig.eligible and fake.created()[0] in (elig.message or "")
        assert len(fake.create_requests(path)) == requests
        assert len(fake.created(path)) == orders


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("call", list(CREATES))
async def test_a_connection_never_made_is_sent_again(call: str) -> None:
    # The fake is not listening yet: the first attempts are refused before any byte is sent
    # (a real ECONNREFUSED), so the create is sent again once it listens.
    path, create = CREATES[call]
    port = _free_port()
    fake = FakeTelegent(port=port)
    token = fake.issue_token(path)
    client = tg.TelegentClient(
        token=token,
        base_url=f"http://127.0.0.1:{port}/v1.0",
        allow_insecure=True,
        retry_policy=FAST_RETRY,
        max_retries=100,
        requests_per_minute=None,
    )
    async with client:
        task = asyncio.ensure_future(create(client))
        try:
            await wait_until(lambda: client.stats.responses.get("no answer", 0) >= 1)
            await fake.start()
            submitted = await asyncio.wait_for(task, 5.0)
        finally:
            task.cancel()
            await fake.close()
    assert client.stats.retries.get("connection", 0) >= 1
    assert len(fake.create_requests(path)) == 1
    assert fake.created(path) == [submitted.order_id]


async def test_a_create_that_cannot_be_sent_at_all_says_so_plainly() -> None:
    # Nothing ever listens: every attempt was refused, so nothing was created and the error
    # is the transport's, not "outcome unknown".
    port = _free_port()
    async with tg.TelegentClient(
        token="t",
        base_url=f"http://127.0.0.1:{port}/v1.0",
        allow_insecure=True,
        retry_policy=FAST_RETRY,
        max_retries=2,
        requests_per_minute=None,
    ) as client:
        with pytest.raises(tg.TransportError) as caught:
            await client.port_out(NUMBER, pin="1234")
    assert not isinstance(caught.value, tg.SubmitOutcomeUnknownError)
    assert client.stats.requests == 3


async def test_lookups_and_eligibility_still_retry_what_creates_do_not(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-r1", "Complete")
    fake.inject("500", path="/v1.0/numbers/order")
    fake.inject("reset", path="/v1.0/numbers/portin/eligibility")
    async with fast_client(fake) as client:
        assert (await client.get_order("JNUOID-r1")).succeeded
        elig = await client.check_port_in_eligibility(NUMBER, target_classification="iot")
    assert elig.eligible
    assert len(fake.order_requests("JNUOID-r1")) == 2


@pytest.mark.parametrize("call", list(CREATES))
async def test_an_answer_too_large_to_read_leaves_the_outcome_unknown(call: str) -> None:
    path, create = CREATES[call]
    async with FakeTelegent() as fake, fast_client(fake) as client:
        fake.set_create_answer(path, body=b" " * (2 << 20))  # refused unread: 2 MiB
        with pytest.raises(tg.SubmitOutcomeUnknownError) as caught:
            await create(client)
    assert isinstance(caught.value.cause, tg.ResponseDecodeError)
    assert caught.value.__cause__ is caught.value.cause  # "also `__cause__`", as documented
    assert len(fake.create_requests(path)) == 1
