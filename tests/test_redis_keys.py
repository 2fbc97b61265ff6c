"""Key layout of RedisStore and RedisBudget (pure): one hash tag per namespace or budget name,
so every key a Lua script touches lives in one Redis Cluster slot; and how their commands are
awaited (`cancellable`)."""

from __future__ import annotations

import asyncio
import sys

import attrs
import pytest

from telegent_async._budgets.redis import redis_budget_keys
from telegent_async._redis_connection import cancellable
from telegent_async._stores.redis_scripts import redis_keys


def test_every_key_of_a_namespace_shares_its_hash_tag() -> None:
    keys = attrs.asdict(redis_keys("acme"))
    assert all(key.startswith("{acme}:") for key in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert attrs.asdict(redis_keys("other")).keys() == keys.keys()
    assert not set(attrs.asdict(redis_keys("other")).values()) & set(keys.values())


def test_every_key_of_a_budget_shares_its_hash_tag() -> None:
    keys = attrs.asdict(redis_budget_keys("acme"))
    assert all(key.startswith("{telegent-budget:acme}:") for key in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert not set(keys.values()) & set(attrs.asdict(redis_keys("acme")).values())


@pytest.mark.parametrize("name", ["", "a{b", "a}b", "tab\there"])
def test_names_that_would_break_the_hash_tag_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="braces"):
        redis_keys(name)
    with pytest.raises(ValueError, match="braces"):
        redis_budget_keys(name)
    with pytest.raises(TypeError):
        redis_keys(b"acme")  # type: ignore[arg-type]


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="asyncio.wait_for keeps a cancel from 3.12: a plain await"
)
async def test_a_cancel_a_redis_command_would_swallow_still_cancels_the_caller() -> None:
    # Before 3.12, redis-py's `asyncio.wait_for` (socket_timeout) can swallow a cancel that
    # lands as the command completes; this command swallows every cancel, as that race does.
    async def swallowing() -> str:  # a command that answers in 0.2 s, whatever happens
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            return "answered"
        return "answered"

    answers: list[str] = []

    async def caller() -> None:
        answers.append(await cancellable(swallowing()))  # the command's answer is not lost
        await asyncio.sleep(5)  # and the cancel lands at the next await

    task = asyncio.ensure_future(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=2.0)
    assert task.cancelled()  # not still sleeping, as after a plain await
    assert answers == ["answered"]
