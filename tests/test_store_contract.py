"""The `WatchStore` contract, run against every store: memory, SQLite and Redis.

Every store gets the same fake clock, so leases and retention are tested without sleeping
(Redis takes it instead of its `TIME`; it runs on the session's own redis-server, and skips
with the reason when there is none).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from helpers import FakeClock, fast_client, wait_until

import telegent_async as tg
from telegent_async._models import converter, order_from_json
from telegent_async._stores.base import (
    QUEUE_BATCH,
    Claim,
    NewWatch,
    PendingAnswer,
    Settlement,
    WatchStore,
)
from telegent_async.testing import FakeTelegent, RedisServer

SECRET = "s3cr3t-pin-4242"
ACCOUNT_NUMBER = "ACCT-778899"
LEASE = 60.0
POLICY = tg.PollPolicy(initial=600.0, factor=2.0, max_interval=3600.0, jitter=0.0)


def memory_store(
    clock: FakeClock, _tmp: pathlib.Path, _request: pytest.FixtureRequest
) -> WatchStore:
    return tg.MemoryStore(clock=clock)


def sqlite_store(
    clock: FakeClock, tmp: pathlib.Path, _request: pytest.FixtureRequest
) -> WatchStore:
    return tg.SQLiteStore(tmp / "watches.db", clock=clock)


def redis_store(clock: FakeClock, _tmp: pathlib.Path, request: pytest.FixtureRequest) -> WatchStore:
    url, namespace = request.getfixturevalue("redis_url"), request.getfixturevalue("namespace")
    return tg.RedisStore(url, namespace=namespace, clock=clock)


#: Store factories by name: a new store adds itself here and passes the same suite.
STORE_FACTORIES: dict[
    str, Callable[[FakeClock, pathlib.Path, pytest.FixtureRequest], WatchStore]
] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "redis": redis_store,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: pathlib.Path
) -> AsyncIterator[WatchStore]:
    made = STORE_FACTORIES[request.param](clock, tmp_path, request)
    try:
        yield made
    finally:
        await made.aclose()


def order(order_id: str, status: str = "Pending", **extra: Any) -> tg.Order:
    body = {"OrderId": order_id, "OrderStatus": status, "OrderType": "PortIn", **extra}
    return converter.structure(body, tg.Order)


async def claim_one(store: WatchStore, order_id: str, lease: float = LEASE) -> Claim:
    claims = await store.claim(10, lease, "worker-1")
    assert [c.order_id for c in claims] == [order_id]
    return claims[0]


async def test_add_is_idempotent_and_batched(store: WatchStore, clock: FakeClock) -> None:
    assert await store.add([NewWatch("A"), NewWatch("B"), NewWatch("A")]) == 2
    assert await store.add([NewWatch("A", tag="other"), NewWatch("C")]) == 1
    state = await store.get("A")
    assert state is not None
    assert (state.tag, state.status, state.attempts, state.settled) == (None, None, 0, False)
    assert state.next_poll is not None and state.next_poll.timestamp() == clock.now
    assert await store.get("nope") is None


async def test_claim_carries_the_watch_and_respects_the_lease(
    store: WatchStore, clock: FakeClock
) -> None:
    await store.add([NewWatch("A", policy=POLICY, deadline=clock.now + 99, tag="t-1")])
    await store.add([NewWatch("B")])
    claims = await store.claim(10, LEASE, "worker-1")
    assert [c.order_id for c in claims] == ["A", "B"]
    first = claims[0]
    assert (first.policy, first.deadline, first.tag, first.attempts) == (
        POLICY,
        clock.now + 99,
        "t-1",
        0,
    )
    assert await store.claim(10, LEASE, "worker-2") == []
    assert await store.next_due() == clock.now + LEASE
    clock.advance(LEASE - 1)
    assert await store.claim(10, LEASE, "worker-2") == []
    clock.advance(1)
    again = await store.claim(10, LEASE, "worker-2")
    assert sorted(c.order_id for c in again) == ["A", "B"]
    assert all(new.fence != old.fence for new, old in zip(again, claims, strict=True))


async def test_claim_serves_never_polled_orders_in_the_order_they_fell_due(
    store: WatchStore, clock: FakeClock
) -> None:
    await store.add([NewWatch("late")])
    clock.advance(1)
    await store.add([NewWatch("early-1"), NewWatch("early-2")])
    clock.advance(1)
    order_ids = [(await store.claim(1, LEASE, "w"))[0].order_id for _ in range(3)]
    assert order_ids == ["late", "early-1", "early-2"]


async def test_claim_serves_the_oldest_answer_first_whatever_the_intervals(
    store: WatchStore, clock: FakeClock
) -> None:
    """Issue 20: under overload each poll goes to the watch whose last answer is oldest (never
    polled and woken ones first), not to the one due first (short intervals would starve the
    others)."""
    await store.add([NewWatch(order_id) for order_id in ("A", "B", "C", "E")])
    claims = {claim.order_id: claim for claim in await store.claim(4, LEASE, "w")}
    # A answered first and asks for its next poll in 10 s; B and C later, every 0.5 s.
    await store.record([PendingAnswer(claims["A"], clock.now + 10.0, None)])
    clock.advance(5.0)
    await store.record([PendingAnswer(claims["B"], clock.now + 0.5, None)])
    clock.advance(1.0)
    await store.record([PendingAnswer(claims["C"], clock.now + 0.5, None)])
    await store.record([PendingAnswer(claims["E"], clock.now + 3600.0, None)])
    clock.advance(5.0)  # A due since +10 s, B since +5.5 s, C since +6.5 s; E in an hour
    await store.add([NewWatch("D")])  # never polled: before any answer
    clock.advance(1.0)
    assert await store.wake(["E"]) == 1  # woken: as if never answered, due after D
    order_ids = [(await store.claim(1, LEASE, "w"))[0].order_id for _ in range(5)]
    assert order_ids == ["D", "E", "A", "B", "C"]  # by the order due: B, C, A, D, E
    clock.advance(LEASE)  # the leases ran out: each watch keeps its place
    again = [c.order_id for c in await store.claim(9, LEASE, "w")]
    assert sorted(again[:2]) == ["D", "E"] and again[2:] == ["A", "B", "C"]


async def test_a_backlog_larger_than_a_claim_queues_is_claimed_whole(
    store: WatchStore, clock: FakeClock
) -> None:
    """A store may queue only `QUEUE_BATCH` fallen-due watches per claim: none is lost."""
    order_ids = [f"P-{n:04d}" for n in range(QUEUE_BATCH * 2 + 5)]
    await store.add([NewWatch(order_id) for order_id in order_ids])
    claims = await store.claim(len(order_ids), LEASE, "w")
    await store.record([PendingAnswer(c, clock.now + 1 + n, None) for n, c in enumerate(claims)])
    clock.advance(len(order_ids) + 1)
    seen: list[str] = []
    while claims := await store.claim(len(order_ids), LEASE, "w"):
        seen += [c.order_id for c in claims]
    assert sorted(seen) == order_ids


async def test_record_schedules_the_next_poll_and_keeps_the_answer(
    store: WatchStore, clock: FakeClock
) -> None:
    await store.add([NewWatch("A")])
    claim = await claim_one(store, "A")
    assert await store.record([PendingAnswer(claim, clock.now + 5, order("A", "Submitted"))]) == []
    state = await store.get("A")
    assert state is not None
    assert (state.status, state.attempts) == (tg.OrderStatus.SUBMITTED, 1)
    assert state.last_order == order("A", "Submitted")
    assert state.next_poll is not None and state.next_poll.timestamp() == clock.now + 5
    assert await store.claim(10, LEASE, "w") == []
    clock.advance(5)
    claim = await claim_one(store, "A")
    assert (claim.attempts, claim.last_status) == (1, "Submitted")
    assert claim.last() == order("A", "Submitted")
    # A failed poll keeps the last answer and still counts.
    await store.record([PendingAnswer(claim, clock.now + 5, None)])
    state = await store.get("A")
    assert state is not None and (state.status, state.attempts) == (tg.OrderStatus.SUBMITTED, 2)


async def test_a_failed_polls_error_comes_with_the_next_claims_until_an_answer(
    store: WatchStore, clock: FakeClock
) -> None:
    # Kept for whichever worker claims the watch next, so a timeout it settles can name it.
    await store.add([NewWatch("A"), NewWatch("B")])
    claims = {c.order_id: c for c in await store.claim(10, LEASE, "w")}
    assert [c.last_failure() for c in claims.values()] == [None, None]
    unavailable = tg.ServiceUnavailableError(503, "The service is temporarily unavailable.")
    await store.record(
        [
            PendingAnswer(claims["A"], clock.now + 5, None, unavailable),
            PendingAnswer(claims["B"], clock.now + 5, None, tg.TransportError("reset")),
        ]
    )
    state = await store.get("A")
    assert state is not None and state.error is None  # a pending watch's error: none
    assert isinstance(state.last_error, tg.ServiceUnavailableError)  # its last poll's: this
    assert (state.last_error.status_code, str(state.last_error)) == (503, str(unavailable))
    listed = {s.order_id: s.last_error async for s in store.watches(settled=False)}
    assert isinstance(listed["B"], tg.TransportError) and str(listed["B"]) == "reset"
    clock.advance(5)
    claims = {c.order_id: c for c in await store.claim(10, LEASE, "other")}
    failure = claims["A"].last_failure()
    assert isinstance(failure, tg.ServiceUnavailableError) and failure.status_code == 503
    assert str(failure) == str(unavailable)
    assert isinstance(claims["B"].last_failure(), tg.TransportError)
    # An answer clears it; a settlement after failures carries only its own error.
    await store.record([PendingAnswer(claims["A"], clock.now + 5, order("A", "Submitted"))])
    gone = tg.NotFoundError(404, "Order not found", None)
    await store.settle([Settlement(claims["B"], None, gone)])
    clock.advance(5)
    (claim,) = await store.claim(10, LEASE, "w")
    assert (claim.order_id, claim.last_failure()) == ("A", None)
    (delivery,) = await store.outcomes()
    assert delivery.outcome.order_id == "B"
    assert isinstance(delivery.outcome.error, tg.NotFoundError)
    a, b = [await store.get(order_id) for order_id in ("A", "B")]
    assert a is not None and (a.settled, a.error, a.last_error) == (False, None, None)
    assert b is not None and (b.settled, b.last_error) == (True, None)  # its error is `error`
    assert isinstance(b.error, tg.NotFoundError)


async def test_an_answer_without_its_order_id_comes_back_as_that_order(
    store: WatchStore, clock: FakeClock
) -> None:
    # A lookup takes an answer without `OrderId` as the order asked for (the JSON is kept as
    # received): read back from the store, it is that order again, not an undecodable body.
    await store.add([NewWatch("A")])
    claim = await claim_one(store, "A")
    pending = order_from_json({"OrderStatus": "Submitted"}, "A")
    assert await store.record([PendingAnswer(claim, clock.now + 5, pending)]) == []
    clock.advance(5)
    claim = await claim_one(store, "A")
    last = claim.last()
    assert last is not None and (last.order_id, last.status) == ("A", tg.OrderStatus.SUBMITTED)
    assert last.raw == {"OrderStatus": "Submitted"}
    done = order_from_json({"OrderStatus": "Complete"}, "A")
    assert await store.settle([Settlement(claim, done, None)]) == []
    [delivery] = await store.outcomes()
    assert delivery.outcome.order is not None
    assert (delivery.outcome.order.order_id, delivery.outcome.ok) == ("A", True)
    state = await store.get("A")
    assert state is not None and state.last_order is not None
    assert state.last_order.order_id == "A"
    assert [state async for state in store.watches()] == [state]


async def test_settle_delivers_until_acknowledged(store: WatchStore, clock: FakeClock) -> None:
    await store.add([NewWatch("A", tag="ticket-1"), NewWatch("B")])
    a, b = await store.claim(10, LEASE, "w")
    assert await store.settle([Settlement(a, order("A", "Completed"), None)]) == []
    assert await store.next_due() == clock.now + LEASE  # B only
    deliveries = await store.outcomes()
    assert [d.outcome for d in deliveries] == [
        tg.OrderOutcome("A", order("A", "Completed"), None, "ticket-1")
    ]
    assert deliveries[0].outcome.ok
    assert [d.outcome.order_id for d in await store.outcomes()] == ["A"]  # again: not acked
    await store.settle([Settlement(b, order("B", "Rejected"), None)])
    both = await store.outcomes()
    assert [d.outcome.order_id for d in both] == ["A", "B"]
    assert both[0].seq < both[1].seq
    assert [d.outcome.order_id for d in await store.outcomes(after=both[0].seq)] == ["B"]
    assert [d.outcome.order_id for d in await store.outcomes(limit=1)] == ["A"]
    assert await store.outcomes(limit=0) == []
    assert await store.ack(["A", "A", "missing"]) == 1
    assert await store.ack(["A"]) == 0  # never acknowledged twice
    assert [d.outcome.order_id for d in await store.outcomes()] == ["B"]
    state = await store.get("A")
    assert state is not None
    assert (state.settled, state.acknowledged, state.next_poll, state.attempts) == (
        True,
        True,
        None,
        1,
    )
    assert state.status is tg.OrderStatus.COMPLETE
    clock.advance(LEASE * 10)
    assert await store.claim(10, LEASE, "w") == []  # a settled order is never polled again
    assert await store.next_due() is None


async def test_a_stale_fence_writes_nothing(store: WatchStore, clock: FakeClock) -> None:
    await store.add([NewWatch("A")])
    old = await claim_one(store, "A")
    clock.advance(LEASE)
    new = await claim_one(store, "A")
    assert await store.record([PendingAnswer(old, clock.now + 1, order("A", "Scheduled"))]) == ["A"]
    assert await store.settle([Settlement(old, order("A", "Completed"), None)]) == ["A"]
    assert await store.renew([old], LEASE) == ["A"]
    await store.release([old])
    assert await store.claim(10, LEASE, "w") == []  # still leased by `new`
    state = await store.get("A")
    assert state is not None and (state.status, state.settled) == (None, False)
    assert await store.settle([Settlement(new, order("A", "Completed"), None)]) == []
    # Once written, the same claim cannot write again.
    assert await store.settle([Settlement(new, order("A", "Error"), None)]) == ["A"]
    assert [d.outcome.order for d in await store.outcomes()] == [order("A", "Completed")]


async def test_renew_extends_and_release_returns_a_claim(
    store: WatchStore, clock: FakeClock
) -> None:
    await store.add([NewWatch("A")])
    claim = await claim_one(store, "A", lease=10)
    clock.advance(8)
    assert await store.renew([claim], 10) == []
    clock.advance(5)
    assert await store.claim(10, 10, "w") == []
    await store.release([claim])
    again = await claim_one(store, "A")
    assert again.fence != claim.fence
    assert await store.record([PendingAnswer(claim, clock.now, None)]) == ["A"]


async def test_wake_moves_the_next_poll_to_now(store: WatchStore, clock: FakeClock) -> None:
    nudges: list[None] = []
    unsubscribe = store.subscribe(lambda: nudges.append(None))
    if isinstance(store, tg.RedisStore):  # it listens once subscribed (see below)
        await wait_until(lambda: bool(nudges))
        nudges.clear()
    await store.add([NewWatch("A"), NewWatch("B")])
    assert nudges  # adding nudges sleeping schedulers
    claims = await store.claim(10, LEASE, "w")
    await store.record([PendingAnswer(c, clock.now + 3600, None) for c in claims])
    nudges.clear()
    assert await store.wake(["A", "missing"]) == 1
    assert nudges
    claim = await claim_one(store, "A")
    # Woken while claimed: no second claim now, but polled again as soon as it answers.
    assert await store.wake(["A"]) == 1
    assert await store.claim(10, LEASE, "w") == []
    await store.record([PendingAnswer(claim, clock.now + 3600, None)])
    claim = await claim_one(store, "A")
    await store.settle([Settlement(claim, order("A", "Completed"), None)])
    assert await store.wake(["A"]) == 0  # settled: nothing to wake
    unsubscribe()
    await store.wake(["B"])
    assert nudges == [None, None]


async def test_a_redis_listener_looks_once_when_it_subscribes(
    redis_url: str, namespace: str
) -> None:
    # Nudges published before the listener subscribed were never heard: a scheduler slept
    # up to `max_idle` (1 s) on watches another process had just added.
    store = tg.RedisStore(redis_url, namespace=namespace)
    try:
        nudges: list[None] = []
        unsubscribe = store.subscribe(lambda: nudges.append(None))
        await wait_until(lambda: len(nudges) == 1)  # nothing was added: only the look
        unsubscribe()
    finally:
        await store.aclose()


@pytest.mark.slow
async def test_a_redis_listener_looks_again_when_it_resubscribes(namespace: str) -> None:
    # Nudges published while Redis was away are lost with its connections.
    with RedisServer() as server:
        store = tg.RedisStore(server.url, namespace=namespace)
        try:
            nudges: list[None] = []
            unsubscribe = store.subscribe(lambda: nudges.append(None))
            await wait_until(lambda: len(nudges) == 1)
            server.down()
            server.up()  # the same port: the listener subscribes again, after `max_idle`
            await wait_until(lambda: len(nudges) == 2, timeout=5.0)
            unsubscribe()
        finally:
            await store.aclose()


async def test_remove_forgets_a_watch(store: WatchStore, clock: FakeClock) -> None:
    await store.add([NewWatch("A"), NewWatch("B")])
    assert await store.remove(["A", "missing"]) == 1
    assert await store.get("A") is None
    assert [c.order_id for c in await store.claim(10, LEASE, "w")] == ["B"]
    assert await store.add([NewWatch("A")]) == 1  # can be watched again


async def test_purge_drops_acknowledged_outcomes_older_than_retain(
    store: WatchStore, clock: FakeClock
) -> None:
    await store.add([NewWatch("A"), NewWatch("B"), NewWatch("C")])
    claims = await store.claim(10, LEASE, "w")
    await store.settle([Settlement(c, order(c.order_id, "Completed"), None) for c in claims[:2]])
    await store.ack(["A"])
    clock.advance(99)
    assert await store.purge(100) == 0
    clock.advance(2)
    assert await store.purge(100) == 1
    assert await store.get("A") is None
    assert await store.get("B") is not None  # settled but unacknowledged: kept
    assert await store.get("C") is not None  # pending: kept


def caused(error: tg.TelegentError, cause: tg.TelegentError | None) -> tg.TelegentError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        tg.NotFoundError(404, "Order not found", {"StatusCode": 404, "Message": "Order not found"}),
        tg.RateLimitError(429, "slow down", None, retry_after=2.5),
        tg.TransportError("connection reset"),
        tg.ResponseDecodeError("expected an order", status_code=200, body="<html>"),
        tg.OrderWaitTimeout("A", order("A", "Submitted"), 30.0),
        tg.OrderWaitTimeout("A", None, None, polled=False),
        # A timeout whose polls were failing: the last failure is its `__cause__`.
        caused(tg.OrderWaitTimeout("A", None, 30.0), tg.ServiceUnavailableError(503, "busy")),
        # An answer without `OrderId` is the order asked for (`order_from_json`), in an error too.
        tg.OrderWaitTimeout("A", order_from_json({"OrderStatus": "Submitted"}, "A"), 30.0),
        tg.OrderFailed(order("A", "Rejected", OrderStatusMessage="8A-ACCOUNT_NUM_REQ")),
        tg.OrderFailed(
            order_from_json({"OrderStatus": "Rejected", "OrderStatusMessage": "8A-X"}, "A")
        ),
        tg.SubmitOutcomeUnknownError(
            "submit_port_in", tg.GatewayTimeoutError(504, "late \N{SNOWMAN}\x00"), "look it up"
        ),
        # Raised `from None` (a body too large to read): its `cause` is that attempt all the same.
        caused(
            tg.SubmitOutcomeUnknownError("submit_port_in", tg.GatewayTimeoutError(504, "x"), "-"),
            None,
        ),
        tg.TransportError("reset \x00 \ud800 \N{SNOWMAN} " + "x" * 100_000),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_errors_round_trip_as_the_same_class(
    store: WatchStore, error: tg.TelegentError
) -> None:
    await store.add([NewWatch("A")])
    claim = await claim_one(store, "A")
    await store.settle([Settlement(claim, order("A", "Submitted"), error)])
    (delivery,) = await store.outcomes()
    back = delivery.outcome.error
    assert type(back) is type(error)
    assert str(back) == str(error)
    for name in (
        *("status_code", "message", "body", "retry_after", "order_id", "timeout", "polled"),
        *("last_order", "order", "call", "how_to_check"),
    ):
        assert getattr(back, name, None) == getattr(error, name, None), name
    # A timeout's last failure; a create's last attempt, which is its `cause` too.
    cause = error.__cause__ if error.__cause__ is not None else getattr(error, "cause", None)
    if cause is not None:
        assert (type(back.__cause__), str(back.__cause__)) == (type(cause), str(cause))
        assert getattr(back.__cause__, "status_code", None) in (503, 504)
    else:
        assert back.__cause__ is None
    if isinstance(error, tg.SubmitOutcomeUnknownError):  # its `cause` is that last attempt's
        assert isinstance(back, tg.SubmitOutcomeUnknownError) and back.__cause__ is back.cause
    else:
        assert not hasattr(back, "cause")
    if isinstance(error, tg.OrderFailed):
        assert isinstance(back, tg.OrderFailed)
        assert back.order == error.order and back.carrier_error == error.carrier_error
    state = await store.get("A")
    assert state is not None and type(state.error) is type(error)


async def test_no_secret_is_kept(store: WatchStore, clock: FakeClock) -> None:
    leaky = order(
        "A", "Submitted", CurrentAccountPassword=SECRET, currentAccountNumber=ACCOUNT_NUMBER
    )
    await store.add([NewWatch("A")])
    claim = await claim_one(store, "A")
    await store.record([PendingAnswer(claim, clock.now, leaky)])
    state = await store.get("A")
    assert state is not None and state.last_order is not None
    kept = json.dumps(dict(state.last_order.raw))
    assert SECRET not in kept and ACCOUNT_NUMBER not in kept
    assert state.last_order.raw_status == "Submitted"


async def test_odd_statuses_and_tags_are_kept(store: WatchStore, clock: FakeClock) -> None:
    await store.add([NewWatch("A", tag="ticket \N{SNOWMAN}\nline two")])
    odd = order("A", "Sub\nmitted \ud800 \N{SNOWMAN}")
    claim = await claim_one(store, "A")
    await store.record([PendingAnswer(claim, clock.now, odd)])
    state = await store.get("A")
    assert state is not None and state.tag == "ticket \N{SNOWMAN}\nline two"
    assert state.status is tg.OrderStatus.UNKNOWN
    assert state.last_order is not None and state.last_order.raw_status == odd.raw_status
    claim = await claim_one(store, "A")
    # As on the last poll: no status change to log (compared as bytes: xdist sends text).
    assert claim.last_status is not None
    assert claim.last_status.encode("utf-8", "surrogatepass") == odd.raw_status.encode(
        "utf-8", "surrogatepass"
    )


async def test_attempts_count_past_255(store: WatchStore, clock: FakeClock) -> None:
    # The MemoryStore counted polls in a byte: 255 after 300 polls, where the others say 300.
    await store.add([NewWatch("A")])
    for _ in range(300):
        claim = await claim_one(store, "A")
        assert await store.record([PendingAnswer(claim, clock.now, None)]) == []
    claim = await claim_one(store, "A")
    state = await store.get("A")
    assert state is not None and (claim.attempts, state.attempts) == (300, 300)
    assert await store.settle([Settlement(claim, order("A", "Complete"), None)]) == []
    state = await store.get("A")
    assert state is not None and state.attempts == 301
    assert await store.retry(["A"]) == 1
    state = await store.get("A")
    assert state is not None and state.attempts == 0
    claim = await claim_one(store, "A")
    assert await store.record([PendingAnswer(claim, clock.now, None)]) == []
    state = await store.get("A")
    assert state is not None and state.attempts == 1


async def test_a_next_poll_past_year_9999_reads_back_as_the_latest_time(
    store: WatchStore, clock: FakeClock
) -> None:
    # A policy may wait 1e12 s (any finite number), a lease too: `get` and `watches` raised
    # OverflowError for such a watch (`watches` ended at it), on every store.
    centuries = tg.PollPolicy(initial=1e12, factor=1.0, max_interval=1e12, jitter=0.0)
    await store.add([NewWatch("A", policy=centuries), NewWatch("B")])
    a, _ = await store.claim(10, 1e300, "w")  # B: leased for 1e300 s
    assert await store.record([PendingAnswer(a, clock.now + 1e12, order("A"))]) == []
    latest = datetime.max.replace(tzinfo=timezone.utc)
    for order_id in ("A", "B"):
        state = await store.get(order_id)
        assert state is not None and state.next_poll == latest
    assert sorted([state.order_id async for state in store.watches()]) == ["A", "B"]
    assert await store.next_due() == clock.now + 1e12


# -- the three stores alike (issue 18) ---------------------------------------------------------


async def test_fences_only_grow_across_remove_and_add(store: WatchStore, clock: FakeClock) -> None:
    await store.add([NewWatch("A")])
    old = await claim_one(store, "A")
    assert await store.remove(["A"]) == 1
    assert await store.add([NewWatch("A")]) == 1
    new = await claim_one(store, "A")
    assert new.fence > old.fence
    # The old watch's claim writes nothing to its successor.
    assert await store.settle([Settlement(old, order("A", "Completed"), None)]) == ["A"]
    assert await store.record([PendingAnswer(old, clock.now + 1, order("A", "Error"))]) == ["A"]
    state = await store.get("A")
    assert state is not None and (state.settled, state.status) == (False, None)
    assert await store.settle([Settlement(new, order("A", "Completed"), None)]) == []


async def test_a_live_consumer_never_gets_its_own_unacknowledged_outcome_again(
    store: WatchStore, clock: FakeClock
) -> None:
    await store.add([NewWatch("A"), NewWatch("B")])
    a, b = await store.claim(10, LEASE, "w")
    await store.settle([Settlement(a, order("A", "Completed"), None)])
    (first,) = await store.outcomes()
    for _ in range(3):  # long past any delivery lease, still asking: it is alive
        clock.advance(30)
        assert await store.outcomes(after=first.seq) == []
    await store.settle([Settlement(b, order("B", "Completed"), None)])
    assert [d.outcome.order_id for d in await store.outcomes(after=first.seq)] == ["B"]
    # A consumer that starts over (a new `settled()`) is handed what it did not acknowledge.
    assert [d.outcome.order_id for d in await store.outcomes()] == ["A", "B"]


async def test_no_secret_is_kept_at_any_depth(store: WatchStore, clock: FakeClock) -> None:
    nested = {"Details": {"Pin": SECRET, "Lines": [{"CurrentAccountPassword": SECRET}]}}
    leaky = order("A", "Submitted", Port=nested, Keep={"Note": "kept"})
    body = {"Message": "bad", "Errors": [{"Field": "x", "AccountSecret": SECRET}]}
    error = tg.BadRequestError(400, "bad", body)
    await store.add([NewWatch("A"), NewWatch("B")])
    a, b = await store.claim(10, LEASE, "w")
    await store.record([PendingAnswer(a, clock.now, leaky)])
    await store.settle([Settlement(b, order("B", "Rejected", Extra=nested), error)])
    state = await store.get("A")
    assert state is not None and state.last_order is not None
    kept = json.dumps(dict(state.last_order.raw))
    assert SECRET not in kept
    assert state.last_order.raw["Keep"] == {"Note": "kept"}
    assert state.last_order.raw["Port"] == {"Details": {"Lines": [{}]}}
    (delivery,) = await store.outcomes()
    outcome = delivery.outcome
    assert outcome.order is not None and SECRET not in json.dumps(dict(outcome.order.raw))
    assert isinstance(outcome.error, tg.BadRequestError)
    assert outcome.error.body == {"Message": "bad", "Errors": [{"Field": "x"}]}


def nested(depth: int, inner: object) -> object:
    """`inner` inside `depth` levels of lists."""
    for _ in range(depth):
        inner = [inner]
    return inner


async def test_a_deeply_nested_answer_is_kept_to_a_bounded_depth(
    store: WatchStore, clock: FakeClock
) -> None:
    # A lookup takes an answer nested 900 deep (as deep as the JSON parser goes); stored
    # whole, writing (and reading) it back ran out of stack. Kept: 100 levels, what lies
    # deeper dropped (never kept, so no secret either); its every field as received.
    deep = {"Note": "kept", "Deep": nested(900, {"Pin": SECRET})}
    answer = order("A", "Submitted", X=deep)
    body = {"Message": "no", "Deep": nested(900, {"Pin": SECRET})}
    error = tg.NotFoundError(404, "no", body)
    await store.add([NewWatch("A"), NewWatch("B")])
    a, b = await store.claim(10, LEASE, "w")
    await store.record([PendingAnswer(a, clock.now, answer)])
    await store.settle([Settlement(b, order("B", "Complete", X=deep), error)])
    state = await store.get("A")
    assert state is not None and state.last_order is not None
    kept = state.last_order.raw
    assert (kept["OrderId"], kept["X"]["Note"]) == ("A", "kept")
    assert kept["X"]["Deep"] == nested(98, None)  # OrderId is at depth 1, X 2, Deep 3
    claim = await claim_one(store, "A")
    assert claim.last() == state.last_order
    (delivery,) = await store.outcomes()
    outcome = delivery.outcome
    assert outcome.order is not None
    assert outcome.order.raw == {**order("B", "Complete").raw, "X": kept["X"]}
    assert isinstance(outcome.error, tg.NotFoundError)
    assert outcome.error.body == {"Message": "no", "Deep": nested(99, None)}
    assert SECRET not in repr(outcome) + repr(state)


async def test_count_and_watches(store: WatchStore, clock: FakeClock) -> None:
    many = [f"P-{n:05d}" for n in range(1200)]  # more than one batch
    await store.add([NewWatch(order_id) for order_id in ["A", "B", *many]])
    claims = await store.claim(2, LEASE, "w")
    assert [c.order_id for c in claims] == ["A", "B"]
    await store.settle([Settlement(c, order(c.order_id, "Completed"), None) for c in claims])
    await store.ack(["A"])
    assert await store.count() == tg.WatchCounts(pending=1200, settled=2, unacknowledged=1)
    pending = [state async for state in store.watches(False)]
    assert sorted(s.order_id for s in pending) == many
    assert not any(s.settled for s in pending)
    settled = {state.order_id: state async for state in store.watches(True)}
    assert settled.keys() == {"A", "B"}
    assert (settled["A"].acknowledged, settled["B"].acknowledged) == (True, False)
    assert settled["B"] == await store.get("B")
    every = [state.order_id async for state in store.watches()]
    assert sorted(every) == sorted(["A", "B", *many])
    await store.remove(["A", "P-00000"])
    assert await store.count() == tg.WatchCounts(pending=1199, settled=1, unacknowledged=1)


async def test_retry_rearms_a_settled_watch(store: WatchStore, clock: FakeClock) -> None:
    await store.add([NewWatch("A", tag="t"), NewWatch("B")])
    old, _ = await store.claim(10, LEASE, "w")
    refused = tg.AuthenticationError(401, "bad credentials", None)
    await store.settle([Settlement(old, order("A", "Submitted"), refused)])
    clock.advance(5)
    assert await store.retry(["A", "B", "missing"]) == 1  # B is pending: nothing to re-arm
    state = await store.get("A")
    assert state is not None
    assert (state.settled, state.acknowledged, state.error, state.attempts) == (
        False,
        False,
        None,
        0,
    )
    assert state.next_poll is not None and state.next_poll.timestamp() == clock.now
    assert (state.tag, state.status) == ("t", tg.OrderStatus.SUBMITTED)
    assert await store.outcomes() == []
    assert await store.count() == tg.WatchCounts(pending=2, settled=0, unacknowledged=0)
    new = await claim_one(store, "A")
    assert new.fence > old.fence and new.last_status == "Submitted"
    assert await store.settle([Settlement(old, order("A", "Error"), None)]) == ["A"]
    assert await store.settle([Settlement(new, order("A", "Completed"), None)]) == []
    assert [d.outcome.order for d in await store.outcomes()] == [order("A", "Completed")]
    await store.ack(["A"])
    assert await store.retry(["A"]) == 1  # acknowledged outcomes too
    assert await store.count() == tg.WatchCounts(pending=2, settled=0, unacknowledged=0)


# -- the watcher over each store ---------------------------------------------------------------

#: A cadence whose second poll lies beyond any test (the fake clock does not move).
SLOW = tg.PollPolicy(initial=30.0, factor=1.0, max_interval=30.0, jitter=0.0)


@contextlib.asynccontextmanager
async def watching(store: WatchStore, fake: FakeTelegent) -> AsyncIterator[tg.OrderWatcher]:
    async with fast_client(fake) as client, tg.OrderWatcher(client, store, policy=SLOW) as w:
        yield w


async def within(seconds: float, scenario: Awaitable[None]) -> None:
    """Run `scenario`, failing (not hanging) if it has not ended after `seconds`."""
    await asyncio.wait_for(scenario, seconds)


async def test_wait_on_a_watch_removed_meanwhile_raises_at_once(
    store: WatchStore, fake: FakeTelegent
) -> None:
    fake.add_order("A", "Submitted")

    async def scenario() -> None:
        async with watching(store, fake) as watcher:
            waiting = asyncio.ensure_future(watcher.wait("A"))
            await wait_until(lambda: len(fake.order_requests("A")) > 0, 4.0)
            assert await watcher.remove("A")
            with pytest.raises(tg.TelegentError, match="removed"):
                await asyncio.wait_for(waiting, 0.5)  # not after a store's max_idle (1 s)
        fake.clear_requests()

    for _ in range(3):  # leaving the watcher hung 2 times in 3 on Redis
        await within(10.0, scenario())


async def test_settled_ends_when_the_watcher_closes(store: WatchStore, fake: FakeTelegent) -> None:
    fake.add_order("A", "Completed")
    seen: list[str] = []

    async def consume(watcher: tg.OrderWatcher, auto_ack: bool) -> None:
        async for outcome in watcher.settled(auto_ack=auto_ack):
            seen.append(outcome.order_id)

    async def scenario(auto_ack: bool) -> None:
        seen.clear()
        async with watching(store, fake) as watcher:
            await watcher.add("A")
            consumer = asyncio.ensure_future(consume(watcher, auto_ack))
            await wait_until(lambda: seen == ["A"], 4.0)
        await asyncio.wait_for(consumer, 2.0)  # ended by itself, without an error

    for auto_ack in (False, True):
        await within(10.0, scenario(auto_ack))
    # acknowledged when the loop asked for the next outcome, before the watcher closed
    assert await store.count() == tg.WatchCounts(pending=0, settled=1, unacknowledged=0)


async def test_watches_refused_by_credentials_are_rearmed_on_open(
    store: WatchStore, fake: FakeTelegent
) -> None:
    fake.add_order("A", "Completed")
    await store.add([NewWatch("A"), NewWatch("B"), NewWatch("C")])
    a, b, c = await store.claim(10, LEASE, "0.2.0")
    refused = tg.AuthenticationError(401, "bad credentials", None)
    denied = tg.PermissionDeniedError(403, "forbidden", None)
    gone = tg.NotFoundError(404, "Order not found", None)
    await store.settle([Settlement(a, None, refused), Settlement(b, None, denied)])
    await store.settle([Settlement(c, None, gone)])
    fake.add_order("B", "Rejected")

    async def scenario() -> None:
        async with watching(store, fake) as watcher:
            assert (await watcher.wait("A")).succeeded
            assert (await watcher.wait("B")).status is tg.OrderStatus.REJECTED
            with pytest.raises(tg.NotFoundError):  # a real outcome stays
                await watcher.wait("C")
            counts = await watcher.count()
            assert counts == tg.WatchCounts(pending=0, settled=3, unacknowledged=3)
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                counts.pending = 1  # type: ignore[misc]
            settled = [state async for state in watcher.watches(settled=True)]
            assert sorted(state.order_id for state in settled) == ["A", "B", "C"]
            assert [state async for state in watcher.watches(settled=False)] == []

    await within(10.0, scenario())
    assert fake.order_requests("C") == []
    assert await store.count() == tg.WatchCounts(pending=0, settled=3, unacknowledged=3)


async def test_a_deeply_nested_answer_does_not_stop_the_watcher(
    store: WatchStore, fake: FakeTelegent
) -> None:
    # It stopped every watcher (RecursionError), and any watcher on the same store after it.
    deep = json.dumps(nested(900, {"Pin": SECRET}))
    fake.set_response("A", body=f'{{"OrderId": "A", "OrderStatus": "Complete", "X": {deep}}}')

    async def scenario() -> None:
        async with watching(store, fake) as watcher:
            assert (await watcher.wait("A")).succeeded
            state = await watcher.get("A")
            assert state is not None and state.settled and SECRET not in repr(state)

    await within(10.0, scenario())
