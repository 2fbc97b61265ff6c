"""Waiting for orders: one order (`watch_order`) and many at once (`OrderStream`).

Both follow the one poll schedule (`_schedule`). A single wait polls in the caller's own
task. A fan-out runs the one scheduler (`_scheduler`) over a `MemoryStore`, not a task per
order: a run of slots until each order's first poll, then a heap entry, a double and a byte
of backoff state per order, and at most `max_connections` polls in flight, so 100,000 pending
orders fit in a few tens of megabytes and share the client's budget in the order they fell due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from . import _validate
from ._budgets.base import background_polls
from ._errors import OrderWaitTimeout, TelegentError
from ._models import Order, OrderOutcome
from ._schedule import REPORT_GRACE, PollVerdict, decide
from ._scheduler import Lookups, Scheduler, log_change
from ._stores.memory import MemoryStore
from ._timing import PollPolicy

if TYPE_CHECKING:
    from ._telemetry import Telemetry

if sys.version_info >= (3, 11):
    from asyncio import timeout_at
else:  # pragma: no cover - aiohttp depends on async-timeout before 3.11
    from async_timeout import timeout_at

__all__ = ["OrderStream", "run_workers", "watch_order"]

logger = logging.getLogger("telegent_async")
T = TypeVar("T")


class Waiting(Lookups, Protocol):
    """What a wait needs from a client beyond lookups: whether a task has sent a request."""

    def has_requested(self, task: object) -> bool: ...


def _checked_timeout(timeout: float | None) -> float | None:
    return None if timeout is None else _validate.positive_number("timeout", timeout)


async def watch_order(
    client: Waiting, order_id: str, *, timeout: float | None, policy: PollPolicy
) -> AsyncGenerator[Order, None]:
    """Yield the first observation and each status change; end after the settled one."""
    order_id = _validate.order_id(order_id)
    timeout = _checked_timeout(timeout)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    last: Order | None = None
    failure: TelegentError | None = None
    attempt = 0
    while True:
        at_deadline = deadline is not None and loop.time() >= deadline
        order: Order | None = None
        error: TelegentError | None = None
        try:
            async with timeout_at(_answer_by(deadline, at_deadline)):
                with background_polls():
                    order = await client.get_order(order_id)
        except asyncio.TimeoutError:
            # Cut at the deadline, perhaps still waiting for the budget: was it ever polled?
            polled = attempt > 0 or client.has_requested(asyncio.current_task())
            raise OrderWaitTimeout(order_id, last, timeout, polled=polled) from failure
        except TelegentError as exc:
            error = exc
            logger.debug("order %s: poll failed: %s", order_id, exc)
        if order is not None and (last is None or order.raw_status != last.raw_status):
            log_change(order, None if last is None else last.raw_status)
            last = order
            yield order
        now = loop.time()
        if at_deadline:  # the poll at the deadline answered late: still, it was the last one
            now = max(now, deadline or now)
        decision = decide(order, error, now=now, attempt=attempt, policy=policy, deadline=deadline)
        attempt += 1
        if decision.verdict is PollVerdict.SETTLED:
            return
        if decision.verdict is PollVerdict.FAILED:
            assert error is not None
            raise error
        failure = error
        if decision.verdict is PollVerdict.TIMED_OUT:
            raise OrderWaitTimeout(order_id, last, timeout) from failure
        assert decision.next_poll is not None
        delay = max(0.0, decision.next_poll - now)
        logger.debug("order %s: next poll in %.2f s", order_id, delay)
        await asyncio.sleep(delay)


def _answer_by(deadline: float | None, at_deadline: bool) -> float | None:
    """When a poll must have answered: by the deadline, or, for the poll made at the deadline,
    `REPORT_GRACE` later (its budget start included), so that a wait overruns its deadline by
    at most that, to report a fresh answer if the budget and the server allow one."""
    if deadline is None or not at_deadline:
        return deadline
    return deadline + REPORT_GRACE


async def run_workers(
    work: Callable[[T], Awaitable[None]], items: Sequence[T], concurrency: int
) -> None:
    """Run `work` over `items` with at most `concurrency` at once; on any exit, stop them all."""
    remaining = iter(items)

    async def worker() -> None:
        for item in remaining:
            await work(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Outcomes:
    """Outcomes ready to yield, and how many orders are still pending.

    Kept apart from `OrderStream` so that the scheduler (which reports into it) does not keep
    alive a stream that its caller dropped: dropping it must cancel the polls, not drain them.
    """

    __slots__ = ("pending", "ready", "started", "telemetry")

    def __init__(self, pending: int, telemetry: Telemetry | None) -> None:
        self.pending = pending
        self.ready: deque[OrderOutcome] = deque()
        self.telemetry = telemetry
        self.started = 0.0  # time.monotonic() when the polls began

    def settled(self, outcome: OrderOutcome) -> None:
        self.pending -= 1
        self.ready.append(outcome)
        if self.telemetry is not None:
            self.telemetry.ended(outcome.order, time.monotonic() - self.started)


class OrderStream:
    """The async iterator returned by `TelegentClient.wait_for_orders`.

    Yields one `OrderOutcome` per distinct order ID, as each settles, fails permanently
    (404 ...) or reaches the deadline. An order whose next poll would fall past the deadline is
    polled once more at the deadline. Breaking out of the `async for` cancels every poll and
    gives their budget slots back at once, even while the stream itself is still referenced;
    `async with client.wait_for_orders(ids) as stream:` also waits for the polls to end.

    Args:
        client: The `TelegentClient` that polls.
        order_ids: The orders (duplicates are polled once).
        timeout: Seconds until every order still pending times out, or None.
        policy: The poll cadence (the client's, when the caller gave none).
        telemetry: The client's OpenTelemetry instruments, or None.
    """

    def __init__(
        self,
        client: Waiting,
        order_ids: Iterable[str],
        *,
        timeout: float | None,
        policy: PollPolicy,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._timeout, self._policy = _checked_timeout(timeout), policy
        self._client = client
        self._ids: list[str] | None = list(dict.fromkeys(order_ids))  # until handed to the store
        self._outcomes = _Outcomes(len(self._ids), telemetry)
        self._scheduler: Scheduler | None = None
        self._final_answer_by: float | None = None  # polls made at the deadline end by then

    @property
    def pending(self) -> int:
        """Orders not yet settled or failed (and not yet yielded)."""
        return self._outcomes.pending

    @property
    def in_flight(self) -> int:
        """Polls under way now."""
        return 0 if self._scheduler is None else self._scheduler.in_flight

    def __aiter__(self) -> _Iteration:
        return _Iteration(self)

    async def __aenter__(self) -> OrderStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> OrderOutcome:
        outcomes = self._outcomes
        try:
            scheduler = self._scheduler or await self._start()
            loop = asyncio.get_running_loop()
            while not outcomes.ready:
                if outcomes.pending <= 0:
                    raise StopAsyncIteration
                delay = await scheduler.step()  # answers that came in before the deadline count
                if outcomes.ready:
                    break
                if self._final_answer_by is not None:
                    now = loop.time()
                    if now >= self._final_answer_by:
                        await scheduler.expire(self._client.has_requested)
                        continue
                    delay = min(delay, self._final_answer_by - now)
                await scheduler.sleep(delay)
        except BaseException as exc:
            if not isinstance(exc, StopAsyncIteration):
                await self.aclose()
            raise
        return outcomes.ready.popleft()

    async def aclose(self) -> None:
        """Stop every poll and wait until they have ended; nothing more is yielded."""
        self._stop_now()
        if self._scheduler is not None:
            await self._scheduler.cancel()

    def __del__(self) -> None:
        # Reached when a caller drops the stream without `async with`: stop the polls now,
        # synchronously, so that no further request is sent. (The polls reference only the
        # scheduler's completions, so the stream is freed at once.) Nothing to do if
        # __init__ refused its arguments.
        if hasattr(self, "_outcomes"):
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._stop_now()

    def _stop_now(self) -> None:
        outcomes = self._outcomes
        if outcomes.telemetry is not None and self._scheduler is not None:
            outcomes.telemetry.pending(-max(0, outcomes.pending))  # left before they settled
        outcomes.ready.clear()
        outcomes.pending = 0
        if self._scheduler is not None:
            self._scheduler.cancel_now()

    async def _start(self) -> Scheduler:
        loop = asyncio.get_running_loop()
        store = MemoryStore(clock=loop.time, keep_outcomes=False)
        ids, self._ids = self._ids or [], None
        store.extend(ids)
        if self._outcomes.telemetry is not None:
            self._outcomes.telemetry.pending(len(ids))
            self._outcomes.started = time.monotonic()
        deadline = None
        if self._timeout is not None:
            deadline = loop.time() + self._timeout
            self._final_answer_by = deadline + REPORT_GRACE
            self._warn_if_over_budget(len(ids), self._timeout)
        budget = self._client.budget
        self._scheduler = Scheduler(
            store,
            self._client,
            policy=self._policy,
            lease=math.inf,  # one process owns the store: a claim is held until answered
            worker="wait_for_orders",
            on_settled=self._outcomes.settled,
            on_cancel=budget.abandon,  # cancelled polls give their budget slots back at once
            deadline=deadline,
            timeout=self._timeout,
        )
        return self._scheduler

    def _warn_if_over_budget(self, count: int, timeout: float) -> None:
        budget = self._client.budget
        if budget.requests_per_minute is None:
            return
        polls = budget.allowance(timeout)
        rate = budget.requests_per_minute
        if count > polls:
            logger.warning(
                "wait_for_orders: %d orders, but %g requests/min allow about %d polls in %g s:"
                " about %d orders will time out without ever being polled",
                count, rate, polls, timeout, count - polls,
            )  # fmt: skip


class _Iteration:
    """One `async for` over an `OrderStream`.

    The loop holds the only reference to it, so leaving the loop early (break, return, an
    exception) frees it at once, and that stops the stream's polls then and there, whether or
    not the caller still holds the stream.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: OrderStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _Iteration:
        return self

    async def __anext__(self) -> OrderOutcome:
        return await self._stream.__anext__()

    def __del__(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            self._stream._stop_now()
