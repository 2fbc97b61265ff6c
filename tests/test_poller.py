"""Waiting for orders (`wait_for_order`, `watch_order`, `wait_for_orders`) over real sockets.

Lifecycles last tens of milliseconds and clients poll with `FAST_POLL`, so deadlines,
cancellation and fan-out are exercised for real without long sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from helpers import FAST_POLL, client_tasks, fast_client, per_poll, spaced, wait_until

import telegent_async as tg
from telegent_async.testing import FakeTelegent, FaultKind, RecordedRequest, Step

#: Polls a few milliseconds apart, for lifecycles counted in polls (`per_poll`), where only
#: the order of events matters, never the spacing.
QUICK_POLL = tg.PollPolicy(initial=0.002, factor=2.0, max_interval=0.005, jitter=0.2)
#: A policy whose next poll lies far beyond any deadline used here.
SLOW_POLL = tg.PollPolicy(initial=10.0, factor=2.0, max_interval=10.0, jitter=0.0)
#: The deadline of the deadline tests, and when their order turns Scheduled: a token and a
#: first poll have 0.1 s to see it Pending, on however loaded a machine; the deadline is short
#: beside the pauses and stalls a bug would wait out.
DEADLINE = 0.15
SCHEDULED_AT = 0.1
#: How late a wait with a DEADLINE may end on a loaded machine: far less than what a bug
#: would cost (the 2 s attempt timeout of a stalled request, the 10 s pauses and polls below).
SLACK = 1.0
SETTLED = [
    ("Complete", tg.OrderStatus.COMPLETE),
    ("Completed", tg.OrderStatus.COMPLETE),
    ("Error", tg.OrderStatus.ERROR),
    ("Failed", tg.OrderStatus.ERROR),
    ("Rejected", tg.OrderStatus.REJECTED),
    ("ResolutionRequired", tg.OrderStatus.RESOLUTION_REQUIRED),
    ("Cancelled", tg.OrderStatus.CANCELLED),
    ("COMPLETED", tg.OrderStatus.COMPLETE),
    ("resolution required", tg.OrderStatus.RESOLUTION_REQUIRED),
    (" Rejected ", tg.OrderStatus.REJECTED),
    ("canceled", tg.OrderStatus.CANCELLED),
]
SETTLED_SPELLINGS = [raw for raw, _ in SETTLED]


def new_id(rng: random.Random | None = None) -> str:
    bits = (rng or random).getrandbits(128)
    return f"JNUOID-{uuid.UUID(int=bits)}"


def lifecycle(*statuses: str, gap: float = 0.03) -> list[Step]:
    """Each status visible `gap` seconds after the previous one."""
    return [Step(status, index * gap) for index, status in enumerate(statuses)]


async def assert_quiet(fake: FakeTelegent, seconds: float = 0.06) -> None:
    """No request reaches the server for `seconds` (by default longer than FAST_POLL's longest
    interval, 0.04 s): nothing is polling any more. A request
    already written when the wait ended may still land: it is let in first (20 ms of loop
    turns, the server's own I/O served before any timer), then the window is counted."""
    await asyncio.sleep(0.02)
    before = fake.request_count
    await asyncio.sleep(seconds)
    assert fake.request_count == before


def times_by_id(requests: Iterable[RecordedRequest]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for request in requests:
        found.setdefault(dict(request.query)["OrderId"], []).append(request.at)
    return found


def assert_paced(times: list[float], policy: tg.PollPolicy) -> None:
    """Polls of one order are at least the policy's shortest delay apart, attempt by attempt.

    A second poll inside one round (an ID polled twice because it was passed twice, or a
    stray retry loop) would show up as a gap shorter than that.
    """
    steps = policy.intervals
    for attempt, (earlier, later) in enumerate(itertools.pairwise(times)):
        shortest = steps[min(attempt, len(steps) - 1)] * (1 - policy.jitter)
        assert later - earlier >= shortest - 1e-3, (attempt, later - earlier, shortest)


# -- wait_for_order -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), SETTLED, ids=SETTLED_SPELLINGS)
async def test_wait_returns_every_settled_status(
    fake: FakeTelegent, client: tg.TelegentClient, raw: str, expected: tg.OrderStatus
) -> None:
    fake.add_order("JNOID-warm", "Complete")
    await client.get_order("JNOID-warm")  # token and connection ready: the first poll is prompt
    seen: list[tuple[str, float]] = []  # each change the client reported, and when

    def record(update: tg.Order) -> None:
        seen.append((update.raw_status, time.monotonic()))

    async with per_poll(fake, "JNOID-1", ["Pending", "InProgress", raw], message="8A-WRONG"):
        order = await client.wait_for_order(
            "JNOID-1", timeout=5.0, policy=QUICK_POLL, on_update=record
        )
    assert order.status is expected and order.raw_status == raw and order.is_settled
    assert order.succeeded is (expected is tg.OrderStatus.COMPLETE)
    # It saw the order pending, polled on, and reported the settled status last.
    assert seen[0][0] == "Pending" and seen[-1][0] == raw
    # And it stopped as soon as it had the settled answer: no request reached the fake after
    # that (`at` and `seen` are both time.monotonic()). Counting the requests that arrived after
    # `settled_at` cannot show this: a poll whose answer never reached the client (an attempt
    # timed out on a loaded machine, or a reused connection aiohttp silently re-sent on) is
    # retried, so two requests after `settled_at` can be one poll, rightly repeated.
    received_at = seen[-1][1]
    assert all(request.at < received_at for request in fake.order_requests("JNOID-1"))
    await assert_quiet(fake, 0.02)  # four QUICK_POLL intervals


async def test_wait_returns_at_once_when_already_settled(
    fake: FakeTelegent, client: tg.TelegentClient
) -> None:
    fake.add_order("JNUOID-1", "Error", message="6P-REMOVE NUMBER LOCK")
    order = await client.wait_for_order("JNUOID-1", policy=SLOW_POLL)
    assert order.failed and order.status_message == "6P-REMOVE NUMBER LOCK"
    assert len(fake.order_requests("JNUOID-1")) == 1


async def _after_first_poll(fake: FakeTelegent, fault: FaultKind, **options: Any) -> None:
    """Inject `fault` in the loop turn after the first poll arrives (however loaded the
    machine): the second poll, at least a timer and a round trip later, gets it."""
    await wait_until(lambda: len(fake.order_requests("JNUOID-1")) >= 1, interval=0)
    fake.inject(fault, count=100, **options)


@pytest.mark.parametrize(
    ("policy", "fault", "options"),
    [
        (FAST_POLL, None, {}),
        (
            SLOW_POLL,
            None,
            {},
        ),  # the next poll would be 10 s away: the wait must not sleep that long
        (FAST_POLL, "stall", {}),  # a request hangs across the deadline
        (FAST_POLL, "429", {"retry_after": "10"}),  # the client pauses 10 s for a Retry-After
        (FAST_POLL, "503", {}),  # and here its retry backoff (SLOW_POLL) would sleep 10 s
    ],
    ids=["polling", "next-poll-after-deadline", "stalled-request", "retry-after-10s", "retry-10s"],
)
async def test_deadline_is_honoured_and_carries_the_last_order(
    fake: FakeTelegent, policy: tg.PollPolicy, fault: FaultKind | None, options: dict[str, Any]
) -> None:
    fake.add_order("JNUOID-1", lifecycle("Pending", "Scheduled", gap=SCHEDULED_AT))
    async with fast_client(fake, retry_policy=SLOW_POLL if fault == "503" else FAST_POLL) as client:
        started = time.monotonic()
        waiter = asyncio.ensure_future(
            client.wait_for_order("JNUOID-1", timeout=DEADLINE, policy=policy)
        )
        if fault is not None:
            await _after_first_poll(fake, fault, **options)
        with pytest.raises(tg.OrderWaitTimeout) as caught:
            await waiter
        elapsed = time.monotonic() - started
    assert DEADLINE - 0.01 <= elapsed < DEADLINE + SLACK
    error = caught.value
    assert error.order_id == "JNUOID-1" and "JNUOID-1" in str(error)
    assert error.last_order is not None and error.last_order.order_id == "JNUOID-1"
    # Polling on (or polling once more at the deadline), it saw the change to Scheduled; held
    # up after the first poll, it did not.
    expected = "Scheduled" if fault is None else "Pending"
    assert error.last_order.raw_status == expected


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (None, tg.NotFoundError),  # an unknown order
        ("400", tg.BadRequestError),
        ("403", tg.PermissionDeniedError),
        ("404", tg.NotFoundError),
        ("405", tg.MethodNotAllowedError),
    ],
    ids=["unknown", "400", "403", "404", "405"],
)
async def test_permanent_error_raises_at_once(
    fake: FakeTelegent, client: tg.TelegentClient, fault: FaultKind | None, error: type[Exception]
) -> None:
    if fault is not None:
        fake.add_order("JNUOID-1", "Pending")
        fake.inject(fault)
    started = time.monotonic()
    with pytest.raises(error):
        await client.wait_for_order("JNUOID-1", timeout=5.0, policy=FAST_POLL)
    assert time.monotonic() - started < SLACK  # not the 5 s timeout
    assert len(fake.order_requests("JNUOID-1")) == 1  # and not a second poll
    await assert_quiet(fake, 0.05)


