"""`OrderWatcher` in one process, over real sockets, on a memory and an SQLite store."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone

import pytest
from helpers import FAST_POLL, fast_client, per_poll, wait_until

import telegent_async as tg
from telegent_async._redis_connection import cancellable
from telegent_async._stores.base import Claim, PendingAnswer
from telegent_async._stores.memory import MemoryStore
from telegent_async.testing import FakeTelegent, Step

#: A policy whose next poll lies far beyond any test: only a wake or a deadline brings it.
SLOW = tg.PollPolicy(initial=30.0, factor=2.0, max_interval=30.0, jitter=0.0)
STEADY = tg.PollPolicy(initial=0.05, factor=1.0, max_interval=0.05, jitter=0.0)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> tg.MemoryStore | str:
    return tg.MemoryStore() if request.param == "memory" else str(tmp_path / "watches.db")


@pytest.fixture
async def watcher(
    fake: FakeTelegent, store: tg.MemoryStore | str
) -> AsyncIterator[tg.OrderWatcher]:
    async with (
        fast_client(fake) as client,
        tg.OrderWatcher(client, store, policy=FAST_POLL) as running,
    ):
        yield running


def stored_bytes(directory: pathlib.Path) -> bytes:
    """Every byte the store wrote (database, WAL and shared-memory files)."""
    return b"".join(path.read_bytes() for path in directory.iterdir())


async def next_outcome(watcher: tg.OrderWatcher, **kwargs: bool) -> tg.OrderOutcome:
    async for outcome in watcher.settled(**kwargs):
        return outcome
    raise AssertionError("settled() ended")


async def test_wait_returns_the_settled_order_and_settled_delivers_it(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    fake.add_order("JNOID-1", [Step("Submitted"), Step("Completed", 0.05)])
    assert await watcher.add("JNOID-1", tag="ticket-42")
    assert not await watcher.add("JNOID-1", tag="ignored")  # already watched: unchanged
    order = await watcher.wait("JNOID-1", timeout=5.0)
    assert order.succeeded
    outcome = await asyncio.wait_for(next_outcome(watcher), 5.0)
    assert (outcome.order_id, outcome.tag, outcome.ok) == ("JNOID-1", "ticket-42", True)
    state = await watcher.get("JNOID-1")
    assert state is not None
    assert (state.settled, state.status, state.tag) == (True, tg.OrderStatus.COMPLETE, "ticket-42")
    assert not state.acknowledged  # the loop never asked for the next one
    assert state.attempts == len(fake.order_requests("JNOID-1")) >= 2


async def test_settled_acknowledges_when_asked_for_the_next(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    fake.add_order("JNOID-1", "Completed")
    fake.add_order("JNOID-2", "Rejected")
    assert await watcher.add_many(["JNOID-1", "JNOID-2", "JNOID-1"]) == 2
    seen = []
    async for outcome in watcher.settled():
        seen.append(outcome.order_id)
        if len(seen) == 2:
            first = await watcher.get(seen[0])
            assert first is not None and first.acknowledged
            second = await watcher.get(seen[1])
            assert second is not None and not second.acknowledged
            break
    assert sorted(seen) == ["JNOID-1", "JNOID-2"]
    # Not acknowledged (we broke out): delivered again; the first never again.
    again = await asyncio.wait_for(next_outcome(watcher, auto_ack=False), 5.0)
    assert again.order_id == seen[1]
    assert await watcher.ack(seen[1])
    assert not await watcher.ack(seen[1])


async def test_twenty_waiters_share_the_polls_of_one_order(
    fake: FakeTelegent, store: tg.MemoryStore | str
) -> None:
    async with (
        per_poll(fake, "JNOID-1", ["Submitted", "Completed"]),
        fast_client(fake) as client,
        tg.OrderWatcher(client, store, policy=STEADY) as watcher,
    ):
        orders = await asyncio.gather(*(watcher.wait("JNOID-1", timeout=5.0) for _ in range(20)))
    assert all(order.succeeded for order in orders)
    # Completed from the third poll on: shared, three polls in all; each waiter polling for
    # itself would have made 20 first polls.
    assert len(fake.order_requests("JNOID-1")) == 3


async def test_wake_polls_a_slow_order_within_a_second(
    fake: FakeTelegent, store: tg.MemoryStore | str
) -> None:
    fake.add_order("JNOID-1", "Submitted")
    async with (
        fast_client(fake) as client,
        tg.OrderWatcher(client, store, policy=tg.PollPolicy.PORT_IN) as watcher,
    ):
        await watcher.add("JNOID-1")
        await wait_until(lambda: len(fake.order_requests("JNOID-1")) == 1)
        fake.add_order("JNOID-1", "Completed")  # the webhook's news
        woken_at = time.monotonic()
        assert await watcher.wake("JNOID-1")
        order = await watcher.wait("JNOID-1", timeout=1.0)
    assert order.succeeded
    second = fake.order_requests("JNOID-1")[1]
    assert second.at - woken_at < 1.0
    assert len(fake.order_requests("JNOID-1")) == 2


async def test_deadline_polls_once_more_at_the_deadline(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    fake.add_order("JNOID-late", "Submitted")
    fake.add_order("JNOID-just", [Step("Submitted"), Step("Completed", 0.1)])
    await watcher.add("JNOID-late", policy=SLOW, deadline=0.2)
    at = datetime.now(timezone.utc) + timedelta(seconds=0.2)
    await watcher.add("JNOID-just", policy=SLOW, deadline=at)
    with pytest.raises(tg.OrderWaitTimeout) as caught:
        await watcher.wait("JNOID-late", timeout=5.0)
    assert caught.value.last_order is not None
    assert caught.value.last_order.raw_status == "Submitted"
    assert len(fake.order_requests("JNOID-late")) == 2  # at once, and at the deadline
    # Settled between the first poll and the deadline: the last poll sees it.
    assert (await watcher.wait("JNOID-just", timeout=5.0)).succeeded
    assert len(fake.order_requests("JNOID-just")) == 2


async def test_a_missing_order_settles_with_not_found(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    with pytest.raises(tg.NotFoundError):
        await watcher.wait("JNOID-missing", timeout=5.0)
    outcome = await asyncio.wait_for(next_outcome(watcher), 5.0)
    assert isinstance(outcome.error, tg.NotFoundError)
    assert len(fake.order_requests("JNOID-missing")) == 1


async def test_wait_times_out_but_the_watch_goes_on(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    fake.add_order("JNOID-1", "Submitted")
    with pytest.raises(tg.OrderWaitTimeout):
        await watcher.wait("JNOID-1", timeout=0.1, policy=SLOW)
    state = await watcher.get("JNOID-1")
    assert state is not None and not state.settled and state.status is tg.OrderStatus.SUBMITTED
    assert await watcher.remove("JNOID-1")
    assert await watcher.get("JNOID-1") is None
    assert not await watcher.remove("JNOID-1")


async def test_a_wait_given_up_while_polls_fail_names_why(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    # As any `OrderWaitTimeout` whose polls were failing: the last failure is the cause.
    fake.add_order("JNOID-1", "Submitted")
    fake.set_response("JNOID-1", status=500, body="down for maintenance")
    with pytest.raises(tg.OrderWaitTimeout) as raised:
        await watcher.wait("JNOID-1", timeout=1.0)
    cause = raised.value.__cause__
    assert isinstance(cause, tg.InternalServerError) and cause.status_code == 500
    state = await watcher.get("JNOID-1")  # the watch goes on, and says the same
    assert state is not None and not state.settled and state.error is None
    assert isinstance(state.last_error, tg.InternalServerError)
    # Refused polls are given back unrecorded (they say nothing of the order): the store
    # keeps the 500, and a timeout names the refusal that holds every poll back now.
    fake.set_response("JNOID-1", status=403, body='{"Message": "Authorization denied"}')
    await wait_until(lambda: not watcher.health.credentials_ok)
    with pytest.raises(tg.OrderWaitTimeout) as raised:
        await watcher.wait("JNOID-1", timeout=0.2)
    assert isinstance(raised.value.__cause__, tg.PermissionDeniedError)
    state = await watcher.get("JNOID-1")
    assert state is not None and isinstance(state.last_error, tg.InternalServerError)


async def test_a_long_poll_keeps_its_lease(fake: FakeTelegent) -> None:
    fake.stall_seconds = 0.3  # twice the lease
    fake.add_order("JNOID-1", "Completed")
    fake.inject("stall")
    async with (
        fast_client(fake, timeout=2.0) as client,
        tg.OrderWatcher(client, policy=FAST_POLL, lease=0.15) as watcher,
    ):
        await watcher.wait("JNOID-1", timeout=5.0)
    # The stalled poll was renewed, not claimed again behind its back.
    assert len(fake.order_requests("JNOID-1")) == 1


class HeldWrites(tg.MemoryStore):
    """A store whose first write of answers waits until the watcher closes (and is cut by it)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()

    async def record(self, answers: Sequence[PendingAnswer]) -> list[str]:
        if not self.writing.is_set():
            self.writing.set()
            await asyncio.Event().wait()
        return await super().record(answers)


