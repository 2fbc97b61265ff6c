"""The fake server, exercised with a plain aiohttp client so that SDK bugs cannot mask its own."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, get_args

import aiohttp
import pytest
import pytest_asyncio
from helpers import wait_until
from multidict import CIMultiDictProxy

from telegent_async._status import STATUS_RULES
from telegent_async.testing import FAULT_KINDS, FakeTelegent, FaultKind, RecordedRequest, Step

KEY = "DID-fake-key"
SECRET = "fake-secret"
ORDER_ENDPOINT = "https://api.telegent.com/v1.0/numbers/order"


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def issue(
    session: aiohttp.ClientSession,
    fake: FakeTelegent,
    endpoint: str | None = ORDER_ENDPOINT,
    secret: str = SECRET,
) -> str:
    body = {"AccountKey": KEY, "AccountSecret": secret}
    if endpoint is not None:
        body["ApiEndpoint"] = endpoint
    async with session.post(f"{fake.base_url}/oauth2/tokens", json=body) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["successful"] is True
    token = data["token"]
    assert isinstance(token, str)
    return token


async def get(
    session: aiohttp.ClientSession,
    fake: FakeTelegent,
    token: str | None,
    order_id: str | None = "JNUOID-1",
    **kwargs: Any,
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"OrderId": order_id} if order_id is not None else {}
    async with session.get(
        f"{fake.base_url}/numbers/order",
        params=params,
        headers=headers,
        **kwargs,
    ) as resp:
        return resp.status, resp.headers, await resp.read()


# -- tokens -------------------------------------------------------------------------------------


async def test_token_issue_and_bad_credentials(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent(token_lifetime=120) as fake:
        async with session.post(
            f"{fake.base_url}/oauth2/tokens",
            json={"AccountKey": KEY, "AccountSecret": SECRET, "ApiEndpoint": ORDER_ENDPOINT},
        ) as resp:
            assert resp.status == 200
            data = await resp.json()
        assert data["successful"] is True and data["token"]
        expiry = datetime.strptime(data["tokenExpiry"], "%m/%d/%Y %I:%M:%S %p")
        assert expiry.year >= 2024

        async with session.post(
            f"{fake.base_url}/oauth2/tokens",
            json={"AccountKey": KEY, "AccountSecret": "wrong", "ApiEndpoint": ORDER_ENDPOINT},
        ) as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "token": None,
                "successful": False,
                "message": "Invalid AccountKey or AccountSecret",
            }

        async with session.post(f"{fake.base_url}/oauth2/tokens", json={"AccountKey": KEY}) as r:
            assert r.status == 400
            assert (await r.json())["StatusCode"] == 400
        async with session.post(f"{fake.base_url}/oauth2/tokens", data=b"not json") as r:
            assert r.status == 400

        # ApiEndpoint is optional: such a token is scoped to the order endpoint.
        token = await issue(session, fake, endpoint=None)
        status, _, _ = await get(session, fake, token, order_id="nope")
        assert status == 404
        assert len(fake.token_requests) == 5
        assert fake.token_requests[0].token_scope == "/v1.0/numbers/order"


async def test_token_scope_missing_and_unknown(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        other = await issue(session, fake, "https://api.telegent.com/v1.0/numbers/provision")
        status, _, body = await get(session, fake, other)
        assert status == 401
        assert json.loads(body)["StatusCode"] == 401
        assert fake.order_requests()[-1].token_scope == "/v1.0/numbers/provision"

        assert (await get(session, fake, None))[0] == 401
        assert (await get(session, fake, "made-up"))[0] == 401
        good = await issue(session, fake, "/v1.0/numbers/order")
        assert (await get(session, fake, good))[0] == 200


async def test_token_expiry_and_revoke(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent(token_lifetime=0.1) as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)
        assert (await get(session, fake, token))[0] == 200
        await asyncio.sleep(0.12)
        assert (await get(session, fake, token))[0] == 401

        fresh = await issue(session, fake)
        assert (await get(session, fake, fresh))[0] == 200
        fake.revoke_tokens()
        assert (await get(session, fake, fresh))[0] == 401
        assert (await get(session, fake, await issue(session, fake)))[0] == 200


# -- orders -------------------------------------------------------------------------------------


async def test_lifecycle_advances_and_message_only_at_end(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.add_order(
            "JNOID-2",
            [Step("Submitted", 0.0), Step("Pending Carrier Approval", 0.3), Step("Rejected", 0.6)],
            message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
            order_type="PortIn",
            phone_numbers=("+12815703894",),
            extra={"QRCode": "qr"},
        )
        token = await issue(session, fake)
        _, _, body = await get(session, fake, token, "JNOID-2")
        first = json.loads(body)
        assert first["OrderStatus"] == "Submitted"
        assert first["OrderStatusMessage"] is None
        assert first["OrderType"] == "PortIn"
        assert first["PhoneNumbersOrdered"] == [{"Number": "+12815703894"}]
        assert first["QRCode"] == "qr"
        assert first["ErrorMessage"] is None
        assert datetime.fromisoformat(first["OrderDate"]).utcoffset() is not None

        # Halfway between the two later steps (0.15 s of margin each way for a loaded loop).
        await asyncio.sleep(max(0.0, fake.settled_at("JNOID-2") - 0.15 - time.monotonic()))
        middle = json.loads((await get(session, fake, token, "JNOID-2"))[2])
        assert middle["OrderStatus"] == "Pending Carrier Approval"
        assert middle["OrderStatusMessage"] is None

        await asyncio.sleep(max(0.0, fake.settled_at("JNOID-2") - time.monotonic()) + 0.01)
        last = json.loads((await get(session, fake, token, "JNOID-2"))[2])
        assert last["OrderStatus"] == "Rejected"
        assert last["OrderStatusMessage"] == "8A-ACCOUNT_NUM_REQ_OR_INCORRECT"


async def test_static_verbatim_status_default_status_and_404(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeTelegent(default_status="InProgress") as fake:
        fake.add_order("JNUOID-odd", "resolutionREQUIRED ", message="6P-LOCK")
        token = await issue(session, fake)
        odd = json.loads((await get(session, fake, token, "JNUOID-odd"))[2])
        assert odd["OrderStatus"] == "resolutionREQUIRED "
        assert odd["OrderStatusMessage"] == "6P-LOCK"
        status, _, body = await get(session, fake, token, "JNUOID-unknown")
        assert status == 200
        assert json.loads(body)["OrderStatus"] == "InProgress"
        assert json.loads(body)["OrderId"] == "JNUOID-unknown"

    async with FakeTelegent() as fake:
        token = await issue(session, fake)
        status, _, body = await get(session, fake, token, "JNUOID-unknown")
        assert status == 404
        assert json.loads(body) == {"StatusCode": 404, "Message": "Order not found"}


async def test_bad_requests(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        token = await issue(session, fake)
        assert (await get(session, fake, token, None))[0] == 400
        assert (await get(session, fake, token, ""))[0] == 400
        url = f"{fake.base_url}/numbers/order?OrderId=a&OrderId=b"
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 400
        async with session.post(f"{fake.base_url}/numbers/order", headers=headers) as resp:
            assert resp.status == 405
            assert (await resp.json())["StatusCode"] == 405
        async with session.get(f"{fake.base_url}/numbers/other", headers=headers) as resp:
            assert resp.status == 404  # the framework's routing miss: a Message, no StatusCode
            assert (await resp.json()) == {
                "Message": "No HTTP resource was found that matches the request URI "
                f"'{fake.base_url}/numbers/other'."
            }
        # An ID that tries to smuggle a parameter stays one value.
        fake.add_order("a&OrderId=b", "Complete")
        assert (await get(session, fake, token, "a&OrderId=b"))[0] == 200
        assert fake.order_requests("a&OrderId=b")[0].query == (("OrderId", "a&OrderId=b"),)


async def test_set_response(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.set_response("X", status=200, body="[1, 2]", headers={"X-Extra": "1"})
        fake.set_response("Y", status=418, body=b"teapot", content_type="text/plain")
        token = await issue(session, fake)
        status, headers, body = await get(session, fake, token, "X")
        assert (status, body, headers["X-Extra"]) == (200, b"[1, 2]", "1")
        assert headers["Content-Type"].startswith("application/json")
        status, headers, body = await get(session, fake, token, "Y")
        assert (status, body, headers["Content-Type"]) == (418, b"teapot", "text/plain")


# -- faults -------------------------------------------------------------------------------------


def test_status_faults_are_the_status_table() -> None:
    # The Literal must be spelled out for mypy; this keeps it in step with the one table.
    statuses = {int(name) for name in get_args(FaultKind) if name.isdigit()}
    assert statuses == {rule.status for rule in STATUS_RULES}
    assert frozenset(get_args(FaultKind)) == FAULT_KINDS


@pytest.mark.parametrize(
    "kind", sorted(k for k in FAULT_KINDS if k.isdigit()), ids=lambda k: f"fault-{k}"
)
async def test_status_faults(session: aiohttp.ClientSession, kind: FaultKind) -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)
        fake.inject(kind)
        status, headers, body = await get(session, fake, token)
        assert status == int(kind)
        data = json.loads(body)
        assert data["StatusCode"] == int(kind)
        assert isinstance(data["Message"], str) and data["Message"]
        if kind == "429":
            assert headers["Retry-After"] == "1"
        assert fake.order_requests()[-1].fault == kind
        assert (await get(session, fake, token))[0] == 200  # the injection is used up


async def test_injection_fifo_and_retry_after(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)
        fake.inject("503", count=2)
        fake.inject("429", count=1, retry_after="0.1")
        seen = [await get(session, fake, token) for _ in range(4)]
        assert [s for s, _, _ in seen] == [503, 503, 429, 200]
        assert seen[2][1]["Retry-After"] == "0.1"
        with pytest.raises(ValueError):
            fake.inject("teapot")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FakeTelegent(fault_rate={"nope": 0.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        FakeTelegent(fault_rate={"503": 0.7, "reset": 0.7})


async def test_body_faults(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)

        fake.inject("malformed")
        status, headers, body = await get(session, fake, token)
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert body.startswith(b'{"OrderId": "JNUOID-1"')
        with pytest.raises(ValueError):
            json.loads(body)

        fake.inject("html")
        status, headers, body = await get(session, fake, token)
        assert status == 502 and headers["Content-Type"].startswith("text/html")
        assert b"<html>" in body

        fake.inject("empty")
        status, _, body = await get(session, fake, token)
        assert (status, body) == (200, b"")

        fake.inject("redirect")
        status, headers, _ = await get(session, fake, token, allow_redirects=False)
        assert status == 302
        assert headers["Location"] == f"http://127.0.0.1:{fake.port}/elsewhere"

        fake.inject("huge")
        status, _, body = await get(session, fake, token)
        assert status == 200 and len(body) >= 2 * 1024 * 1024
        assert json.loads(body)["OrderStatus"] == "Complete"


async def test_reset(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)
        # aiohttp silently retries an idempotent request once after a disconnect, so it takes
        # two resets in a row for the client to see one.
        fake.inject("reset", count=2)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await get(session, fake, token)
        assert [(r.status, r.fault) for r in fake.order_requests()] == [(0, "reset")] * 2
        assert fake.status_counts[0] == 2
        assert (await get(session, fake, token))[0] == 200


async def test_stall(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent(stall_seconds=0.15) as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)
        fake.inject("stall")
        with pytest.raises(asyncio.TimeoutError):
            await get(session, fake, token, timeout=aiohttp.ClientTimeout(total=0.1))
        fake.inject("stall")
        started = time.monotonic()
        status, _, _ = await get(session, fake, token, timeout=aiohttp.ClientTimeout(total=2))
        assert status == 200
        assert time.monotonic() - started >= 0.14
        stalls = [r for r in fake.order_requests() if r.fault == "stall"]
        assert [r.status for r in stalls] == [0, 200]


async def test_close_releases_stalled_handlers(session: aiohttp.ClientSession) -> None:
    fake = FakeTelegent(stall_seconds=30.0)
    await fake.start()
    fake.add_order("JNUOID-1", "Complete")
    token = await issue(session, fake)
    fake.inject("stall", count=3)
    pending = [asyncio.ensure_future(get(session, fake, token)) for _ in range(3)]
    await wait_until(lambda: len(fake.order_requests()) == 3, timeout=3.0)
    started = time.monotonic()
    await fake.close()
    await fake.close()  # idempotent
    assert time.monotonic() - started < 2.0
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(isinstance(r, aiohttp.ClientError) for r in results)
    assert fake.status_counts[0] == 3


async def test_fault_rate_is_seeded(session: aiohttp.ClientSession) -> None:
    async def run() -> list[int]:
        async with FakeTelegent(fault_rate={"503": 0.3, "500": 0.2}, seed=7) as fake:
            fake.add_order("JNUOID-1", "Complete")
            token = await issue(session, fake)
            return [(await get(session, fake, token))[0] for _ in range(40)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 500, 503} == set(first)


async def test_rate_limit(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent(rate_limit=5.0, retry_after="0.05") as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)  # token requests are not limited
        statuses = [await get(session, fake, token) for _ in range(7)]
        codes = [s for s, _, _ in statuses]
        assert codes.count(200) >= 5 and codes[-1] == 429
        limited = statuses[-1]
        assert limited[1]["Retry-After"] == "0.05"
        assert json.loads(limited[2])["StatusCode"] == 429
        await asyncio.sleep(0.25)
        assert (await get(session, fake, token))[0] == 200
        assert (await issue(session, fake)) != token


# -- recording and connections ------------------------------------------------------------------


async def test_recording(session: aiohttp.ClientSession) -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        token = await issue(session, fake)
        await get(session, fake, token, "JNUOID-1")
        await get(session, fake, token, "JNUOID-2")
        assert [r.method for r in fake.requests] == ["POST", "GET", "GET"]
        rec = fake.order_requests("JNUOID-1")
        assert len(rec) == 1 and isinstance(rec[0], RecordedRequest)
        assert rec[0].path == "/v1.0/numbers/order"
        assert rec[0].query == (("OrderId", "JNUOID-1"),)
        assert rec[0].token == token and rec[0].token_scope == "/v1.0/numbers/order"
        assert (rec[0].status, rec[0].fault) == (200, None)
        assert fake.order_requests("JNUOID-2")[0].status == 404
        assert fake.requests[0].at <= rec[0].at <= fake.requests[2].at
        assert fake.request_count == 3 and fake.status_counts == {200: 2, 404: 1}

    async with FakeTelegent(record=False, default_status="Complete") as fake:
        token = await issue(session, fake)
        for i in range(5):
            await get(session, fake, token, f"JNUOID-{i}")
        assert fake.requests == []
        assert fake.request_count == 6 and fake.status_counts == {200: 6}


async def test_connections_tracked() -> None:
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        sessions = [aiohttp.ClientSession() for _ in range(3)]
        try:
            token = await issue(sessions[0], fake)
            for s in sessions:
                assert (await get(s, fake, token))[0] == 200
            assert fake.open_connections == 3
        finally:
            for s in sessions:
                await s.close()
        await wait_until(lambda: fake.open_connections == 0, timeout=1.0)
        assert fake.open_connections == 0
        assert fake.peak_connections == 3


async def test_many_orders_are_cheap() -> None:
    fake = FakeTelegent()
    started = time.monotonic()
    for i in range(100_000):
        fake.add_order(f"JNUOID-{i}", "Complete")
    assert time.monotonic() - started < 5.0
    assert fake.settled_at("JNUOID-5") <= time.monotonic()
    await fake.close()  # never started: still fine


async def test_sdk_client_binding() -> None:
    pytest.importorskip("telegent_async._client")
    async with FakeTelegent() as fake:
        fake.add_order("JNUOID-1", "Complete")
        async with fake.client(requests_per_minute=None) as client:
            order = await client.get_order("JNUOID-1")
        assert order.order_id == "JNUOID-1"
        assert len(fake.token_requests) == 1
