"""Key layout of RedisStore and RedisBudget (pure): one hash tag per namespace or budget name,
so every key a Lua script touches lives in one Redis Cluster slot; and how their commands are
awaited (`cancellable`)."""

from __future__ import annotations

import asyncio
import contextlib

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


async def test_a_commands_answer_survives_a_cancel_that_lands_while_it_runs() -> None:
    # Redis has run the command (a claim: its watches are leased now) and its answer is on the
    # way when the caller is cancelled: the answer is handed back, the cancel lands after it.
    async def claiming() -> str:
        await asyncio.sleep(0.05)
        return "claimed"

    answers: list[str] = []

    async def caller() -> None:
        answers.append(await cancellable(claiming()))
        await asyncio.sleep(5)

    task = asyncio.ensure_future(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=2.0)
    assert task.cancelled()
    assert answers == ["claimed"]


async def test_a_cancel_lands_though_command_after_command_would_swallow_it() -> None:
    # A consumer that only awaits commands (read, acknowledge, read...): the cancel requested
    # again after the first must not be swallowed by the second (it was, on 3.11).
    async def swallowing() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)
        return "answered"

    answers: list[str] = []

    async def consumer() -> None:
        while len(answers) < 100:
            answers.append(await cancellable(swallowing()))

    task = asyncio.ensure_future(consumer())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=2.0)
    assert task.cancelled()
    assert answers == ["answered"]  # the command under way answered; no other one started


async def test_a_command_failing_after_a_cancel_still_cancels_the_caller() -> None:
    # Redis went away as the caller was cancelled: the cancel, not the transient fault (which
    # an outage policy would retry, forever), is what the caller sees.
    async def failing() -> str:
        await asyncio.sleep(0.05)
        raise ConnectionError("Redis went away")

    task = asyncio.ensure_future(cancellable(failing()))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=2.0)
    assert task.cancelled()
