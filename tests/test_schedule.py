"""The poll-schedule core on a fake clock: no sockets, no sleeping, microseconds per test."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest
from helpers import FakeClock, wait_until

import telegent_async as tg
from telegent_async._models import converter
from telegent_async._schedule import PollVerdict, decide, expired_unpolled, next_poll_at
from telegent_async._scheduler import Scheduler
from telegent_async._stores.base import NewWatch

#: 1 -> 2 -> 4 s, no jitter: the example of issue 9.
DOUBLING = tg.PollPolicy(initial=1.0, factor=2.0, max_interval=4.0, jitter=0.0)
NO_JITTER: Callable[[float], float] = lambda value: value  # noqa: E731


def order(status: str, order_id: str = "JNOID-1") -> tg.Order:
    return converter.structure({"OrderId": order_id, "OrderStatus": status}, tg.Order)


def test_a_settled_answer_settles() -> None:
    for status in ("Completed", "Error", "Rejected", "ResolutionRequired", "Cancelled"):
        verdict = decide(order(status), None, now=5, attempt=0, policy=DOUBLING, deadline=None)
        assert verdict.verdict is PollVerdict.SETTLED


def test_pending_answers_back_off_up_to_the_cap() -> None:
    delays = []
    for attempt in range(6):
        decision = decide(
            order("Submitted"), None, now=100.0, attempt=attempt, policy=DOUBLING, deadline=None
        )
        assert decision.verdict is PollVerdict.POLL and decision.next_poll is not None
        delays.append(decision.next_poll - 100.0)
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_jitter_is_passed_in() -> None:
    policy = tg.PollPolicy(initial=10.0, factor=2.0, max_interval=10.0, jitter=0.5)
    assert next_poll_at(0.0, 0, policy, None, lambda spread: 0.0) == 5.0
    assert next_poll_at(0.0, 0, policy, None, lambda spread: spread) == 10.0


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (tg.NotFoundError(404, "Order not found"), PollVerdict.FAILED),
        (tg.PermissionDeniedError(403, "no"), PollVerdict.FAILED),
        (tg.BadRequestError(400, "bad"), PollVerdict.FAILED),
        (tg.ServiceUnavailableError(503, "later"), PollVerdict.POLL),
        (tg.RateLimitError(429, "slow down"), PollVerdict.POLL),
        (tg.RequestTimeoutError(408, "slow"), PollVerdict.POLL),
        (tg.TransportError("reset"), PollVerdict.POLL),
        (tg.ResponseDecodeError("html", status_code=200, body="<html>"), PollVerdict.POLL),
    ],
)
def test_permanent_failures_end_and_transient_ones_poll_again(
    error: tg.TelegentError, verdict: PollVerdict
) -> None:
    decision = decide(None, error, now=0.0, attempt=0, policy=DOUBLING, deadline=None)
    assert decision.verdict is verdict


def test_the_next_poll_never_falls_past_the_deadline() -> None:
    decision = decide(order("Submitted"), None, now=3.0, attempt=2, policy=DOUBLING, deadline=6.5)
    assert decision.next_poll == 6.5  # 3 + 4 = 7 would be past it: poll AT the deadline
    # The answer to that last poll (or a failure then) is final.
    for answer, error in ((order("Submitted"), None), (None, tg.TransportError("reset"))):
        late = decide(answer, error, now=6.5, attempt=3, policy=DOUBLING, deadline=6.5)
        assert late.verdict is PollVerdict.TIMED_OUT
    done = decide(order("Completed"), None, now=6.5, attempt=3, policy=DOUBLING, deadline=6.5)
    assert done.verdict is PollVerdict.SETTLED


def test_a_due_poll_far_past_its_deadline_is_not_sent() -> None:
    assert not expired_unpolled(10.0, None, 0.0)
    assert not expired_unpolled(10.5, 10.0, 1.0)
    assert expired_unpolled(11.5, 10.0, 1.0)
    assert not expired_unpolled(1e12, 10.0, math.inf)


# -- the scheduler on a fake clock and fake lookups ----------------------------------------------


class FakeLookups:
    """Answers at once from a script: order ID -> status as a function of the fake time."""

    def __init__(
        self, clock: FakeClock, script: dict[str, Callable[[float], str]], slots: int = 20
    ) -> None:
        self.clock = clock
        self.script = script
        self.max_connections = slots
        self.budget = tg.LocalBudget(None)
        self.calls: list[tuple[str, float]] = []

    async def get_order(self, order_id: str) -> tg.Order:
        now = self.clock.now
        self.calls.append((order_id, now))
        if order_id not in self.script:
            raise tg.NotFoundError(404, "Order not found")
        return order(self.script[order_id](now - 1_000.0), order_id)


async def run_until_settled(
    lookups: FakeLookups, clock: FakeClock, watches: list[NewWatch], count: int
) -> list[tuple[tg.OrderOutcome, float]]:
    store = tg.MemoryStore(clock=clock)
    settled: list[tuple[tg.OrderOutcome, float]] = []
    scheduler = Scheduler(
        store,
        lookups,
        policy=DOUBLING,
        lease=60.0,
        worker="w",
        on_settled=lambda outcome: settled.append((outcome, clock.now)),
    )
    await store.add(watches)
    for _ in range(10_000):
        delay = await scheduler.step()
        if len(settled) == count:
            return settled
        if scheduler.in_flight:
            await asyncio.sleep(0)  # the fake answers at once: let the poll tasks finish
            continue
        assert math.isfinite(delay)
        clock.advance(max(delay, 0.0))
    raise AssertionError("the schedule never settled")


async def test_issue_9_example_settles_at_the_last_poll_before_the_deadline() -> None:
    clock = FakeClock(1_000.0)
    lookups = FakeLookups(clock, {"JNOID-1": lambda t: "Completed" if t >= 3.5 else "Submitted"})
    deadline = clock.now + 6.5
    ((outcome, at),) = await run_until_settled(
        lookups, clock, [NewWatch("JNOID-1", deadline=deadline)], 1
    )
    assert outcome.error is None and outcome.order is not None and outcome.order.succeeded
    assert [t - 1_000.0 for _, t in lookups.calls] == [0.0, 1.0, 3.0, 6.5]
    assert at == deadline


async def test_pending_at_the_deadline_times_out_with_the_last_answer() -> None:
    clock = FakeClock(1_000.0)
    lookups = FakeLookups(clock, {"JNOID-1": lambda t: "Submitted"})
    ((outcome, _),) = await run_until_settled(
        lookups, clock, [NewWatch("JNOID-1", deadline=clock.now + 2.5)], 1
    )
    assert isinstance(outcome.error, tg.OrderWaitTimeout)
    assert outcome.order is not None and outcome.order.raw_status == "Submitted"
    assert [t - 1_000.0 for _, t in lookups.calls] == [0.0, 1.0, 2.5]


async def test_a_missing_order_fails_at_once() -> None:
    clock = FakeClock(1_000.0)
    lookups = FakeLookups(clock, {})
    ((outcome, _),) = await run_until_settled(lookups, clock, [NewWatch("JNOID-x")], 1)
    assert isinstance(outcome.error, tg.NotFoundError)
    assert len(lookups.calls) == 1


async def test_orders_are_served_in_the_order_they_fell_due() -> None:
    clock = FakeClock(1_000.0)
    ids = [f"JNOID-{n}" for n in range(6)]
    # One poll at a time; every order settles on its third poll (0, +1, +2 s after its first).

    def settles_at(when: float) -> Callable[[float], str]:
        return lambda t: "Completed" if t >= when else "Submitted"

    script = {order_id: settles_at(n + 3) for n, order_id in enumerate(ids)}
    lookups = FakeLookups(clock, script, slots=1)
    settled = await run_until_settled(lookups, clock, [NewWatch(i) for i in ids], len(ids))
    assert [outcome.order_id for outcome, _ in settled] == ids
    # Every poll went out in due order: times never go backwards, and no order waits for a
    # later one (the first round polls them in the order they were added).
    times = [t for _, t in lookups.calls]
    assert times == sorted(times)
    assert [order_id for order_id, _ in lookups.calls[: len(ids)]] == ids


# -- overload: the most overdue first ------------------------------------------------------------


class CountingLookups:
    """Answers "Submitted" at once, one poll at a time; the budget is a real one, far below
    what is asked."""

    def __init__(self, budget: tg.LocalBudget) -> None:
        self.budget = budget
        self.max_connections = 1
        self.calls: list[str] = []

    async def get_order(self, order_id: str) -> tg.Order:
        if not self.budget.open_now(asyncio.get_running_loop().time()):
            await self.budget.acquire()  # as the transport does: the scheduler's start
        self.calls.append(order_id)
        return order("Submitted", order_id)


async def test_under_overload_the_scheduler_goes_round_the_pending_orders() -> None:
    """Three orders want a poll every 10 ms, three every 50 ms; the budget allows one each
    21 ms (a round of six: 126 ms). Each poll goes to the order whose answer is oldest: a
    round-robin, so the orders with long intervals are not starved by those with short
    ones."""
    loop = asyncio.get_running_loop()
    lookups = CountingLookups(tg.LocalBudget(3000, window=0.02))  # 1 per 20 ms window
    store = tg.MemoryStore(clock=loop.time)
    short = tg.PollPolicy(initial=0.01, max_interval=0.01, jitter=0.0)
    long = tg.PollPolicy(initial=0.05, max_interval=0.05, jitter=0.0)
    ids = ["S1", "S2", "S3", "L1", "L2", "L3"]
    await store.add([NewWatch(i, policy=short if i[0] == "S" else long) for i in ids])
    scheduler = Scheduler(
        store, lookups, policy=long, lease=math.inf, worker="w", on_settled=lambda _: None
    )
    task = asyncio.ensure_future(scheduler.run())
    try:
        await wait_until(lambda: len(lookups.calls) >= 24, timeout=5.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    calls = lookups.calls[:24]
    assert calls[:6] == ids  # never polled first, in the order added
    for start in range(0, 24, 6):  # then every round polls each order once, oldest first
        assert calls[start : start + 6] == ids
