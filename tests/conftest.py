"""Shared fixtures: a FakeTelegent on 127.0.0.1 and clients bound to it with fast cadences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import telegent_async as tg
from telegent_async.testing import FakeTelegent

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
    return server.client(**options)


@pytest.fixture
async def client(fake: FakeTelegent) -> AsyncIterator[tg.TelegentClient]:
    async with fast_client(fake) as c:
        yield c
