"""Webhooks: `order_ids` (pure, total) and the answers of both adapters over real sockets.

The ASGI app runs under uvicorn and the aiohttp handler under aiohttp.web, both on 127.0.0.1;
requests are real HTTP (aiohttp's client, or raw bytes on a socket where a client would not
misbehave enough). The watcher side here only records wake-ups; the wake-up of a real
`OrderWatcher` is tested in test_webhook_watcher.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from web_servers import aiohttp_serving, uvicorn_serving

from telegent_async import webhooks
from telegent_async.webhooks import MAX_BODY_BYTES, order_ids

SECRET = "s3cret-path-segment-0123456789"
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
    [b"", b"not json", b"{", b"<html>502</html>", b"\xff\xfe\x00", b"[" * 100_000, b"\x00" * 10],
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
        webhooks.asgi_app(Recorder(), secret=None)  # type: ignore[arg-type]


# -- over sockets ---------------------------------------------------------------------------------


class Recorder:
    """Stands in for an OrderWatcher: records wake-ups; can be made to fail or to block."""

    def __init__(self) -> None:
        self.woken: list[str] = []
        self.fail = False

    async def wake(self, order_id: str) -> bool:
        if self.fail:
            raise OSError("disk full")
        self.woken.append(order_id)
        return True


Serve = Callable[[Recorder], contextlib.AbstractAsyncContextManager[str]]


@contextlib.asynccontextmanager
async def _asgi(recorder: Recorder) -> AsyncIterator[str]:
    async with uvicorn_serving(webhooks.asgi_app(recorder, secret=SECRET)) as url:
        yield url


@contextlib.asynccontextmanager
async def _aiohttp(recorder: Recorder) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", webhooks.aiohttp_handler(recorder, secret=SECRET))
    async with aiohttp_serving(app) as url:
        yield url


@pytest.fixture(params=["asgi", "aiohttp"])
def serve(request: pytest.FixtureRequest) -> Serve:
    return {"asgi": _asgi, "aiohttp": _aiohttp}[request.param]


async def _post(url: str, body: bytes | None = None, method: str = "POST") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_the_documented_answers(serve: Serve) -> None:
    recorder = Recorder()
    async with serve(recorder) as base:
        hook = f"{base}/hooks/telegent/{SECRET}"
        assert (await _post(hook, _body({"data": {"OrderId": ID}})))[0] == 200
        assert (await _post(hook + "/", _body([{"OrderId": ID2}])))[0] == 200
        assert (await _post(hook, _body({"Event": "Ping"}))) == (202, {"woken": []})
        assert (await _post(hook, b"<html>not json</html>"))[0] == 400
        assert (await _post(hook, b""))[0] == 400
        assert (await _post(hook, method="GET"))[0] == 405
        for wrong in [SECRET[:-1], SECRET + "x", "x" + SECRET, SECRET.upper(), f"{SECRET}/extra"]:
            assert (await _post(f"{base}/hooks/telegent/{wrong}", _body({"OrderId": ID})))[0] == 404
        assert (await _post(f"{base}/{SECRET}/hooks", _body({"OrderId": ID})))[0] == 404
    assert recorder.woken == [ID, ID2]


async def test_two_hundred_names_the_woken_orders(serve: Serve) -> None:
    recorder = Recorder()
    async with serve(recorder) as base:
        status, answer = await _post(f"{base}/x/{SECRET}", _body({"OrderIds": [ID, ID2]}))
    assert (status, answer) == (200, {"woken": [ID, ID2]})


async def test_a_failing_store_answers_503(serve: Serve) -> None:
    recorder = Recorder()
    recorder.fail = True
    async with serve(recorder) as base:
        status, _ = await _post(f"{base}/x/{SECRET}", _body({"OrderId": ID}))
    assert status == 503


async def test_64_kib_is_accepted_and_one_byte_more_refused(serve: Serve) -> None:
    recorder = Recorder()
    padding = MAX_BODY_BYTES - len(_body({"OrderId": ID, "p": ""}))
    exact = _body({"OrderId": ID, "p": "x" * padding})
    assert len(exact) == MAX_BODY_BYTES
    async with serve(recorder) as base:
        assert (await _post(f"{base}/x/{SECRET}", exact))[0] == 200
        assert (await _post(f"{base}/x/{SECRET}", exact + b" "))[0] == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for _ in range(5):
                yield b" " * 20_000
            yield exact

        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/x/{SECRET}", data=chunks()) as response,
        ):
            assert response.status == 413
    assert recorder.woken == [ID]


async def _raw_exchange(url: str, request: bytes) -> tuple[bytes, float]:
    """Send raw bytes and return the status line, and how long the answer took."""
    host, port = url.removeprefix("http://").split(":")
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


async def test_an_oversized_body_is_refused_before_it_is_sent(serve: Serve) -> None:
    """Content-Length says 10 MB and nothing follows the headers: the answer comes anyway,
    so the server did not wait to read the body."""
    async with serve(Recorder()) as base:
        head = (
            f"POST /x/{SECRET} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        ).encode()
        line, seconds = await _raw_exchange(base, head)
    assert line.split()[1] == b"413"
    assert seconds < 2.0


async def test_a_stream_over_the_limit_is_cut_without_reading_the_rest(serve: Serve) -> None:
    """Chunked, 64 KiB + 1 byte sent and then nothing: 413 without waiting for the end."""
    async with serve(Recorder()) as base:
        chunk = b"x" * (MAX_BODY_BYTES + 1)
        request = (
            f"POST /x/{SECRET} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode() + b"%x\r\n%s\r\n" % (len(chunk), chunk)
        line, seconds = await _raw_exchange(base, request)
    assert line.split()[1] == b"413"
    assert seconds < 2.0
