"""The lookup's hot path shortcuts give exactly what the plain ways give (issue 20, item 4):
the lookup URL built as text, the JSON scanner called directly, the clock read only for a
Retry-After, the attempt context counting a caller's cancel."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from helpers import wait_until
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import telegent_async as tg
from telegent_async._answers import _json_body, read_answer
from telegent_async._request import Request, lookup_url
from telegent_async._retry import HTTPAnswer, Retry, RetryRules, decide_attempt, reads_clock
from telegent_async._timing import PollPolicy
from telegent_async.testing import FakeTelegent

ENDPOINT = "https://api.example/v1.0/numbers/order"


@pytest.mark.parametrize(
    "order_id",
    [
        "JNUOID-7c2b3f0e-3d5a-4f4e-9a57-2f1c0d9e8b61",
        "a b&c=d+e/f#g%h?i",
        "é-ü",
        "~._-",
    ],
)
def test_the_lookup_url_carries_the_id_as_params_would(order_id: str) -> None:
    built = lookup_url(ENDPOINT, order_id)
    assert built.query["OrderId"] == order_id
    assert built.with_query(None) == URL(ENDPOINT)


def test_an_id_of_unreserved_characters_is_sent_verbatim() -> None:
    assert str(lookup_url(ENDPOINT, "JNUOID-a.b_c~d")) == ENDPOINT + "?OrderId=JNUOID-a.b_c~d"


async def test_an_id_needing_escapes_reaches_the_server_intact() -> None:
    odd = "JNUOID-a b&c=d+é"
    async with FakeTelegent() as fake, fake.client() as client:
        fake.add_order(odd, "Complete")
        assert (await client.get_order(odd)).order_id == odd


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"b":[1,2.5,null,true],"c":{"d":"\\u00e9"}}',
        b' {"a":1}',
        b'{"a":1}\n',
        b'{"a":1}x',
        b"{",
        b'{"a":}',
        b"[1]",
        '{"\u00e9":1}'.encode(),
        '{"a":1}'.encode("utf-16"),
        b"\xef\xbb\xbf{}",
        b'{"a":"\xff"}',
    ],
)
def test_the_json_shortcut_gives_json_loads_value_or_error(body: bytes) -> None:
    try:
        expected: object = json.loads(body)
    except ValueError as exc:
        expected = repr(exc)
    try:
        got: object = _json_body(body)
    except ValueError as exc:
        got = repr(exc)
    assert got == expected


def test_a_garbled_object_is_a_decode_error_as_before() -> None:
    read = read_answer(200, "application/json", b'{"OrderId": }')
    assert isinstance(read, tg.ResponseDecodeError)
    assert "Expecting value" in str(read)


def _answer(status: int, headers: dict[str, str]) -> HTTPAnswer:
    return HTTPAnswer(status, CIMultiDictProxy(CIMultiDict(headers)), b"{}")


def test_the_clock_is_read_only_for_a_retry_after() -> None:
    assert not reads_clock(_answer(200, {}))
    assert not reads_clock(_answer(503, {}))
    assert not reads_clock(_answer(404, {"Retry-After": "3"}))  # not retried: not read
    assert reads_clock(_answer(503, {"Retry-After": "Fri, 02 Jan 2026 03:04:15 GMT"}))
    assert not reads_clock(tg.TransportError("reset"))


def test_an_http_date_retry_after_is_measured_from_now() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    answer = _answer(503, {"Retry-After": "Fri, 02 Jan 2026 03:04:15 GMT"})
    verdict = decide_attempt(
        answer,
        Request("GET", URL(ENDPOINT), "scope"),
        lambda value: value,
        attempt=0,
        rules=RetryRules(3, PollPolicy.RETRY, 60.0),
        can_reauthenticate=False,
        now=now,
    )
    assert isinstance(verdict, Retry) and verdict.delay == 10.0


async def test_a_cancelled_lookup_is_counted_and_not_in_flight() -> None:
    # The attempt's one context (the watchdog) counts a caller's cancel, not its own timeout.
    async with FakeTelegent() as fake, fake.client(max_retries=0) as client:
        fake.add_order("JNUOID-slow", "Pending")
        fake.inject("stall")  # the server never answers this one
        task = asyncio.ensure_future(client.get_order("JNUOID-slow"))
        await wait_until(lambda: bool(fake.order_requests("JNUOID-slow")))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stats = client.stats
        lookups = stats.requests - stats.token_requests
        assert (lookups, stats.cancelled, stats.in_flight) == (1, 1, 0)


async def test_an_attempt_timeout_is_not_counted_as_a_cancel() -> None:
    async with FakeTelegent() as fake, fake.client(max_retries=0, timeout=0.2) as client:
        fake.add_order("JNUOID-slow", "Pending")
        fake.inject("stall")
        with pytest.raises(tg.TransportTimeoutError):
            await client.get_order("JNUOID-slow")
        stats = client.stats
        lookups = stats.requests - stats.token_requests
        assert (lookups, stats.cancelled, stats.in_flight) == (1, 0, 0)