async def test_rejected_token_after_renewal_raises(
    fake: FakeTelegent, client: tg.TelegentClient
) -> None:
    fake.add_order("JNUOID-1", "Pending")
    fake.inject("401", count=2)  # the client renews its token once, then gives up
    with pytest.raises(tg.AuthenticationError):
        await client.wait_for_order("JNUOID-1", timeout=5.0, policy=FAST_POLL)
    assert len(fake.order_requests("JNUOID-1")) == 2
    assert len(fake.token_requests) == 2


@pytest.mark.parametrize(
    ("fault", "count"),
    [("503", 6), ("408", 6), ("html", 6), ("429", 6), ("malformed", 6), ("reset", 12)],
)
async def test_transient_failures_inside_the_deadline_do_not_end_the_wait(
    fake: FakeTelegent, fault: FaultKind, count: int
) -> None:
    # max_retries=2: each lookup makes 3 attempts, so `count` faults exhaust two lookups (a
    # reset costs aiohttp's own retry too).
    fake.add_order("JNUOID-1", "Complete")
    fake.inject(fault, count=count, retry_after="0.01")
    async with fast_client(fake, max_retries=2) as client:
        with pytest.raises(tg.TelegentError):
            await client.get_order("JNUOID-1")  # the burst is longer than one lookup's retries
        order = await client.wait_for_order("JNUOID-1", timeout=5.0, policy=FAST_POLL)
    assert order.succeeded
    faults = [r.fault for r in fake.order_requests("JNUOID-1")]
    assert faults == [fault] * count + [None]  # every fault seen, then one clean answer


