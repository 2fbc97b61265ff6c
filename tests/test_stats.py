"""`client.stats`: live counters for health endpoints and progress lines, over real sockets."""

from __future__ import annotations

import asyncio
import io

import attrs
import pytest
from helpers import fast_client, wait_until

import telegent_async as tg
from telegent_async._stats import retry_reason
from telegent_async.cli._outcomes import Run, Tally
from telegent_async.cli._terminal import Console, Progress
from telegent_async.testing import FakeTelegent

ORDER = "JNUOID-stats"


async def test_a_new_client_counts_nothing_and_shows_its_budget(fake: FakeTelegent) -> None:
    async with fast_client(fake, requests_per_minute=50) as client:
        stats = client.stats
    assert stats == tg.ClientStats(
        requests=0,
        responses={},
        retries={},
        token_requests=0,
        rate_limit_pauses=0,
        budget_rate=50.0,
        budget_paused_for=0.0,
    )
    async with fast_client(fake, requests_per_minute=None) as client:
        assert client.stats.budget_rate is None


async def test_requests_answers_and_tokens_are_counted(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, "Complete")
    async with fast_client(fake) as client:
        await client.get_order(ORDER)
        await client.get_order(ORDER)
        with pytest.raises(tg.NotFoundError):
            await client.get_order("JNUOID-unknown")
        stats = client.stats
    assert stats.requests == 4 == fake.request_count  # one token request, three lookups
    assert stats.token_requests == 1
    assert dict(stats.responses) == {"2xx": 3, "4xx": 1}
    assert stats.retries == {}
    assert stats.in_flight == 0


async def test_retries_are_counted_by_reason(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, "Complete")
    # An attempt timeout that a stall (5 s) outlasts, and a loaded machine's answer does not.
    async with fast_client(fake, timeout=0.4, max_retries=5) as client:
        await client.get_order(ORDER)  # the token first, so the faults below hit lookups
        fake.inject("503", count=2)
        fake.inject("stall")
        fake.inject("malformed")
        await client.get_order(ORDER)
        fake.revoke_tokens()
        await client.get_order(ORDER)  # 401, a new token, then the answer
        stats = client.stats
    assert dict(stats.retries) == {
        "503": 2,
        "timeout": 1,
        "undecodable": 1,
        "401": 1,
    }
    assert stats.token_requests == 2
    assert stats.responses["5xx"] == 2 and stats.responses["4xx"] == 1
    assert stats.responses["no answer"] == 1  # the stall
    assert stats.requests == sum(stats.responses.values())


async def test_a_429_pause_shows_while_it_lasts(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, "Complete")
    fake.inject("429", retry_after="0.25")
    async with fast_client(fake, requests_per_minute=6000) as client:
        with pytest.raises(tg.RateLimitError):
            await client.get_order(ORDER, max_retries=0)
        during = client.stats
        await wait_until(lambda: client.stats.budget_paused_for == 0.0, 1.0)  # the pause ends
    assert during.rate_limit_pauses == 1
    assert 0.1 < during.budget_paused_for <= 0.25
    assert during.budget_rate is not None and 0 < during.budget_rate <= 6000.0


async def test_a_snapshot_is_frozen_and_in_flight_requests_show(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, "Complete")
    fake.inject("stall")
    async with fast_client(fake, timeout=5.0) as client:
        lookup = asyncio.create_task(client.get_order(ORDER, max_retries=0))
        await wait_until(lambda: client.stats.requests == 2)  # the token, then the stalled lookup
        stats = client.stats
        lookup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lookup
    assert stats.in_flight == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.requests = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.retries["x"] = 1  # type: ignore[index]
    assert client.stats.requests == 2  # the snapshot read earlier did not move


def test_retry_reasons_are_few_and_fixed() -> None:
    assert retry_reason(tg.ServiceUnavailableError(503, "busy")) == "503"
    assert retry_reason(tg.TransportTimeoutError("slow")) == "timeout"
    assert retry_reason(tg.TransportError("refused")) == "connection"
    assert retry_reason(tg.ResponseDecodeError("html", status_code=200, body="")) == "undecodable"


async def test_the_cli_progress_line_reads_the_stats(
    fake: FakeTelegent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    fake.add_order(ORDER, "Complete")
    fake.inject("503")
    fake.inject("429", retry_after="5")
    async with fast_client(fake, requests_per_minute=600) as client:
        with pytest.raises(tg.RateLimitError):
            await client.get_order(ORDER, max_retries=1)
        run = Run("wait", Tally([ORDER]))
        line = Progress(Console(io.StringIO()), run, client, waiting=True).line()
    assert "3 requests" in line  # the token, the 503, the 429
    assert "1 retried" in line
    assert "paused 5.0 s by 429" in line or "paused 4.9 s by 429" in line
