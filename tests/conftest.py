"""Shared fixtures: a FakeTelegent on 127.0.0.1 and a client bound to it with fast cadences.

Helpers (fast_client, wait_until, the CLI runner...) live in helpers.py, never here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from helpers import fast_client

import telegent_async as tg
from telegent_async.testing import FakeTelegent


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent() as server:
        yield server


@pytest.fixture
async def client(fake: FakeTelegent) -> AsyncIterator[tg.TelegentClient]:
    async with fast_client(fake) as c:
        yield c