async def _pending_polls(fake: FakeTelegent) -> None:
    await wait_until(lambda: len(fake.order_requests("JNUOID-1")) >= 3)


async def _rate_limit_pause(fake: FakeTelegent) -> None:
    fake.inject("429", retry_after="5")  # Retry-After: the whole client pauses for 5 s
    await wait_until(lambda: fake.status_counts.get(429, 0) == 1)


async def _retry_sleep(fake: FakeTelegent) -> None:
    fake.inject("503")  # the client's retry policy (SLOW_POLL here) sleeps 10 s before retrying
    await wait_until(lambda: fake.status_counts.get(503, 0) == 1)


async def _stalled(fake: FakeTelegent) -> None:
    fake.inject("stall")
    await wait_until(lambda: fake.request_count >= 1)


@pytest.mark.parametrize("reach", [_pending_polls, _rate_limit_pause, _retry_sleep, _stalled])
async def test_cancelling_the_wait_stops_polling_and_leaves_no_task(
    fake: FakeTelegent, reach: Callable[[FakeTelegent], Any]
) -> None:
    fake.add_order("JNUOID-1", "Pending")
    async with fast_client(fake, retry_policy=SLOW_POLL) as client:
        await client.get_order("JNUOID-1")  # token and connection in place before the baseline
        fake.clear_requests()
        before = client_tasks()
        waiter = asyncio.ensure_future(
            client.wait_for_order("JNUOID-1", timeout=None, policy=FAST_POLL)
        )
        await reach(fake)
        await asyncio.sleep(0.01)  # let it settle into its pause
        waiter.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert time.monotonic() - started < 0.5  # not the 10 s pause or the 2 s stall
        assert client_tasks() == before
        await assert_quiet(fake)


