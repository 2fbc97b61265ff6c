"""Security: secrets stay secret, requests go only where they should, answers stay bounded.

Each test attacks one promise of DESIGN.md over real sockets: no token or account secret in
any repr, exception (chained ones included), DEBUG log or saved outcome; no redirect followed;
no plain-http base URL off loopback; no order ID that adds a parameter or changes the path; a
token only ever sent to the endpoint it was issued for, and never with the token request; no
response body over 1 MiB read into memory, whatever its framing or compression.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from helpers import FAST_POLL, chain, fast_client

import telegent_async as tg
from telegent_async._models import converter
from telegent_async.testing import FakeTelegent, Step

KEY = "DID-key-5ecur1ty"
SECRET = "acct-secret-Qx7Lm2Vv9"
ORDER_PATH = "/v1.0/numbers/order"
TOKEN_PATH = "/v1.0/oauth2/tokens"
MIB = 1 << 20


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        yield server


def exposed_text(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    for link in chain(error):
        texts += [str(link), repr(link), repr(vars(link))]
    return texts


async def failure(call: Awaitable[object]) -> tg.TelegentError:
    with pytest.raises(tg.TelegentError) as caught:
        await call
    return caught.value


# -- secrets ------------------------------------------------------------------------------------


async def test_no_token_or_secret_in_reprs_errors_logs_or_outcomes(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: aiohttp's loggers are included
    fake.add_order("JNUOID-ok", [Step("Pending", 0.0), Step("Error", 0.05)], message="8A-X")
    fake.add_order("JNUOID-slow", [Step("Pending", 0.0), Step("Complete", 60.0)])
    # A response aiohttp cannot parse: its ClientResponseError records the request headers.
    fake.set_response("JNUOID-bad-http", body=b"{}", headers={"Transfer-Encoding": "chunked"})
    errors: list[tg.TelegentError] = []
    async with fast_client(fake, max_retries=1, timeout=0.1) as client:
        fake.inject("503", 2)
        ids = ["JNUOID-ok", "JNUOID-404"]
        outcomes = [o async for o in client.wait_for_orders(ids, policy=FAST_POLL)]
        fake.revoke_tokens()  # a 401, then a new token
        outcomes += [
            o async for o in client.wait_for_orders(["JNUOID-slow"], timeout=0.1, policy=FAST_POLL)
        ]
        errors += [o.error for o in outcomes if o.error is not None]
        errors.append(await failure(client.get_order("JNUOID-bad-http")))
        fake.inject("stall", 2)
        errors.append(await failure(client.get_order("JNUOID-ok")))
        fake.inject("malformed", 2)  # retried once (max_retries=1), then reported
        errors.append(await failure(client.get_order("JNUOID-ok")))
        fake.inject("reset", 4)  # a reset of a reused connection is retried at once: 2 per attempt
        errors.append(await failure(client.get_order("JNUOID-ok")))
        fake.inject("429", retry_after="0")
        fake.inject("500", 2)  # a 429, then 5xx until the retries run out
        errors.append(await failure(client.get_order("JNUOID-ok")))
        fake.inject("401", 2)  # still refused after re-authenticating
        errors.append(await failure(client.get_order("JNUOID-ok")))
        order = await client.wait_for_order("JNUOID-ok", policy=FAST_POLL)
        with pytest.raises(tg.OrderFailed) as failed:
            order.raise_for_status()
        errors.append(failed.value)
        texts = [repr(client), repr(order), *(repr(o) for o in outcomes)]
        texts += [json.dumps(converter.unstructure(o)) for o in outcomes]
    async with fast_client(fake, account_secret="wrong-" + SECRET) as refused:
        errors.append(await failure(refused.get_order("JNUOID-ok")))
        texts.append(repr(refused))
    token = fake.order_requests()[-1].token
    assert token is not None
    async with fast_client(fake, token=token, max_retries=0) as static:
        fake.inject("401")  # a static token gets no second chance
        errors.append(await failure(static.get_order("JNUOID-ok")))
        texts.append(repr(static))

    tokens = {r.token for r in fake.requests if r.token}
    # The first token, the one after the revocation and the one after the injected 401s.
    assert len(tokens) >= 3 and len(fake.token_requests) >= 4
    kinds = {type(error) for error in errors}
    expected = {tg.NotFoundError, tg.OrderWaitTimeout, tg.TransportError, tg.OrderFailed}
    assert (
        expected | {tg.ResponseDecodeError, tg.AuthenticationError, tg.InternalServerError} <= kinds
    )
    for error in errors:
        texts += exposed_text(error)
    texts.append(caplog.text)
    assert "retry" in caplog.text  # DEBUG records were really captured
    leaks = [
        (secret[:6], text[:120]) for text in texts for secret in (*tokens, SECRET) if secret in text
    ]
    assert not leaks, leaks


# -- where requests go ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed(fake: FakeTelegent, status: int) -> None:
    target = f"http://127.0.0.1:{fake.port}/elsewhere?stolen=1"
    fake.set_response("JNUOID-moved", status=status, headers={"Location": target})
    async with fast_client(fake) as client:
        error = await failure(client.get_order("JNUOID-moved"))
        fake.inject("redirect")
        error_injected = await failure(client.get_order("JNUOID-other"))
    assert isinstance(error, tg.APIStatusError) and error.status_code == status
    assert isinstance(error_injected, tg.APIStatusError) and error_injected.status_code == 302
    assert [r.path for r in fake.requests] == [TOKEN_PATH, ORDER_PATH, ORDER_PATH]


@pytest.mark.parametrize(
    ("base_url", "allow_insecure"),
    [
        ("http://api.telegent.com/v1.0", False),
        ("http://127.0.0.1:8080/v1.0", False),
        ("http://api.telegent.com/v1.0", True),
        ("http://10.0.0.1/v1.0", True),
        ("http://0.0.0.0:8080/v1.0", True),
        ("http://[::ffff:8.8.8.8]/v1.0", True),
        ("http://127.0.0.1.nip.io/v1.0", True),
        ("http://localhost.telegent.com/v1.0", True),
        ("http://2130706433/v1.0", True),
        ("ftp://127.0.0.1/v1.0", True),
        ("https://user:pass@api.telegent.com/v1.0", False),
        ("//api.telegent.com/v1.0", False),
    ],
)
def test_insecure_or_odd_base_urls_are_refused(base_url: str, allow_insecure: bool) -> None:
    with pytest.raises(ValueError):
        tg.TelegentClient(token="t0k3n", base_url=base_url, allow_insecure=allow_insecure)


def test_plain_http_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGENT_BASE_URL", "http://api.telegent.com/v1.0")
    with pytest.raises(ValueError, match="http"):
        tg.TelegentClient(token="t0k3n")


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:1/v1.0", "http://[::1]:1/v1.0", "http://localhost:1/v1.0"]
)
def test_loopback_http_is_allowed_only_when_asked(base_url: str) -> None:
    with pytest.raises(ValueError):
        tg.TelegentClient(token="t0k3n", base_url=base_url)
    client = tg.TelegentClient(token="t0k3n", base_url=base_url, allow_insecure=True)
    assert str(client.base_url) == base_url


INJECTIONS = [
    "x&OrderId=y",
    "x&OrderId=",
    "../tokens",
    "../../oauth2/tokens",
    "%2e%2e/",
    "%2e%2e%2ftokens",
    "?a=b",
    "#frag",
    "x%26OrderId%3Dy",
    "x+y",
    "x;OrderId=y",
    "x\\..\\tokens",
    "JNUOID-ü✓-订单-🚀",
]


async def test_order_ids_cannot_add_a_parameter_or_change_the_path(fake: FakeTelegent) -> None:
    fake.default_status = "Complete"
    async with fast_client(fake) as client:
        outcomes = await client.get_orders(INJECTIONS)
        for hidden in ("JNUOID-1\r\nX-Injected: 1", "\u202eDIOUNJ", "JNUOID-1\x00"):
            with pytest.raises(ValueError):
                await client.get_order(hidden)  # refused before anything is sent
    assert [o.order_id for o in outcomes] == INJECTIONS
    assert all(o.order is not None and o.order.order_id == o.order_id for o in outcomes)
    requests = fake.order_requests()
    assert sorted(r.query for r in requests) == sorted((("OrderId", i),) for i in INJECTIONS)
    assert {r.path for r in fake.requests} == {TOKEN_PATH, ORDER_PATH}
    assert len(fake.token_requests) == 1


async def test_tokens_go_only_to_their_scope_and_never_with_the_token_request() -> None:
    sent: list[tuple[str, str, str | None]] = []

    async def on_headers(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestHeadersSentParams,
    ) -> None:
        sent.append((params.method, params.url.path, params.headers.get("Authorization")))

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers)
    async with (
        FakeTelegent(account_key=KEY, account_secret=SECRET, token_lifetime=0.1) as fake,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
    ):
        fake.add_order("JNUOID-s", [Step("Pending", 0.0), Step("Complete", 0.3)])
        async with fast_client(fake, session=session) as client:
            await client.wait_for_order("JNUOID-s", policy=tg.PollPolicy(0.02, 1.0, 0.02, 0.0))
            fake.revoke_tokens()
            await client.get_order("JNUOID-s")

    posts = [entry for entry in sent if entry[0] == "POST"]
    gets = [entry for entry in sent if entry[0] == "GET"]
    assert len(posts) >= 3, "tokens were not renewed during the test"
    assert all(path == TOKEN_PATH and auth is None for _, path, auth in posts), posts
    assert all(path == ORDER_PATH and auth and auth.startswith("Bearer ") for _, path, auth in gets)
    for request in fake.token_requests:
        assert request.token_scope == ORDER_PATH
    for request in fake.order_requests():
        assert request.token is not None and request.token_scope == ORDER_PATH


# -- bounded answers ------------------------------------------------------------------------------


async def test_a_body_over_1_mib_is_refused(fake: FakeTelegent) -> None:
    fake.default_status = "Complete"
    async with fast_client(fake) as client:
        fake.inject("huge")
        error = await failure(client.get_order("JNUOID-huge"))
        assert isinstance(error, tg.ResponseDecodeError)
        assert len(fake.order_requests()) == 1, "a refused body is not a transient failure"
        assert (await client.get_order("JNUOID-next")).succeeded  # the client still works


async def test_a_compressed_body_over_1_mib_once_inflated_is_refused(fake: FakeTelegent) -> None:
    """Content-Length counts the gzip bytes (~20 KiB here): only counting what aiohttp
    inflates keeps a 20 MiB order out of memory."""
    padding = "x" * (20 * MIB)
    order = {"OrderId": "JNUOID-bomb", "OrderStatus": "Complete", "Padding": padding}
    bomb = gzip.compress(json.dumps(order).encode())
    assert len(bomb) < MIB // 8
    fake.set_response("JNUOID-bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    async with fast_client(fake) as client:
        error = await failure(client.get_order("JNUOID-bomb"))
    assert isinstance(error, tg.ResponseDecodeError), error


async def test_a_chunked_body_without_length_is_cut_off_at_1_mib() -> None:
    """A server that streams forever (chunked, no Content-Length) gets a typed error back
    after about 1 MiB, not an unbounded read. FakeTelegent always sends a Content-Length, so
    this one endpoint is a bare aiohttp handler on 127.0.0.1."""
    written = 0
    chunk = b" " * (64 * 1024)

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(b'{"OrderId": "JNUOID-1", "OrderStatus": "Complete", "P": "')
            while written < 256 * MIB:
                await response.write(chunk)
                written += len(chunk)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return response

    app = web.Application()
    app.router.add_get(ORDER_PATH, endless)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base_url = f"http://127.0.0.1:{port}/v1.0"
        client = tg.TelegentClient(
            token="t0k3n", base_url=base_url, allow_insecure=True, requests_per_minute=None
        )
        async with client:
            error = await failure(client.get_order("JNUOID-1"))
        assert isinstance(error, tg.ResponseDecodeError), error
        await asyncio.sleep(0.05)  # let the handler see the closed connection
        assert written < 16 * MIB, f"the client read {written / MIB:.0f} MiB before refusing"
    finally:
        await runner.cleanup()
