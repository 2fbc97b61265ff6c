"""Shared fixtures: a FakeTelegent on 127.0.0.1 and clients bound to it with fast cadences."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import telegent_async as tg
from telegent_async.testing import FakeTelegent, RedisServer

#: Retries and polls in milliseconds, so time-dependent tests stay fast.
FAST_RETRY = tg.PollPolicy(initial=0.005, factor=2.0, max_interval=0.02, jitter=1.0)
FAST_POLL = tg.PollPolicy(initial=0.01, factor=2.0, max_interval=0.04, jitter=0.2)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent() as server:
        yield server


def fast_client(server: FakeTelegent, **overrides: Any) -> tg.TelegentClient:
    """A client of `server` with no budget, quick retries and a short attempt timeout."""
    options: dict[str, Any] = {
        "requests_per_minute": None,
        "retry_policy": FAST_RETRY,
        "timeout": 2.0,
    }
    options.update(overrides)
    if "budget" in overrides:
        del options["requests_per_minute"]
    return server.client(**options)


def spaced(requests_per_minute: float) -> tg.LocalBudget:
    """A budget of one request per window of 60 / rpm seconds: evenly spaced requests, the
    shape the timing tests of fairness, phantom slots and token pacing measure."""
    return tg.LocalBudget(requests_per_minute, window=60.0 / requests_per_minute)


@pytest.fixture
async def client(fake: FakeTelegent) -> AsyncIterator[tg.TelegentClient]:
    async with fast_client(fake) as c:
        yield c


# -- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; without the binary (or redis-py) Redis tests skip."""
    pytest.importorskip("redis", reason="redis-py is not installed: pip install -e '.[test]'")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found on PATH: apt-get install redis-server (or brew)")
    with RedisServer(workdir=str(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    """A namespace of its own per test, so tests sharing the server never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"