# -- watch_order and on_update ------------------------------------------------------------------

STATUSES = ("Pending", "Submitted", "Pending Carrier Approval", "Complete")


async def test_watch_order_yields_each_change_once(
    fake: FakeTelegent, client: tg.TelegentClient
) -> None:
    async with per_poll(fake, "JNOID-1", STATUSES):  # each status polled twice
        seen = [order async for order in client.watch_order("JNOID-1", policy=QUICK_POLL)]
    assert [order.raw_status for order in seen] == list(STATUSES)
    assert [order.is_settled for order in seen] == [False, False, False, True]
    assert len(fake.order_requests("JNOID-1")) > len(STATUSES)  # unchanged polls not yielded


async def test_watch_order_ends_after_a_settled_first_observation(
    fake: FakeTelegent, client: tg.TelegentClient
) -> None:
    fake.add_order("JNOID-1", "Cancelled")
    seen = [order.status async for order in client.watch_order("JNOID-1", policy=FAST_POLL)]
    assert seen == [tg.OrderStatus.CANCELLED]
    await assert_quiet(fake, 0.05)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_update_is_called_once_per_change(
    fake: FakeTelegent, client: tg.TelegentClient, kind: str
) -> None:
    seen: list[str] = []

    def record(order: tg.Order) -> None:
        seen.append(order.raw_status)

    async def record_later(order: tg.Order) -> None:
        await asyncio.sleep(0)
        seen.append(order.raw_status)

    callback = record if kind == "sync" else record_later
    async with per_poll(fake, "JNOID-1", STATUSES):
        order = await client.wait_for_order("JNOID-1", policy=QUICK_POLL, on_update=callback)
    assert seen == list(STATUSES)
    assert order.raw_status == "Complete"


async def test_on_update_error_ends_the_wait(fake: FakeTelegent, client: tg.TelegentClient) -> None:
    fake.add_order("JNOID-1", "Pending")

    def explode(order: tg.Order) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        await client.wait_for_order("JNOID-1", policy=FAST_POLL, on_update=explode)
    assert len(fake.order_requests("JNOID-1")) == 1
    await assert_quiet(fake, 0.05)