async def test_a_watcher_closed_while_it_writes_answers_back_leaves_no_lease(
    fake: FakeTelegent,
) -> None:
    """A cancel landing in the write of finished polls' answers: they are written as the
    scheduler stops, not left leased (another worker would wait out the lease to poll them;
    `watch run` stopped by SIGTERM left one so under load: tests/test_cli_redis.py)."""
    fake.add_order("JNOID-1", "Submitted")
    store = HeldWrites()
    async with fast_client(fake) as client:
        async with tg.OrderWatcher(client, store, policy=FAST_POLL, lease=60.0) as watcher:
            await watcher.add("JNOID-1")
            await asyncio.wait_for(store.writing.wait(), 5.0)
        state = await watcher.get("JNOID-1")
    assert state is not None and state.status is tg.OrderStatus.SUBMITTED  # its answer, written
    due = await store.next_due()
    assert due is not None and due - await store.now() < 30.0  # not held for the 60 s lease


class SlowClaims(tg.MemoryStore):
    """Claims that take 0.1 s, awaited as RedisStore awaits its commands (`cancellable`)."""

    def __init__(self) -> None:
        super().__init__()
        self.claiming = asyncio.Event()

    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]:
        async def slowly() -> list[Claim]:
            self.claiming.set()
            await asyncio.sleep(0.1)
            return await MemoryStore.claim(self, limit, lease, worker)

        return await cancellable(slowly())


