"""Fuzzing: whatever the server answers, only typed SDK errors come out.

Bodies, Retry-After headers and status texts come from hypothesis, both through the pure
decoders and over a real socket from one shared FakeTelegent (`set_response`). The contract
under test: an `Order` or a `TelegentError` subclass, never a KeyError, UnicodeError,
RecursionError or aiohttp exception; `decode_carrier_message` never raises at all.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Coroutine, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, TypeVar

import pytest
from helpers import decode_order, fast_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telegent_async as tg
from telegent_async._models import converter
from telegent_async._timing import parse_retry_after
from telegent_async.testing import FakeTelegent

T = TypeVar("T")
FUZZ_ID = "JNUOID-fuzz"
#: Pure functions: cheap, so more examples than hypothesis's 100. Over the socket: a few dozen.
#: Both sized so the file costs well under a second of the fast part of the suite.
PURE = settings(max_examples=150, deadline=None, database=None)
WIRE = settings(
    max_examples=40,
    deadline=None,
    database=None,
    # The fixture is shared on purpose: one server for all examples (see Wire).
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: Retry-After is capped by the client; a tiny cap keeps every fuzzed pause short.
MAX_RETRY_AFTER = 0.01
NOW = datetime(2025, 5, 2, 18, 36, 13, tzinfo=timezone.utc)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
order_fields = st.sampled_from(
    [
        "OrderId",
        "OrderStatus",
        "OrderStatusMessage",
        "OrderDate",
        "OrderType",
        "PhoneNumbersOrdered",
        "PhoneNumberAssigned",
        "ErrorMessage",
    ]
)
#: Objects that look like orders, with any value in any field: the decoder's hard cases.
order_like = st.dictionaries(order_fields | st.text(max_size=8), json_values, max_size=8).map(
    lambda fields: {"OrderId": FUZZ_ID, "OrderStatus": "Error", **fields}
)
bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    order_like.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=600),  # past the 500-character body excerpt
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
)
#: Header values a server can send: printable ASCII and Latin-1/Unicode letters, no CR/LF.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=["Cc"]),
    max_size=70,
)
http_dates = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda when: format_datetime(when.replace(tzinfo=timezone.utc), usegmt=True)
)
retry_after_values = st.one_of(
    header_text,
    http_dates,
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["1e400", "-1", "-0", "nan", "inf", "-inf", " 5 ", "0x10", "1_000", "٣"]),
)


class Wire:
    """One FakeTelegent and one client on a private loop, shared by every example of a test.

    Hypothesis runs examples synchronously; a fresh server per example would cost more than
    the example itself, so the loop lives as long as the test.
    """

    def __init__(self, **client_options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.fake = FakeTelegent(default_status="Complete")
        self.run(self.fake.start())
        self.client = self.run(self._client(client_options))

    async def _client(self, options: dict[str, Any]) -> tg.TelegentClient:
        return await fast_client(self.fake, **options).__aenter__()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.fake.close())
        self.loop.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    shared = Wire(max_retries=0, max_retry_after=MAX_RETRY_AFTER)
    yield shared
    shared.close()


def check_typed(error: BaseException) -> None:
    """A typed error whose text and repr can be printed (a __str__ that raises hides the bug)."""
    assert isinstance(error, tg.TelegentError), f"{type(error).__name__} escaped: {error!r}"
    str(error)
    repr(error)


def check_order(order: tg.Order) -> None:
    assert isinstance(order.order_id, str) and order.order_id
    assert isinstance(order.status, tg.OrderStatus)
    assert isinstance(order.raw_status, str)
    assert all(isinstance(number, str) for number in order.phone_numbers)
    assert order.order_date is None or order.order_date.tzinfo is not None
    assert order.succeeded == (order.status is tg.OrderStatus.COMPLETE)
    if order.succeeded:
        assert order.raise_for_status() is order
    else:
        with pytest.raises(tg.OrderFailed):
            order.raise_for_status()
    json.dumps(converter.unstructure(order))  # JSON-ready whatever came in


def decode_or_typed_error(body: bytes) -> None:
    """An Order whose raw is the object sent, or a typed error (a decode error bounded)."""
    try:
        order = decode_order(200, body)
    except Exception as error:
        check_typed(error)
        if isinstance(error, tg.ResponseDecodeError):
            assert error.status_code == 200
            assert len(error.body) <= 500
            assert body.decode("utf-8", "replace").startswith(error.body)
    else:
        check_order(order)
        assert json.dumps(order.raw) == json.dumps(json.loads(body))  # NaN-safe equality


# -- bodies -----------------------------------------------------------------------------------


@PURE
@given(body=bodies)
def test_decode_order_of_any_body_is_an_order_or_a_typed_error(body: bytes) -> None:
    decode_or_typed_error(body)


@WIRE
@given(
    body=bodies,
    status=st.sampled_from([200, 200, 200, 400, 401, 403, 404, 408, 418, 429, 500, 502, 503]),
    content_type=st.sampled_from(["application/json", "text/html", "text/plain", None]),
)
def test_any_served_body_is_an_order_or_a_typed_error(
    wire: Wire, body: bytes, status: int, content_type: str | None
) -> None:
    wire.fake.set_response(FUZZ_ID, status=status, body=body, content_type=content_type)
    try:
        order = wire.run(wire.client.get_order(FUZZ_ID))
    except Exception as error:
        check_typed(error)
        if status != 200:
            assert isinstance(error, tg.APIStatusError) and error.status_code == status
    else:
        assert status == 200
        check_order(order)


# -- Retry-After ------------------------------------------------------------------------------


@PURE
@given(value=retry_after_values | st.none())
def test_parse_retry_after_is_none_or_a_finite_non_negative_delay(value: str | None) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@PURE
@given(offset=st.integers(-(10**9), 10**6))
def test_parse_retry_after_dates_count_from_now_and_past_ones_mean_now(offset: int) -> None:
    when = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(when, NOW) == max(0, offset)


@WIRE
@given(value=retry_after_values)
def test_any_served_retry_after_gives_a_rate_limit_error_and_a_capped_pause(
    wire: Wire, value: str
) -> None:
    wire.fake.set_response(
        FUZZ_ID, status=429, body=b'{"Message": "slow down"}', headers={"Retry-After": value}
    )
    loop = wire.loop
    with pytest.raises(tg.RateLimitError) as caught:
        wire.run(wire.client.get_order(FUZZ_ID))
    delay = caught.value.retry_after
    assert delay is None or (math.isfinite(delay) and delay >= 0)
    assert wire.client.budget.paused_until <= loop.time() + MAX_RETRY_AFTER


# -- status texts and carrier messages ----------------------------------------------------------


@PURE
@given(
    status=st.text(max_size=40)
    | st.sampled_from(["Complete", "completed", "ERROR", "Pending Carrier Approval", "Failed"]),
    message=st.none() | st.text(max_size=120),
)
def test_any_status_and_message_decode_to_an_order(status: str, message: str | None) -> None:
    body = {"OrderId": FUZZ_ID, "OrderStatus": status, "OrderStatusMessage": message}
    order = decode_order(200, json.dumps(body).encode())
    check_order(order)
    assert order.raw_status == status
    assert order.status_message == (message or None)  # an empty message is no message
    assert converter.structure(body, tg.Order) == order
    if order.status in (tg.OrderStatus.ERROR, tg.OrderStatus.REJECTED):
        has_text = message is not None and bool(message.strip())
        assert (order.carrier_error is not None) == has_text


carrier_like = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"\A\s*[0-9][A-Za-z][\s\-:\u2013\u2014]{0,3}.{0,60}\Z"),
    st.from_regex(r"\A\s*[A-Za-z]{2,10}-[0-9]{3,10}[\s\-:]{0,3}.{0,60}\Z"),
)


@PURE
@given(text=carrier_like | st.none())
def test_decode_carrier_message_is_total(text: str | None) -> None:
    decoded = tg.decode_carrier_message(text)
    if text is None or not text.strip():
        assert decoded is None
        return
    assert isinstance(decoded, tg.CarrierError)
    assert decoded.raw == text
    assert isinstance(decoded.fixable_by_update, bool)
    assert decoded.code is None or decoded.code in text.upper()
