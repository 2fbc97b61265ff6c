"""Issue 9, the transport's edges: what a request is sent to and what an answer is taken for.

Over real sockets (FakeTelegent on 127.0.0.1) except the pure parsers.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from conftest import fast_client

import telegent_async as tg
from telegent_async._timing import parse_retry_after
from telegent_async.testing import FakeTelegent

ORDER_ID = "JNUOID-edges"
NOW = datetime(2025, 5, 2, 18, 30, tzinfo=timezone.utc)


# -- item 7: a base URL without a path -----------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "//"])
async def test_root_base_url_joins_paths_with_one_slash(fake: FakeTelegent, suffix: str) -> None:
    root = f"http://127.0.0.1:{fake.port}{suffix}"
    async with fast_client(fake, base_url=root, max_retries=0) as client:
        with pytest.raises(tg.TelegentError):
            await client.get_order(ORDER_ID)  # the fake serves /v1.0 only: a 404 on the token
    async with fast_client(fake, base_url=root, token="t0k3n", max_retries=0) as client:
        with pytest.raises(tg.NotFoundError):
            await client.get_order(ORDER_ID)
    assert [r.path for r in fake.requests] == ["/oauth2/tokens", "/numbers/order"]


# -- item 8: Retry-After is delta-seconds or an HTTP date, nothing else float() takes -----------


@pytest.mark.parametrize(
    "value", ["1_000", "1e3", "+5", "-0", "0x10", "١٢", "5 s", "1.", ".5", "NaN", "Infinity"]
)
def test_retry_after_accepts_only_digits_or_a_date(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize(("value", "expected"), [("1000", 1000.0), ("007", 7.0), ("0.25", 0.25)])
def test_retry_after_digits(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


async def test_underscored_retry_after_falls_back_to_the_backoff(fake: FakeTelegent) -> None:
    """`Retry-After: 1_000` is garbage: the retry follows the client's quick backoff."""
    fake.add_order(ORDER_ID, "Complete")
    fake.inject("503", retry_after="1_000")
    async with fast_client(fake, max_retry_after=30.0) as client:
        order = await asyncio.wait_for(client.get_order(ORDER_ID), 2.0)
    assert order.succeeded
    assert [r.status for r in fake.order_requests(ORDER_ID)] == [503, 200]
