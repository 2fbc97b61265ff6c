"""telegent_async.contrib.temporal: the waits (poll_order, wait_for_order) in Temporal's
ActivityEnvironment against FakeTelegent over real sockets (no Temporal server), their errors
as Temporal records them, and one budget for every activity of a worker."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta
from typing import Any

import pytest

pytest.importorskip("temporalio", reason="the temporal extra: pip install -e . --group test")
pytest.importorskip("cryptography", reason="the temporal extra: pip install -e . --group test")

from helpers import client_tasks, fast_client, per_poll, wait_until
from temporal_env import CONVERTER, PORTIN, environment, failure_of, raised
from temporalio import activity
from temporalio.exceptions import ActivityError, RetryState

import telegent_async as tg
from telegent_async.contrib import temporal as tgt
from telegent_async.testing import FakeTelegent, Step

# -- poll_order: one poll per attempt ----------------------------------------------------------


async def test_poll_order_returns_a_completed_order(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order("JNUOID-t-ok", "Complete", phone_numbers=["+12815550100"])
    env, _ = environment()
    result = await env.run(activities.poll_order, tgt.PollInput("JNUOID-t-ok"))
    assert (result.order_id, result.status, result.raw_status) == (
        "JNUOID-t-ok",
        "COMPLETE",
        "Complete",
    )
    assert result.succeeded and result.is_settled and not result.needs_action
    assert result.raw["OrderId"] == "JNUOID-t-ok"
    assert len(fake.order_requests("JNUOID-t-ok")) == 1


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(1, 600.0), (2, 1200.0), (3, 2400.0), (6, 19200.0), (7, 21600.0), (40, 21600.0)],
)
async def test_a_pending_order_is_a_retryable_order_pending_on_the_port_in_cadence(
    fake: FakeTelegent, activities: tgt.OrderActivities, attempt: int, seconds: float
) -> None:
    fake.add_order(PORTIN.order_id, "Pending Carrier Approval")
    env, _ = environment(attempt=attempt)
    error = await raised(env.run(activities.poll_order, PORTIN))
    assert isinstance(error, tgt.OrderPending)
    assert (error.type, error.non_retryable) == ("OrderPending", False)
    assert error.next_retry_delay == timedelta(seconds=seconds)
    [seen] = error.details
    assert (seen.status, seen.raw_status) == (
        "PENDING_CARRIER_APPROVAL",
        "Pending Carrier Approval",
    )


async def test_no_preset_polls_at_the_worker_clients_cadence(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-t-cad", "Submitted")
    cadence = tg.PollPolicy(initial=3.0, factor=3.0, max_interval=100.0, jitter=0.0)
    async with fast_client(fake, poll_policy=cadence) as client:
        env, _ = environment(attempt=3)
        error = await raised(
            env.run(tgt.OrderActivities(client).poll_order, tgt.PollInput("JNUOID-t-cad"))
        )
    assert error.next_retry_delay == timedelta(seconds=27.0)


async def test_jitter_only_shortens_the_delay_by_its_share(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order(PORTIN.order_id, "Submitted")
    env, _ = environment(attempt=1)
    request = dataclasses.replace(PORTIN, jitter=0.2)
    delays = [
        (await raised(env.run(activities.poll_order, request))).next_retry_delay for _ in range(5)
    ]
    assert all(timedelta(seconds=480) <= d <= timedelta(seconds=600) for d in delays if d)


async def test_a_429_retry_after_is_the_earliest_next_poll(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-t-429", "Submitted")
    fake.inject("429", retry_after="45")
    async with fast_client(fake, max_retries=0) as client:
        env, _ = environment(attempt=1)
        error = await raised(
            env.run(
                tgt.OrderActivities(client).poll_order, tgt.PollInput("JNUOID-t-429", jitter=0.0)
            )
        )
    assert (error.type, error.non_retryable) == ("RateLimitError", False)
    assert error.next_retry_delay == timedelta(seconds=45)  # the cadence alone says 20 ms


async def test_a_transient_failure_is_retried_on_the_cadence(fake: FakeTelegent) -> None:
    fake.add_order(PORTIN.order_id, "Submitted")
    fake.inject("503", count=3)
    async with fast_client(fake, max_retries=2) as client:
        env, _ = environment(attempt=2)
        error = await raised(env.run(tgt.OrderActivities(client).poll_order, PORTIN))
    assert (error.type, error.non_retryable) == ("ServiceUnavailableError", False)
    assert error.next_retry_delay == timedelta(seconds=1200)
    assert len(fake.order_requests(PORTIN.order_id)) == 3  # the SDK's own retries first


async def test_a_settled_failure_is_a_non_retryable_order_failed_carrying_the_result(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order(PORTIN.order_id, "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8C-PIN")
    env, _ = environment()
    error = await raised(env.run(activities.poll_order, PORTIN))
    assert isinstance(error, tgt.OrderFailed)
    assert (error.type, error.non_retryable, error.next_retry_delay) == ("OrderFailed", True, None)
    # What the workflow catches: the failure as recorded, decoded without type hints.
    received = await CONVERTER.decode_failure(await failure_of(error))
    wrapped = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="worker",
        activity_type="telegent.poll_order",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    wrapped.__cause__ = received
    result = tgt.failed_result(wrapped)
    assert result == error.details[0]
    assert result is not None and result.needs_action and not result.succeeded
    assert (result.carrier_code, result.update_fields) == (
        "8A",
        ("current_account_number", "current_account_password"),
    )


@pytest.mark.parametrize(
    ("request_", "kind"),
    [
        (tgt.PollInput("JNUOID-t-none"), "NotFoundError"),
        (tgt.PollInput(""), "ValueError"),
        (tgt.PollInput("JNUOID-t-ok", preset="weekly"), "ValueError"),
        (tgt.PollInput("JNUOID-t-ok", factor=0.5), "ValueError"),
    ],
)
async def test_what_no_retry_can_change_is_non_retryable(
    fake: FakeTelegent, activities: tgt.OrderActivities, request_: tgt.PollInput, kind: str
) -> None:
    fake.add_order("JNUOID-t-ok", "Complete")
    for run in (activities.poll_order, activities.wait_for_order):
        env, _ = environment()
        error = await raised(env.run(run, request_))
        assert (error.type, error.non_retryable) == (kind, True)


async def test_credentials_refused_are_final(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-t-ok", "Complete")
    async with fast_client(fake, token="not-a-token") as client:
        env, _ = environment()
        error = await raised(env.run(tgt.OrderActivities(client).get_order, "JNUOID-t-ok"))
    assert (error.type, error.non_retryable) == ("AuthenticationError", True)
    assert "not-a-token" not in (await failure_of(error)).SerializeToString().decode(
        errors="replace"
    )


async def test_a_port_in_wait_of_n_polls_costs_n_activity_attempts(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    """Temporal's retry loop, simulated: attempt after attempt until no OrderPending, the
    server's wait between attempts skipped. Each attempt is one poll and returns at once, and
    nothing of the activity runs between attempts: no worker slot is held while it waits."""
    statuses = ["Submitted", "Pending Carrier Approval", "Scheduled", "Complete"]
    delays: list[timedelta | None] = []
    durations: list[float] = []
    async with per_poll(fake, PORTIN.order_id, statuses, polls=2):
        attempt = 0
        while True:
            attempt += 1
            env, _ = environment(attempt=attempt)
            started = time.monotonic()
            try:
                result = await env.run(activities.poll_order, PORTIN)
            except tgt.OrderPending as pending:
                delays.append(pending.next_retry_delay)
                continue
            finally:
                durations.append(time.monotonic() - started)
                assert client_tasks() <= _driver_tasks(), "something runs between attempts"
            break
    polls = 2 * 3 + 1
    assert result.succeeded
    assert attempt == polls == len(fake.order_requests(PORTIN.order_id))
    minutes = [10, 20, 40, 80, 160, 320]
    assert delays == [timedelta(minutes=m) for m in minutes]
    assert max(durations) < 1.0  # an attempt is one lookup, not a wait of 10 minutes or more


def _driver_tasks() -> set[asyncio.Task[Any]]:
    """per_poll's own driver, the only task a test of the loop may leave between attempts."""
    return {
        t
        for t in client_tasks()
        if getattr(t.get_coro(), "__qualname__", "").startswith("per_poll")
    }


