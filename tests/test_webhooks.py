"""Webhooks: `order_ids` (pure, total) and the answers of both adapters over real sockets.

The ASGI app runs under uvicorn and the aiohttp handler under aiohttp.web, both on 127.0.0.1;
requests are real HTTP (aiohttp's client, or raw bytes on a socket where a client would not
misbehave enough), in each auth mode: a path secret, a Bearer token, HTTP Basic. The watcher
side here only records wake-ups; a real `OrderWatcher` woken by a delivery (and an order it
does not watch reported unknown) is tested in test_web_examples.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from web_servers import aiohttp_serving, uvicorn_serving

import telegent_async as tg
from telegent_async import webhooks
from telegent_async._delivery import data_format_of
from telegent_async.webhooks import MAX_BODY_BYTES, order_ids

SECRET = "s3cret-path-segment-0123456789"
TOKEN = "hook-bearer-token-7Yq2xT0pLw9c"
USER = "telegent"
PASSWORD = "hook-basic-password-M4t8Kz1Q"
ID = "JNOID-3f1c9a2e-6b7d-4e8f-9a0b-1c2d3e4f5a6b"
ID2 = "JNUOID-10a3g876-0000"


# -- order_ids: pure ------------------------------------------------------------------------------


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        ({"OrderId": ID, "OrderStatus": "Complete"}, [ID]),
        ({"Event": "Order_Update", "data": {"OrderId": ID}}, [ID]),
        ({"payload": {"Order": {"OrderId": ID}}}, [ID]),
        ({"Order": {"orderId": ID}}, [ID]),
        ([{"OrderId": ID}, {"data": {"order_id": ID2}}], [ID, ID2]),
        ({"events": [{"OrderId": ID}, {"OrderId": ID}, {"ORDER-ID": ID2}]}, [ID, ID2]),
        ({"OrderIds": [ID, ID2, 7]}, [ID, ID2]),
        ({"OrderId": 12345}, []),
        ({"OrderId": ""}, []),
        ({"OrderId": "   "}, []),
        ({"OrderId": "bad\nid"}, []),
        ({"OrderId": "x" * 500}, []),
        ({"OrderId": {"nested": ID}}, []),  # an object under OrderId is not an ID
        ({"PhoneNumber": "+12815703894"}, []),
        ({"RelatedOrderId": ID}, []),  # only the key itself counts
        ([], []),
        ("just a string", []),
        (None, []),
        (42, []),
    ],
)
def test_order_ids_finds_ids_wherever_a_delivery_puts_them(
    delivery: object, expected: list[str]
) -> None:
    assert order_ids(_body(delivery)) == expected


def test_order_ids_stops_at_a_sensible_depth() -> None:
    shallow: object = {"OrderId": ID}
    deep: object = {"OrderId": ID2}
    for _ in range(5):
        shallow = {"data": shallow}
    for _ in range(40):
        deep = {"data": deep}
    assert order_ids(_body([shallow, deep])) == [ID]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b"<html>502", b"\xff\xfe\x00", b"[" * 100_000, b"\x00" * 10],
)
def test_order_ids_refuses_what_is_not_json_with_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        order_ids(body)


def test_order_ids_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        order_ids('{"OrderId": "x"}')  # type: ignore[arg-type]
    assert order_ids(bytearray(_body({"OrderId": ID}))) == [ID]
    assert order_ids(memoryview(_body({"OrderId": ID}))) == [ID]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_order_ids_is_total_on_any_bytes(body: bytes) -> None:
    try:
        found = order_ids(body)
    except ValueError:
        return
    assert isinstance(found, list) and all(isinstance(i, str) for i in found)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["data", "payload", "Order", "OrderId", "orderIds", "x"]) | st.text(),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_order_ids_never_raises_on_json_and_finds_only_what_is_there(document: object) -> None:
    body = _body(document)
    found = order_ids(body)
    assert len(found) == len(set(found))
    for order_id in found:
        assert json.dumps(order_id) in body.decode()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["data", "payload", "Order", "event", 0, 1]), max_size=8),
    JSON,
)
def test_an_id_inside_any_wrapper_is_found(path: list[str | int], noise: object) -> None:
    document: Any = {"OrderId": ID, "noise": noise}
    for step in reversed(path):
        document = {step: document, "other": noise} if isinstance(step, str) else [noise, document]
    assert ID in order_ids(_body(document))


def test_a_short_or_unusable_secret_is_refused() -> None:
    for bad in ["short", "has/slash-0123456789", " padded-0123456789 ", "tab\tinside-0123456789"]:
        with pytest.raises(ValueError):
            webhooks.asgi_app(Recorder(), secret=bad)
        with pytest.raises(ValueError):
            webhooks.aiohttp_handler(Recorder(), secret=bad)
    with pytest.raises(TypeError):
        webhooks.asgi_app(Recorder(), secret=None)


@pytest.mark.parametrize(
    ("keywords", "error", "words"),
    [
        ({}, TypeError, "exactly one of secret="),
        ({"secret": SECRET, "bearer_token": TOKEN}, TypeError, "got secret and bearer_token"),
        ({"bearer_token": TOKEN, "basic_auth": (USER, PASSWORD)}, TypeError, "exactly one"),
        ({"bearer_token": "short"}, ValueError, "at least 16 characters"),
        ({"bearer_token": "has space inside 0123456789"}, ValueError, "one word"),
        ({"bearer_token": 12345}, TypeError, "must be a str"),
        ({"basic_auth": ("us:er", PASSWORD)}, ValueError, "without ':'"),
        ({"basic_auth": (USER, "short")}, ValueError, "at least 16 characters"),
        ({"basic_auth": (USER,)}, TypeError, "(user, password)"),
        ({"basic_auth": f"{USER}:{PASSWORD}"}, TypeError, "(user, password)"),
    ],
)
def test_exactly_one_auth_mode_with_checked_credentials(
    keywords: dict[str, Any], error: type[Exception], words: str
) -> None:
    for make in (webhooks.asgi_app, webhooks.aiohttp_handler):
        with pytest.raises(error, match=re.escape(words)) as caught:
            make(Recorder(), **keywords)
        assert PASSWORD not in str(caught.value) and "short" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80) | st.builds(lambda t: "Bearer " + t, st.text(max_size=40)))
def test_credentials_accept_nothing_but_themselves(header: str) -> None:
    bearer = tg.WebhookAuth.bearer(TOKEN)
    basic = tg.WebhookAuth.basic(USER, PASSWORD)
    assert not bearer.accepts(header) and not basic.accepts(header)
    assert bearer.accepts(f"Bearer {TOKEN}") and bearer.accepts(f"  bearer   {TOKEN} ")
    assert basic.accepts(_basic(USER, PASSWORD)) and not basic.accepts(f"Bearer {TOKEN}")
    assert not bearer.accepts(None) and not basic.accepts(None)


# -- XML: defused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f"<Order_Update><OrderId>{ID}</OrderId></Order_Update>", [ID]),
        (
            '<?xml version="1.0"?><Event><Data><Order>'
            f"<orderId> {ID} </orderId></Order></Data></Event>",
            [ID],
        ),
        (f'<Order OrderId="{ID}"><Status>Complete</Status></Order>', [ID]),
        (
            f'<e xmlns="urn:telegent"><OrderIds><id>{ID}</id><id>{ID2}</id></OrderIds></e>',
            [ID, ID2],
        ),
        (
            f"<Events><E><OrderId>{ID}</OrderId></E><E><ORDER_ID>{ID2}</ORDER_ID></E></Events>",
            [ID, ID2],
        ),
        (f"<OrderId>{ID}</OrderId>", [ID]),
        ("<Event><OrderId></OrderId><PhoneNumber>+12815703894</PhoneNumber></Event>", []),
        (f"<e><OrderId><x>{ID}</x></OrderId></e>", []),  # an element under OrderId is not an ID
    ],
)
def test_order_ids_reads_xml_deliveries(body: str, expected: list[str]) -> None:
    assert order_ids(body.encode()) == expected
    assert order_ids(body.encode(), "xml") == expected


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><Order><OrderId>&lol9;</OrderId></Order>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<Order><OrderId>&xxe;</OrderId></Order>"
)
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE Order SYSTEM "http://127.0.0.1:1/x.dtd"><Order/>'


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_xml_with_a_dtd_or_entities_is_refused_at_once(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match="no DTDs or entities"):
        order_ids(body)
    assert time.perf_counter() - started < 0.5  # refused before any expansion (seconds, GBs)


@pytest.mark.parametrize("body", [b"<Order><OrderId>x</Order>", b"<", b"<a>" * 10 + b"</b>"])
def test_malformed_xml_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        order_ids(body)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/xml", b"{}", "xml"),
        ("text/xml; charset=utf-8", b"{}", "xml"),
        ("application/json", b"<x/>", "json"),
        ("application/vnd.telegent+json", b"<x/>", "json"),
        (None, b"  \n<x/>", "xml"),
        (None, b"\xef\xbb\xbf<x/>", "xml"),
        ("application/octet-stream", b'{"a": 1}', "json"),
        (None, b"", "json"),
    ],
)
def test_the_format_is_the_content_types_else_the_bodys(
    content_type: str | None, body: bytes, expected: str
) -> None:
    assert data_format_of(content_type, body) == expected


# -- over sockets ---------------------------------------------------------------------------------


class Recorder:
    """Stands in for an OrderWatcher: records wake-ups; watches every order but `unwatched`."""

    def __init__(self, unwatched: tuple[str, ...] = ()) -> None:
        self.woken: list[str] = []
        self.unwatched = unwatched
        self.fail = False
        self.hang = False  # a running watcher waiting out a store outage

    async def wake(self, order_id: str) -> bool:
        if self.fail:
            raise OSError("disk full")
        if self.hang:
            await asyncio.Event().wait()
        if order_id in self.unwatched:
            return False
        self.woken.append(order_id)
        return True


@attrs.frozen
class Hook:
    """Where a test delivers, and the headers that authenticate it."""

    url: str
    headers: dict[str, str]
    mode: str


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


MODES: dict[str, dict[str, Any]] = {
    "secret": {"secret": SECRET},
    "bearer": {"bearer_token": TOKEN},
    "basic": {"basic_auth": (USER, PASSWORD)},
}
GOOD_HEADERS = {
    "secret": {},
    "bearer": {"Authorization": f"Bearer {TOKEN}"},
    "basic": {"Authorization": _basic(USER, PASSWORD)},
}

Serve = Callable[[Recorder], contextlib.AbstractAsyncContextManager[Hook]]


def _server(adapter: str, mode: str) -> Serve:
    @contextlib.asynccontextmanager
    async def serve(recorder: Recorder) -> AsyncIterator[Hook]:
        path = f"/hooks/telegent/{SECRET}" if mode == "secret" else "/hooks/telegent"
        if adapter == "asgi":
            serving = uvicorn_serving(webhooks.asgi_app(recorder, **MODES[mode]))
        else:
            app = web.Application()
            handler = webhooks.aiohttp_handler(recorder, **MODES[mode])
            app.router.add_route("*", "/{tail:.*}", handler)
            serving = aiohttp_serving(app)
        async with serving as base:
            yield Hook(base + path, GOOD_HEADERS[mode], mode)

    return serve


@pytest.fixture(params=["asgi", "aiohttp"])
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(MODES))
def serve(request: pytest.FixtureRequest, adapter: str) -> Serve:
    return _server(adapter, request.param)


@pytest.fixture
def serve_secret(adapter: str) -> Serve:
    return _server(adapter, "secret")


async def _post(
    url: str,
    body: bytes | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_the_documented_answers(serve: Serve) -> None:
    recorder = Recorder()
    async with serve(recorder) as hook:
        url, auth = hook.url, hook.headers
        assert (await _post(url, _body({"data": {"OrderId": ID}}), headers=auth))[0] == 200
        assert (await _post(url + "/", _body([{"OrderId": ID2}]), headers=auth))[0] == 200
        answer = await _post(url, _body({"Event": "Ping"}), headers=auth)
        assert answer == (202, {"woken": [], "unknown": []})
        assert (await _post(url, b"<html>not closed", headers=auth))[0] == 400
        assert (await _post(url, b"{not json", headers=auth))[0] == 400
        assert (await _post(url, b"", headers=auth))[0] == 400
        for method in ("GET", "DELETE", "PATCH"):
            assert (await _post(url, method=method, headers=auth))[0] == 405
    assert recorder.woken == [ID, ID2]


async def test_put_and_xml_as_telegent_may_send_them(serve: Serve) -> None:
    recorder = Recorder()
    xml = f"<Order_Update><Order><OrderId>{ID}</OrderId></Order></Order_Update>".encode()
    async with serve(recorder) as hook:
        headers = {**hook.headers, "Content-Type": "application/xml"}
        answer = await _post(hook.url, xml, method="PUT", headers=headers)
        assert answer == (200, {"woken": [ID], "unknown": []})
        json_put = await _post(hook.url, _body({"OrderId": ID2}), "PUT", hook.headers)
        assert json_put == (200, {"woken": [ID2], "unknown": []})
        sniffed = await _post(
            hook.url, f"<e><OrderId>{ID}</OrderId></e>".encode(), "POST", hook.headers
        )
        assert sniffed[0] == 200
    assert recorder.woken == [ID, ID2, ID]


async def test_an_xml_bomb_is_refused_fast_and_wakes_nothing(serve: Serve) -> None:
    recorder = Recorder()
    async with serve(recorder) as hook:
        headers = {**hook.headers, "Content-Type": "text/xml"}
        for bomb in (BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD):
            started = time.monotonic()
            status, answer = await _post(hook.url, bomb, headers=headers)
            assert (status, answer) == (400, {"error": "the body is not readable XML"})
            assert time.monotonic() - started < 1.0
    assert recorder.woken == []


async def test_two_hundred_names_woken_and_unknown_apart(serve: Serve) -> None:
    recorder = Recorder(unwatched=(ID2,))
    async with serve(recorder) as hook:
        status, answer = await _post(hook.url, _body({"OrderIds": [ID, ID2]}), headers=hook.headers)
    assert (status, answer) == (200, {"woken": [ID], "unknown": [ID2]})
    assert recorder.woken == [ID]


async def test_a_path_secret_that_is_wrong_is_404(serve_secret: Serve) -> None:
    recorder = Recorder()
    async with serve_secret(recorder) as hook:
        base = hook.url.removesuffix(f"/hooks/telegent/{SECRET}")
        for wrong in [SECRET[:-1], SECRET + "x", "x" + SECRET, SECRET.upper(), f"{SECRET}/extra"]:
            assert (await _post(f"{base}/hooks/telegent/{wrong}", _body({"OrderId": ID})))[0] == 404
        assert (await _post(f"{base}/{SECRET}/hooks", _body({"OrderId": ID})))[0] == 404
        assert (await _post(f"{base}/{SECRET}/hooks", method="GET"))[0] == 404  # 404 before 405
    assert recorder.woken == []


def _wrong_authorizations(mode: str) -> list[dict[str, str]]:
    wrong = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Token {TOKEN}"},
        {"Authorization": _basic(USER, PASSWORD)},
        {"Authorization": f"Bearer {PASSWORD}"},
    ]
    if mode == "basic":
        wrong = [
            {},
            {"Authorization": f"Bearer {TOKEN}"},
            {"Authorization": _basic(USER, PASSWORD + "x")},
            {"Authorization": _basic(USER.upper(), PASSWORD)},
            {"Authorization": _basic(USER, PASSWORD[:-1])},
            {"Authorization": "Basic !!!not-base64!!!"},
            {"Authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()},
        ]
    return wrong


@pytest.mark.parametrize("mode", ["bearer", "basic"])
async def test_missing_or_wrong_credentials_are_401_with_a_challenge(
    adapter: str, mode: str
) -> None:
    recorder = Recorder()
    async with _server(adapter, mode)(recorder) as hook:
        for headers in _wrong_authorizations(mode):
            async with (
                aiohttp.ClientSession() as session,
                session.post(hook.url, data=_body({"OrderId": ID}), headers=headers) as response,
            ):
                assert response.status == 401, headers
                challenge = response.headers["WWW-Authenticate"]
                assert challenge.startswith("Bearer" if mode == "bearer" else "Basic")
                assert await response.json() == {"error": "missing or wrong credentials"}
        # 401 before 405 or 413: nothing about the endpoint is told to a stranger.
        assert (await _post(hook.url, method="GET"))[0] == 401
        # The scheme's case does not matter; the credentials' does.
        scheme, _, value = hook.headers["Authorization"].partition(" ")
        lower = {"Authorization": f"{scheme.lower()} {value}"}
        assert (await _post(hook.url, _body({"OrderId": ID}), headers=lower))[0] == 200
    assert recorder.woken == [ID]


async def test_a_failing_store_answers_503(serve: Serve) -> None:
    recorder = Recorder()
    recorder.fail = True
    async with serve(recorder) as hook:
        status, _ = await _post(hook.url, _body({"OrderId": ID}), headers=hook.headers)
    assert status == 503


async def test_a_store_that_does_not_answer_is_503_within_the_wake_timeout(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "WAKE_TIMEOUT", 0.2)
    recorder = Recorder()
    recorder.hang = True
    async with serve(recorder) as hook:
        started = time.monotonic()
        status, _ = await _post(hook.url, _body({"OrderId": ID}), headers=hook.headers)
        waited = time.monotonic() - started
    assert status == 503
    assert 0.2 <= waited < 2.0


async def test_credentials_never_reach_the_logs(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    recorder.fail = True
    async with serve(recorder) as hook:
        await _post(hook.url, _body({"OrderId": ID}), headers=hook.headers)  # logs the failure
        recorder.fail = False
        await _post(hook.url, BILLION_LAUGHS, headers=hook.headers)
        await _post(hook.url, _body({"OrderId": ID}), headers={"Authorization": "Bearer x" * 3})
        await _post(hook.url, _body({"OrderId": ID}), headers=hook.headers)
    assert caplog.records  # something was logged at DEBUG
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (TOKEN, PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert secret not in logged


async def test_64_kib_is_accepted_and_one_byte_more_refused(serve: Serve) -> None:
    recorder = Recorder()
    padding = MAX_BODY_BYTES - len(_body({"OrderId": ID, "p": ""}))
    exact = _body({"OrderId": ID, "p": "x" * padding})
    assert len(exact) == MAX_BODY_BYTES
    async with serve(recorder) as hook:
        assert (await _post(hook.url, exact, headers=hook.headers))[0] == 200
        assert (await _post(hook.url, exact + b" ", headers=hook.headers))[0] == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for _ in range(5):
                yield b" " * 20_000
            yield exact

        async with (
            aiohttp.ClientSession() as session,
            session.post(hook.url, data=chunks(), headers=hook.headers) as response,
        ):
            assert response.status == 413
    assert recorder.woken == [ID]


async def _raw_exchange(url: str, request: bytes) -> tuple[bytes, float]:
    """Send raw bytes and return the status line, and how long the answer took."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        started = time.monotonic()
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5.0)
        return line, time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _head(hook: Hook, extra: str) -> bytes:
    path = "/" + hook.url.removeprefix("http://").split("/", 1)[1]
    auth = "".join(f"{name}: {value}\r\n" for name, value in hook.headers.items())
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{extra}\r\n".encode()


async def test_an_oversized_body_is_refused_before_it_is_sent(serve: Serve) -> None:
    """Content-Length says 10 MB and nothing follows the headers: the answer comes anyway,
    so the server did not wait to read the body."""
    async with serve(Recorder()) as hook:
        head = _head(hook, "Content-Type: application/json\r\nContent-Length: 10000000\r\n")
        line, seconds = await _raw_exchange(hook.url, head)
    assert line.split()[1] == b"413"
    assert seconds < 2.0


async def test_a_stream_over_the_limit_is_cut_without_reading_the_rest(serve: Serve) -> None:
    """Chunked, 64 KiB + 1 byte sent and then nothing: 413 without waiting for the end."""
    async with serve(Recorder()) as hook:
        chunk = b"x" * (MAX_BODY_BYTES + 1)
        request = _head(hook, "Transfer-Encoding: chunked\r\n") + b"%x\r\n%s\r\n" % (
            len(chunk),
            chunk,
        )
        line, seconds = await _raw_exchange(hook.url, request)
    assert line.split()[1] == b"413"
    assert seconds < 2.0