async def test_status_changes_logged_at_info_without_tokens(
    fake: FakeTelegent, client: tg.TelegentClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="telegent_async")
    fake.inject("503")
    async with per_poll(fake, "JNOID-7", ["Pending", "Scheduled", "Complete"]):
        await client.wait_for_order("JNOID-7", policy=QUICK_POLL)
    records = [r for r in caplog.records if r.name == "telegent_async"]
    changes = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert len(changes) == 3 and all("JNOID-7" in line for line in changes)
    assert [line.split()[-1] for line in changes] == ["Pending", "Scheduled", "Complete"]
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert any("retry" in line and "JNOID-7" in line for line in debug)
    assert any("poll" in line and "JNOID-7" in line for line in debug)
    tokens = {r.token for r in fake.order_requests() if r.token is not None}
    assert tokens
    secrets = [*tokens, fake.account_secret]
    assert not [line for line in caplog.text.splitlines() if any(s in line for s in secrets)]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": "10"}, TypeError),
        ({"policy": "fast"}, TypeError),
    ],
)
async def test_invalid_wait_arguments_fail_before_any_request(
    fake: FakeTelegent, client: tg.TelegentClient, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.wait_for_order("JNUOID-1", **kwargs)
    with pytest.raises(error):
        await anext(aiter(client.wait_for_orders(["JNUOID-1"], **kwargs)))
    with pytest.raises(ValueError):
        await anext(aiter(client.wait_for_orders(["JNUOID-1", " "])))
    with pytest.raises(TypeError):
        client.wait_for_orders("JNUOID-1")
    assert fake.request_count == 0


# -- wait_for_orders ----------------------------------------------------------------------------


def script_orders(
    fake: FakeTelegent, rng: random.Random, count: int, unknown: int, spread: float
) -> tuple[dict[str, str], list[str]]:
    """Add `count` orders settling at random within `spread` s; return finals and every ID."""
    finals: dict[str, str] = {}
    for _ in range(count):
        order_id, final = new_id(rng), rng.choice(SETTLED_SPELLINGS)
        settle = rng.uniform(0.0, spread)
        steps = [Step("Pending", 0.0), Step("InProgress", settle / 2), Step(final, settle)]
        fake.add_order(order_id, steps)
        finals[order_id] = final
    ids = [*finals, *(new_id(rng) for _ in range(unknown))]
    return finals, ids


async def test_wait_for_orders_one_outcome_per_distinct_id(fake: FakeTelegent) -> None:
    rng = random.Random(3)
    finals, distinct = script_orders(fake, rng, count=950, unknown=50, spread=0.15)
    ids = distinct + rng.choices(distinct, k=300)  # 300 duplicates
    rng.shuffle(ids)
    max_connections = 10
    received: dict[str, float] = {}
    async with fast_client(fake, max_connections=max_connections) as client:
        stream = client.wait_for_orders(ids, timeout=20.0, policy=FAST_POLL)
        outcomes = []
        async for outcome in stream:
            assert stream.in_flight <= max_connections
            received[outcome.order_id] = time.monotonic()
            outcomes.append(outcome)
    assert fake.peak_connections <= max_connections
    assert len(outcomes) == len(distinct) == len({o.order_id for o in outcomes})
    polls = times_by_id(fake.order_requests())
    assert set(polls) == set(distinct)
    for outcome in outcomes:
        times = polls[outcome.order_id]
        final = finals.get(outcome.order_id)
        if final is None:
            assert isinstance(outcome.error, tg.NotFoundError) and outcome.order is None
            assert len(times) == 1
            continue
        assert outcome.error is None and outcome.order is not None
        assert outcome.order.raw_status == final and outcome.order.is_settled
        settled_at = fake.settled_at(outcome.order_id)
        assert all(at < settled_at for at in times[:-1])  # no poll after it was seen settled
        assert received[outcome.order_id] >= settled_at  # yielded as it settled, not before
        assert_paced(times, FAST_POLL)


async def test_transient_failures_do_not_end_a_fan_out(fake: FakeTelegent) -> None:
    rng = random.Random(5)
    finals, ids = script_orders(fake, rng, count=30, unknown=0, spread=0.05)
    fake.inject("503", count=40)
    async with fast_client(fake, max_retries=0) as client:
        outcomes = [o async for o in client.wait_for_orders(ids, timeout=5.0, policy=FAST_POLL)]
    assert {o.order_id: o.order.raw_status for o in outcomes if o.order} == finals
    assert all(o.error is None for o in outcomes)
    assert fake.status_counts[503] == 40


async def test_wait_for_orders_deadline_gives_timeouts_with_the_last_order(
    fake: FakeTelegent, client: tg.TelegentClient
) -> None:
    # Few enough that every stuck order is polled again after it turns Scheduled, before the
    # deadline, on a loaded machine too (150 of them took more than 0.15 s of polls).
    quick = [f"JNUOID-q{i}" for i in range(20)]
    stuck = [f"JNUOID-s{i}" for i in range(40)]
    for order_id in quick:
        fake.add_order(order_id, lifecycle("Pending", "Complete", gap=0.02))
    extra = {"ICCID": "8901260123456789012", "Nested": {"list": [1, 2.5, None, "x"]}}
    for order_id in stuck:
        fake.add_order(
            order_id,
            lifecycle("Pending", "Scheduled", gap=0.05),
            phone_numbers=["+12815703894"],
            extra=extra,
        )
    started = time.monotonic()
    outcomes = {
        o.order_id: o
        async for o in client.wait_for_orders(quick + stuck, timeout=0.3, policy=FAST_POLL)
    }
    assert time.monotonic() - started < 0.3 + SLACK
    assert len(outcomes) == 60
    assert all(outcomes[i].ok for i in quick)
    for order_id in stuck:
        outcome = outcomes[order_id]
        assert isinstance(outcome.error, tg.OrderWaitTimeout)
        assert outcome.error.order_id == order_id
        last = outcome.order
        assert last is not None and last.raw_status == "Scheduled"
        assert outcome.error.last_order == last
        # The last answer is kept whole for this outcome, every field of it.
        assert last.order_id == order_id and last.phone_numbers == ("+12815703894",)
        assert last.order_date is not None and last.order_type == "Provision"
        assert {key: last.raw[key] for key in extra} == extra
        assert outcome.error.__cause__ is None  # its last poll was answered
    assert client_tasks() == set()
    await assert_quiet(fake, 0.05)


@pytest.mark.slow  # fairness measured over a real-time second
async def test_fan_out_shares_the_budget_fairly(fake: FakeTelegent) -> None:
    ids = [f"JNUOID-p{i}" for i in range(300)]
    for order_id in [*ids, "JNUOID-other"]:
        fake.add_order(order_id, "Pending")
    # 500 requests/s: one round of 300 polls takes 0.6 s, so every poll is overdue at once.
    async with fast_client(fake, budget=spaced(60 * 500)) as client:
        await client.get_order("JNUOID-other")  # the token, before the measurement
        fake.clear_requests()
        stream = client.wait_for_orders(ids, timeout=None, policy=FAST_POLL)
        consumer = asyncio.ensure_future(anext(aiter(stream)))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await client.get_order("JNUOID-other")
        # Another caller queues behind the fan-out's in-flight polls, not behind its backlog.
        # (Behind the backlog would be 300 / 500 = 0.6 s; its own slot is 20 / 500 s away.)
        assert time.monotonic() - started < 0.4

        def every_order_polled() -> bool:
            return len(times_by_id(fake.order_requests())) == len(ids) + 1

        # A round takes 0.6 s, longer on a loaded machine (the fake shares this loop).
        await wait_until(every_order_polled, 10.0, interval=0.02)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
    polls = [len(times) for times in times_by_id(fake.order_requests()).values() if times]
    # Round robin: by the time every order was polled, none was polled a third time.
    assert len(polls) == len(ids) + 1 and min(polls) >= 1
    assert max(polls) - min(polls) <= 1


async def _leave_by_break(stream: tg.OrderStream, seen: list[tg.OrderOutcome]) -> None:
    async for outcome in stream:
        seen.append(outcome)
        if len(seen) == 10:
            break


async def _leave_async_with(stream: tg.OrderStream, seen: list[tg.OrderOutcome]) -> None:
    async with stream:
        await _leave_by_break(stream, seen)


async def _leave_by_exception(stream: tg.OrderStream, seen: list[tg.OrderOutcome]) -> None:
    with pytest.raises(LookupError):
        async for outcome in stream:
            seen.append(outcome)
            if len(seen) == 10:
                raise LookupError("caller gave up")


async def _leave_by_cancellation(stream: tg.OrderStream, seen: list[tg.OrderOutcome]) -> None:
    async def consume() -> None:
        async for outcome in stream:
            seen.append(outcome)

    consumer = asyncio.ensure_future(consume())
    await wait_until(lambda: len(seen) >= 10)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    del seen[10:]


@pytest.mark.parametrize(
    "leave", [_leave_by_break, _leave_async_with, _leave_by_exception, _leave_by_cancellation]
)
async def test_leaving_early_stops_every_poll(
    fake: FakeTelegent,
    caplog: pytest.LogCaptureFixture,
    leave: Callable[[tg.OrderStream, list[tg.OrderOutcome]], Any],
) -> None:
    _, ids = script_orders(fake, random.Random(11), count=950, unknown=50, spread=0.1)
    # A paced budget keeps polls queued in flight: they must be cancelled, not drained.
    async with fast_client(fake, budget=spaced(60 * 400)) as client:
        seen: list[tg.OrderOutcome] = []
        await leave(client.wait_for_orders(ids, timeout=20.0, policy=FAST_POLL), seen)
        assert len(seen) == 10
        left_at = fake.request_count
        await asyncio.sleep(0.03)
        assert fake.request_count - left_at <= client.max_connections  # those already sent
        assert client_tasks() == set()
        await assert_quiet(fake)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_wait_for_orders_without_ids_or_deadline(client: tg.TelegentClient) -> None:
    assert [o async for o in client.wait_for_orders([], timeout=None)] == []
