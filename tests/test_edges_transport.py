"""Issue 9, the transport's edges: what a request is sent to and what an answer is taken for.

Over real sockets (FakeTelegent on 127.0.0.1) except the pure parsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from helpers import FAST_POLL, fast_client

import telegent_async as tg
from telegent_async._models import parse_status
from telegent_async._timing import parse_retry_after
from telegent_async.testing import FakeTelegent, FaultKind

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


# -- item 2: an answer about another order ------------------------------------------------------


async def test_answer_about_another_order_is_a_decode_error(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Complete", extra={"OrderId": "JNUOID-someone-else"})
    async with fast_client(fake, max_retries=1) as client:
        with pytest.raises(tg.ResponseDecodeError, match="JNUOID-someone-else") as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.status_code == 200
    assert len(fake.order_requests(ORDER_ID)) == 2  # asked again once, like any garbled answer


async def test_order_id_compared_ignoring_case_and_spaces(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Complete", extra={"OrderId": f"  {ORDER_ID.lower()} "})
    async with fast_client(fake, max_retries=0) as client:
        assert (await client.get_order(ORDER_ID)).succeeded


@pytest.mark.parametrize(
    "body", [{"OrderStatus": "Complete"}, {"OrderId": None, "OrderStatus": "Complete"}]
)
async def test_answer_without_order_id_is_the_order_asked_for(
    fake: FakeTelegent, body: dict[str, object]
) -> None:
    fake.set_response(ORDER_ID, body=json.dumps(body))
    async with fast_client(fake, max_retries=0) as client:
        order = await client.get_order(ORDER_ID)
    assert order.order_id == ORDER_ID and order.succeeded
    assert order.raw == body  # the JSON as received


# -- item 3: an error body inside a 200 ---------------------------------------------------------


def _error_inside_200(fake: FakeTelegent, status: int) -> None:
    body = {"StatusCode": status, "Message": f"inside a 200: {status}"}
    fake.set_response(ORDER_ID, body=json.dumps(body))


async def test_404_inside_a_200_ends_a_wait_at_once(fake: FakeTelegent) -> None:
    _error_inside_200(fake, 404)
    async with fast_client(fake) as client:
        with pytest.raises(tg.NotFoundError, match="inside a 200: 404") as caught:
            await client.wait_for_order(ORDER_ID, timeout=1.0, policy=FAST_POLL)
    assert caught.value.status_code == 404
    assert len(fake.order_requests(ORDER_ID)) == 1


async def test_5xx_inside_a_200_is_retried_and_stays_transient(fake: FakeTelegent) -> None:
    _error_inside_200(fake, 503)
    async with fast_client(fake, max_retries=2) as client:
        with pytest.raises(tg.ServiceUnavailableError):
            await client.get_order(ORDER_ID)
        assert len(fake.order_requests(ORDER_ID)) == 3  # like a real 503: retried twice
        with pytest.raises(tg.OrderWaitTimeout) as caught:
            await client.wait_for_order(ORDER_ID, timeout=0.1, policy=FAST_POLL)
    assert isinstance(caught.value.__cause__, tg.ServiceUnavailableError)


# -- item 4: an undecodable 2xx answer to a GET is retried like a 5xx ---------------------------


@pytest.mark.parametrize("kind", ["malformed", "empty"])
async def test_garbled_200_is_retried_then_answered(fake: FakeTelegent, kind: FaultKind) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject(kind, count=2)
    policy = tg.PollPolicy(initial=0.05, factor=2.0, max_interval=1.0, jitter=0.0)
    async with fast_client(fake, retry_policy=policy) as client:
        assert (await client.get_order(ORDER_ID)).succeeded
    arrivals = [r.at for r in fake.order_requests(ORDER_ID)]
    assert [r.status for r in fake.order_requests(ORDER_ID)] == [200, 200, 200]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # the retry backoff: 0.05 s, then 0.1 s


async def test_garbled_200_is_reported_after_max_retries(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject("malformed", count=5)
    async with fast_client(fake, max_retries=3) as client:
        with pytest.raises(tg.ResponseDecodeError):
            await client.get_order(ORDER_ID)
    assert len(fake.order_requests(ORDER_ID)) == 4


# -- item 12: a caller's session with a small pool ----------------------------------------------


@pytest.mark.parametrize("connector_options", [{"limit": 2}, {"limit": 100, "limit_per_host": 2}])
async def test_a_small_pool_of_the_callers_session_caps_concurrency(
    connector_options: dict[str, Any],
) -> None:
    """Pool of 2, max_connections=20, 8 lookups that take 0.08 s each: waiting for a pooled
    connection (0.24 s for the last two) must not count against the 0.25 s attempt timeout."""
    ids = [f"JNUOID-pool-{n}" for n in range(8)]
    async with (
        FakeTelegent(default_status="Complete", stall_seconds=0.08) as fake,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(**connector_options)) as session,
    ):
        fake.inject("stall", count=len(ids))
        client = fast_client(fake, session=session, max_connections=20, timeout=0.25, max_retries=0)
        assert client.max_connections == 2
        async with client:
            outcomes = await client.get_orders(ids)
        assert [o.error for o in outcomes if o.error is not None] == []
        assert all(o.ok for o in outcomes)
        assert not session.closed  # the caller's session is the caller's to close
    assert fake.peak_connections <= 2


async def test_an_unlimited_pool_keeps_max_connections(fake: FakeTelegent) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        assert fast_client(fake, session=session, max_connections=7).max_connections == 7


# -- smaller: the unknown-status log memory is an LRU -------------------------------------------


def test_unknown_statuses_are_logged_once_while_remembered_and_new_ones_always(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever ran before: 300 new statuses (more than the 256 remembered) all log once."""
    run = uuid.uuid4().hex[:8]
    statuses = [f"Odd-{run}-{n}" for n in range(300)]

    def logged(*raws: str) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="telegent_async"):
            for raw in raws:
                assert parse_status(raw) is tg.OrderStatus.UNKNOWN
        return [r.getMessage() for r in caplog.records]

    assert len(logged(*statuses)) == 300
    assert logged(statuses[-1], statuses[-256]) == []  # still remembered: not logged again
    assert len(logged(statuses[0])) == 1  # forgotten (least recently seen): logged again
    assert len(logged(f"Odd-{run}-new")) == 1


# -- smaller: telegent-orders on a closed stdout pipe -------------------------------------------


@pytest.mark.parametrize("mode", [(), ("--json",)])
async def test_cli_on_a_closed_stdout_pipe_exits_141_quietly(
    fake: FakeTelegent, mode: tuple[str, ...]
) -> None:
    """`telegent-orders get ... | head -c0`: not 1 (failed orders), but 128 + SIGPIPE."""
    fake.add_order(ORDER_ID, "Complete")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGENT_")}
    env.update(
        TELEGENT_BASE_URL=fake.base_url,
        TELEGENT_ACCOUNT_KEY=fake.account_key,
        TELEGENT_ACCOUNT_SECRET=fake.account_secret,
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "telegent_async", "get", "--insecure", "--rate", "60000",
            *mode, ORDER_ID,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
    finally:
        os.close(write_end)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 141, err.decode()
    assert "Traceback" not in err.decode() and "Unclosed" not in err.decode()
    assert len(fake.order_requests(ORDER_ID)) == 1  # the lookup ran; only its report was lost
