"""Bad arguments fail fast with ValueError/TypeError, before anything reaches the server."""

from __future__ import annotations

import math
from typing import Any

import pytest
from helpers import fast_client

import telegent_async as tg
from telegent_async.testing import FakeTelegent

#: Marked into credentials below: no error message may echo it.
LEAKY = "s3cr3t-value"


pytestmark = pytest.mark.usefixtures("no_telegent_env")


@pytest.mark.parametrize(
    ("order_id", "error"),
    [
        ("", ValueError),
        ("   ", ValueError),
        ("\t\n", ValueError),
        (12345, TypeError),
        (None, TypeError),
        (b"JNUOID-1", TypeError),
        (["JNUOID-1"], TypeError),
        ("JNUOID-\x00", ValueError),
        ("JNUOID\n-1", ValueError),
        ("JNUOID-1\r\nX-Injected: 1", ValueError),
        ("\x1b[31mJNUOID-1", ValueError),
        ("JNUOID-\u2028", ValueError),
        ("J" * 10_000, ValueError),
        (" JNUOID-1", ValueError),
        ("JNUOID-1 ", ValueError),
    ],
)
async def test_bad_order_id_sends_nothing(
    fake: FakeTelegent, client: tg.TelegentClient, order_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        await client.get_order(order_id)
    assert len(str(caught.value)) < 300  # a 10,000-character ID is not echoed whole
    with pytest.raises(error):
        await client.get_orders(["JNUOID-fine", order_id])
    assert fake.requests == []


@pytest.mark.parametrize("order_ids", ["JNUOID-1", b"JNUOID-1", None, 42])
async def test_get_orders_wants_an_iterable_of_ids(
    fake: FakeTelegent, client: tg.TelegentClient, order_ids: Any
) -> None:
    with pytest.raises(TypeError):
        await client.get_orders(order_ids)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"timeout": -1.0}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": math.nan}, ValueError),
        ({"timeout": math.inf}, ValueError),
        ({"timeout": True}, TypeError),
        ({"timeout": "5"}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"max_connections": 0}, ValueError),
        ({"requests_per_minute": 0}, ValueError),
        ({"requests_per_minute": -1}, ValueError),
        ({"requests_per_minute": math.nan}, ValueError),
        ({"max_retry_after": 0}, ValueError),
        ({"retry_policy": "fast"}, TypeError),
        ({"session": "not a session"}, TypeError),
        ({"allow_insecure": "yes"}, TypeError),
        ({"allow_insecure": False}, ValueError),  # the fake is plain http
        ({"base_url": "http://example.com/v1.0"}, ValueError),  # insecure and not loopback
        ({"base_url": "http://127.0.0.1.example.com/v1.0"}, ValueError),
        ({"base_url": "not a url"}, ValueError),
        ({"base_url": "https://"}, ValueError),
        ({"base_url": "ftp://api.telegent.com/v1.0"}, ValueError),
        ({"base_url": f"https://user:{LEAKY}@api.telegent.com/v1.0"}, ValueError),
        ({"base_url": f"ftp://user:{LEAKY}@api.telegent.com/v1.0"}, ValueError),
        ({"base_url": f"https://user:{LEAKY}@"}, ValueError),
        ({"base_url": f"https://user:{LEAKY}@api.telegent.com:99999/v1.0"}, ValueError),
        ({"base_url": "https://api.telegent.com/v1.0?OrderId=x"}, ValueError),
        ({"base_url": "https://api.telegent.com/v1.0#top"}, ValueError),
        ({"base_url": 8080}, TypeError),
        ({"token": f"{LEAKY}\nX-Injected: 1"}, ValueError),
        ({"token": ""}, ValueError),
        ({"token": 12345}, TypeError),
        ({"account_secret": f"{LEAKY} with spaces"}, ValueError),
        ({"account_key": "DID-key\r\n"}, ValueError),
    ],
)
def test_bad_client_argument(fake: FakeTelegent, overrides: dict[str, Any], error: type) -> None:
    with pytest.raises(error) as caught:
        fast_client(fake, **overrides)
    assert LEAKY not in str(caught.value)
    assert fake.requests == []


def test_missing_credentials(fake: FakeTelegent) -> None:
    with pytest.raises(ValueError, match="no credentials"):
        tg.TelegentClient(base_url=fake.base_url, allow_insecure=True)
    with pytest.raises(ValueError, match=r"^account_secret is missing"):
        tg.TelegentClient(base_url=fake.base_url, allow_insecure=True, account_key="DID-1")
    with pytest.raises(ValueError, match=r"^account_key is missing"):
        tg.TelegentClient(account_secret="only-a-secret")
    assert fake.requests == []


@pytest.mark.parametrize(
    "base_url",
    ["http://localhost:1/v1.0", "http://[::1]:1/v1.0", "http://127.0.0.2:1/v1.0"],
)
def test_insecure_loopback_is_allowed_when_asked(base_url: str) -> None:
    client = tg.TelegentClient(token="t", base_url=base_url + "/", allow_insecure=True)
    assert str(client.base_url) == base_url  # the trailing slash is dropped


async def test_zero_retries_means_exactly_one_attempt(fake: FakeTelegent) -> None:
    fake.set_response("JNUOID-1", status=503, body='{"Message": "busy"}')
    async with fast_client(fake, max_retries=0) as client:
        with pytest.raises(tg.ServiceUnavailableError):
            await client.get_order("JNUOID-1")
    assert len(fake.order_requests("JNUOID-1")) == 1