async def test_a_watcher_closed_while_it_claims_gives_every_claim_back(
    fake: FakeTelegent,
) -> None:
    """Closed in a claim: the claim's watches and those under way are released, nothing is
    left leased. The cancel that `cancellable` requests again once the claim is in hand
    landed twice (a second time in the release: `watch run` stopped by SIGTERM left leases
    so in 9 runs of 152, tests/test_cli_redis.py)."""
    fake.stall_seconds = 5.0
    fake.add_order("JNOID-1", "Submitted")
    fake.inject("stall")
    fake.add_order("JNOID-2", "Submitted")
    store = SlowClaims()
    async with (
        fast_client(fake, timeout=10.0) as client,
        tg.OrderWatcher(client, store, policy=FAST_POLL, lease=60.0) as watcher,
    ):
        await watcher.add("JNOID-1")
        await wait_until(lambda: len(fake.order_requests("JNOID-1")) == 1, 5.0)
        store.claiming.clear()
        await watcher.add("JNOID-2")
        await asyncio.wait_for(store.claiming.wait(), 5.0)
    now = await store.now()
    next_polls = {state.order_id: state.next_poll async for state in store.watches()}
    assert set(next_polls) == {"JNOID-1", "JNOID-2"}
    held = [i for i, at in next_polls.items() if at is None or at.timestamp() - now > 30.0]
    assert held == []  # neither waits out the 60 s lease


async def test_state_survives_a_new_watcher_and_keeps_no_secret(
    fake: FakeTelegent, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "watches.db"
    secret = "pin-99887766"
    fake.add_order("JNOID-1", "Completed", extra={"CurrentAccountPassword": secret})
    fake.add_order("JNOID-2", "Submitted")
    async with fast_client(fake) as client:
        async with tg.OrderWatcher(client, path, policy=SLOW) as watcher:
            await watcher.add("JNOID-2")
            assert (await watcher.wait("JNOID-1", timeout=5.0)).succeeded
        async with tg.OrderWatcher(client, path, policy=SLOW) as watcher:
            outcomes = []
            async for outcome in watcher.settled(auto_ack=False):
                outcomes.append(outcome)
                break
            state = await watcher.get("JNOID-2")
    assert [o.order_id for o in outcomes] == ["JNOID-1"]
    assert state is not None and state.status is tg.OrderStatus.SUBMITTED
    assert len(fake.order_requests("JNOID-1")) == 1  # settled: never polled again
    stored = stored_bytes(tmp_path)
    assert b"Completed" in stored
    tokens = {request.token for request in fake.requests if request.token}
    assert tokens
    for needle in (secret, fake.account_secret, fake.account_key, *tokens):
        assert needle.encode() not in stored


async def test_bad_arguments_are_refused_before_any_request(
    fake: FakeTelegent, watcher: tg.OrderWatcher
) -> None:
    with pytest.raises(ValueError, match="aware"):
        await watcher.add("JNOID-1", deadline=datetime(2030, 1, 1))
    with pytest.raises(TypeError):
        await watcher.add("JNOID-1", policy="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await watcher.add("", tag="x")
    with pytest.raises(TypeError):
        await watcher.add_many("JNOID-1")
    with pytest.raises(ValueError):
        await watcher.add("JNOID-1", deadline=-1.0)
    with pytest.raises(ValueError):
        tg.OrderWatcher(watcher, lease=0)  # type: ignore[arg-type]
    async with fast_client(fake) as client:
        idle = tg.OrderWatcher(client)
        with pytest.raises(RuntimeError, match="start"):
            await idle.wait("JNOID-1")
    assert fake.order_requests() == []


class BrokenLookups:
    """A lookup with a bug in it (not an API failure): the watcher must not hide it."""

    max_connections = 2
    budget = tg.LocalBudget(None)

    async def get_order(self, order_id: str) -> tg.Order:
        raise ZeroDivisionError(order_id)


async def test_a_bug_stops_the_watcher_and_every_waiter_hears_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher = tg.OrderWatcher(BrokenLookups())
    with pytest.raises(ZeroDivisionError):  # leaving the block raises it too: never silent
        async with watcher:
            with pytest.raises(ZeroDivisionError):
                await watcher.wait("JNOID-1", timeout=5.0)
            with pytest.raises(ZeroDivisionError):
                await watcher.wait("JNOID-2", timeout=5.0)
            with pytest.raises(ZeroDivisionError):
                async for _ in watcher.settled():
                    pass
            assert not watcher.health.running
            assert watcher.health.fault is not None and "ZeroDivisionError" in watcher.health.fault
    assert any("order watcher stopped" in r.getMessage() for r in caplog.records)
