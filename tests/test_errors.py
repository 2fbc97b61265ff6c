"""Every error status the API documents becomes its own exception class, with the server's words.

The mapping is checked twice: purely (`error_for_status`) and over real sockets against the
fake, where the body may also be HTML, empty, a redirect or far too large.
"""

from __future__ import annotations

import gzip
import json

import pytest
from helpers import fast_client

import telegent_async as tg
from telegent_async._status import error_for_status
from telegent_async.testing import FakeTelegent, FaultKind

#: Each documented status (plus a gateway's 502) and the class a caller catches.
STATUS_CLASSES: dict[int, type[tg.APIStatusError]] = {
    400: tg.BadRequestError,
    401: tg.AuthenticationError,
    403: tg.PermissionDeniedError,
    404: tg.NotFoundError,
    405: tg.MethodNotAllowedError,
    408: tg.RequestTimeoutError,
    429: tg.RateLimitError,
    500: tg.InternalServerError,
    502: tg.ServerError,
    503: tg.ServiceUnavailableError,
    504: tg.GatewayTimeoutError,
}
ORDER_ID = "JNUOID-errors"


async def _error_from(fake: FakeTelegent, status: int, body: str, content_type: str) -> Exception:
    """The exception one lookup raises when the server answers `status` with `body`."""
    fake.set_response(ORDER_ID, status=status, body=body, content_type=content_type)
    async with fast_client(fake, max_retries=0) as client:
        with pytest.raises(tg.TelegentError) as caught:
            await client.get_order(ORDER_ID)
    return caught.value


# -- pure mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "cls"), sorted(STATUS_CLASSES.items()))
def test_error_for_status_maps_each_documented_code(
    status: int, cls: type[tg.APIStatusError]
) -> None:
    error = error_for_status(status, "words", {"Message": "words"}, retry_after=2.0)
    assert type(error) is cls
    assert (error.status_code, error.message, error.body) == (status, "words", {"Message": "words"})
    assert str(error) == f"HTTP {status}: words"


def test_error_for_status_fallbacks_and_hierarchy() -> None:
    assert type(error_for_status(418, "teapot")) is tg.APIStatusError
    assert type(error_for_status(599, "odd")) is tg.ServerError
    limited = error_for_status(429, "slow down", retry_after=7.5)
    assert isinstance(limited, tg.RateLimitError) and limited.retry_after == 7.5
    for cls in (*STATUS_CLASSES.values(), tg.TransportError, tg.ResponseDecodeError):
        assert issubclass(cls, tg.TelegentError)
    for cls in (tg.InternalServerError, tg.ServiceUnavailableError, tg.GatewayTimeoutError):
        assert issubclass(cls, tg.ServerError)


def test_response_decode_error_keeps_a_short_excerpt() -> None:
    error = tg.ResponseDecodeError("not an order", status_code=200, body="x" * 2000)
    assert error.status_code == 200
    assert error.body == "x" * 500
    assert len(str(error)) < 200


# -- over sockets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "cls"), sorted(STATUS_CLASSES.items()))
async def test_json_error_body_gives_class_status_and_message(
    fake: FakeTelegent, status: int, cls: type[tg.APIStatusError]
) -> None:
    message = f"server says {status}"
    body = json.dumps({"StatusCode": status, "Message": message})
    error = await _error_from(fake, status, body, "application/json")
    assert type(error) is cls
    assert isinstance(error, tg.APIStatusError)
    assert (error.status_code, error.message) == (status, message)
    assert error.body == {"StatusCode": status, "Message": message}
    assert message in str(error)


@pytest.mark.parametrize("status", [404, 500, 502, 503])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body><h1>Bad Gateway</h1></body></html>", "text/html"),
        ("", "text/plain"),
        ("   ", None),
        ('{"StatusCode": 500, "Message": 42}', "application/json"),
        ("[1, 2]", "application/json"),
    ],
)
async def test_html_empty_or_odd_error_body_still_gives_the_class(
    fake: FakeTelegent, status: int, body: str, content_type: str | None
) -> None:
    error = await _error_from(fake, status, body, content_type or "")
    # A 404 without Telegent's JSON error object is no answer about an order: a routing miss.
    expected = tg.EndpointNotFoundError if status == 404 else STATUS_CLASSES[status]
    assert type(error) is expected
    assert isinstance(error, tg.APIStatusError)
    assert error.status_code == status
    assert "(non-JSON error body: " in error.message or "(no error message)" in error.message
    assert isinstance(error.body, str) and len(error.body) <= 500


async def test_long_error_message_is_capped(fake: FakeTelegent) -> None:
    body = json.dumps({"StatusCode": 400, "Message": "m" * 5000})
    error = await _error_from(fake, 400, body, "application/json")
    assert isinstance(error, tg.BadRequestError)
    assert error.message == "m" * 500


async def test_html_502_fault_is_retried_then_a_server_error(fake: FakeTelegent) -> None:
    fake.inject("html", count=3)
    async with fast_client(fake, max_retries=2) as client:
        with pytest.raises(tg.ServerError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.status_code == 502
    assert "502 Bad Gateway" in str(caught.value.body)
    assert len(fake.order_requests(ORDER_ID)) == 3


async def test_redirect_is_not_followed(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject("redirect")
    async with fast_client(fake) as client:
        with pytest.raises(tg.APIStatusError) as caught:
            await client.get_order(ORDER_ID)
    assert type(caught.value) is tg.APIStatusError
    assert caught.value.status_code == 302
    # One request: no retry, and nothing went to the Location (which would be a 404 logged).
    assert [r.path for r in fake.requests if r.method == "GET"] == ["/v1.0/numbers/order"]


async def test_huge_body_is_refused(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject("huge")
    async with fast_client(fake) as client:
        with pytest.raises(tg.ResponseDecodeError) as caught:
            await client.get_order(ORDER_ID)
        assert caught.value.status_code == 200
        assert len(caught.value.body) <= 500
        # The client stays usable: the oversized answer's connection was dropped, not reused.
        assert (await client.get_order(ORDER_ID)).succeeded
    assert len(fake.order_requests(ORDER_ID)) == 2


async def test_compressed_body_is_capped_once_inflated(fake: FakeTelegent) -> None:
    """Content-Length counts gzip bytes (~20 KiB here), so only the inflated size is a limit."""
    order = {"OrderId": ORDER_ID, "OrderStatus": "Complete", "Padding": "x" * (20 << 20)}
    bomb = gzip.compress(json.dumps(order).encode())
    assert len(bomb) < 100_000
    fake.set_response(ORDER_ID, body=bomb, headers={"Content-Encoding": "gzip"})
    async with fast_client(fake) as client:
        with pytest.raises(tg.ResponseDecodeError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.status_code == 200


@pytest.mark.parametrize("kind", ["malformed", "empty"])
async def test_malformed_or_empty_200_is_a_decode_error(
    fake: FakeTelegent, kind: FaultKind
) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject(kind, count=3)
    async with fast_client(fake, max_retries=2) as client:
        with pytest.raises(tg.ResponseDecodeError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.status_code == 200
    assert len(fake.order_requests(ORDER_ID)) == 3  # retried like a 5xx, then reported