# -- wait_for_order: a heartbeating loop -------------------------------------------------------

QUICK = tgt.PollInput("JNUOID-t-w", initial=0.01, factor=2.0, max_interval=0.04, jitter=0.0)


async def test_wait_for_order_heartbeats_every_poll(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    async with per_poll(fake, QUICK.order_id, ["Submitted", "Scheduled", "Complete"], polls=2):
        env, beats = environment()
        result = await env.run(activities.wait_for_order, QUICK)
    assert result.succeeded
    assert beats == [
        {"polls": 1, "last_status": "Submitted"},
        {"polls": 2, "last_status": "Submitted"},
        {"polls": 3, "last_status": "Scheduled"},
        {"polls": 4, "last_status": "Scheduled"},
        {"polls": 5, "last_status": "Complete"},
    ]
    assert len(fake.order_requests(QUICK.order_id)) == 5


async def test_wait_for_order_resumes_its_count_and_cadence_from_the_last_heartbeat(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    request = tgt.PollInput("JNUOID-t-r", initial=0.02, factor=2.0, max_interval=1.0, jitter=0.0)
    async with per_poll(fake, request.order_id, ["Submitted", "Complete"], polls=1):
        env, beats = environment(attempt=2, details={"polls": 3, "last_status": "Submitted"})
        await env.run(activities.wait_for_order, request)
    assert [beat["polls"] for beat in beats] == [4, 5]
    first, second = (r.at for r in fake.order_requests(request.order_id))
    # after poll 4 the cadence's fourth delay, 160 ms (a fresh count would wait 20 ms)
    assert second - first >= 0.16


async def test_wait_for_order_heartbeats_while_it_sleeps(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    request = tgt.PollInput("JNUOID-t-s", initial=0.3, factor=1.0, max_interval=0.3, jitter=0.0)
    async with per_poll(fake, request.order_id, ["Submitted", "Complete"], polls=1):
        env, beats = environment(heartbeat_timeout=0.1)
        await env.run(activities.wait_for_order, request)
    between = beats[1:-1]  # after the first poll's heartbeat, before the second's
    assert len(between) >= 3
    assert all(beat == {"polls": 1, "last_status": "Submitted"} for beat in between)


async def test_a_malformed_heartbeat_starts_the_count_afresh(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order(QUICK.order_id, "Complete")
    env, beats = environment(attempt=2, details={"polls": "three"})
    await env.run(activities.wait_for_order, QUICK)
    assert beats == [{"polls": 1, "last_status": "Complete"}]


async def test_wait_for_order_stops_at_once_when_cancelled(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order(PORTIN.order_id, "Submitted")
    env, beats = environment(heartbeat_timeout=30.0)
    task = asyncio.ensure_future(env.run(activities.wait_for_order, PORTIN))
    await wait_until(lambda: len(beats) == 1)
    env.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(0.05)
    assert len(fake.order_requests(PORTIN.order_id)) == 1
    assert not client_tasks()


async def test_wait_for_order_polls_through_transient_failures(
    fake: FakeTelegent,
) -> None:
    fake.add_order(QUICK.order_id, "Complete")
    fake.inject("503", count=2)
    async with fast_client(fake, max_retries=0) as client:
        env, beats = environment()
        result = await env.run(tgt.OrderActivities(client).wait_for_order, QUICK)
    assert result.succeeded
    assert [beat["last_status"] for beat in beats] == [None, None, "Complete"]


async def test_wait_for_order_raises_order_failed_for_a_settled_failure(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order(
        QUICK.order_id, [Step("Submitted"), Step("Error", 0.05)], message="Provisioning failed"
    )
    env, _ = environment()
    error = await raised(env.run(activities.wait_for_order, QUICK))
    assert isinstance(error, tgt.OrderFailed)
    assert error.details[0].status == "ERROR"
    assert error.details[0].reason == "Provisioning failed"


# -- one client per worker -------------------------------------------------------------------


async def test_the_activities_of_a_worker_share_one_budget_and_one_token(
    fake: FakeTelegent,
) -> None:
    for n in range(4):
        fake.add_order(f"JNUOID-t-b{n}", "Submitted")
    budget = tg.LocalBudget(4, window=60.0)  # 4 requests a minute for the whole worker
    async with fast_client(fake, budget=budget) as client:
        activities = tgt.OrderActivities(client)
        env, _ = environment()
        calls = [
            env.run(activities.poll_order, tgt.PollInput("JNUOID-t-b0")),
            env.run(activities.get_order, "JNUOID-t-b1"),
            env.run(activities.poll_order, tgt.PollInput("JNUOID-t-b2")),
            env.run(activities.get_order, "JNUOID-t-b3"),
        ]
        tasks = [asyncio.ensure_future(call) for call in calls]
        await wait_until(lambda: fake.request_count == 4)
        await asyncio.sleep(0.2)
        # one token and three lookups fill the window; the fourth lookup waits for the next
        assert (fake.request_count, len(fake.token_requests)) == (4, 1)
        assert sum(task.done() for task in tasks) == 3
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_workers_on_one_redis_budget_share_the_accounts_rate(
    fake: FakeTelegent, redis_url: str, namespace: str
) -> None:
    """Two worker processes' activities (two clients) under one RedisBudget of 4 a minute:
    the two workers' tokens and two lookups fill the window, and the other four polls wait."""
    for n in range(6):
        fake.add_order(f"JNUOID-t-r{n}", "Submitted")
    budgets = [tg.RedisBudget(redis_url, 4, namespace, window=60.0) for _ in range(2)]
    async with fast_client(fake, budget=budgets[0]) as a, fast_client(fake, budget=budgets[1]) as b:
        env, _ = environment()
        polls = [
            env.run(tgt.OrderActivities(worker).poll_order, tgt.PollInput(f"JNUOID-t-r{n}"))
            for n, worker in enumerate([a, b] * 3)
        ]
        tasks = [asyncio.ensure_future(poll) for poll in polls]
        await wait_until(lambda: fake.request_count == 4)
        await asyncio.sleep(0.2)
        assert (fake.request_count, len(fake.token_requests)) == (4, 2)
        assert sum(task.done() for task in tasks) == 2
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_all_names_every_activity_once() -> None:
    client = tg.TelegentClient(token="t", base_url="https://api.example.test/v1.0")
    names = [
        activity._Definition.must_from_callable(fn).name for fn in tgt.OrderActivities(client).all()
    ]
    assert names == [
        "telegent.poll_order",
        "telegent.wait_for_order",
        "telegent.get_order",
        "telegent.update_port_in",
        "telegent.cancel_port_in",
        "telegent.submit_port_in",
    ]
    with pytest.raises(TypeError):
        tgt.OrderActivities("not a client")  # type: ignore[arg-type]
