"""Waiting for orders: one order (`watch_order`) and many at once (`OrderStream`).

A single wait polls in the caller's own task. A fan-out uses one scheduler, not a task per
order: a heap of next-poll times, one byte of backoff state per order, and at most
`max_connections` polls in flight, so 100,000 pending orders fit in a few tens of megabytes
and share the client's budget in the order they fell due.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import math
import sys
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from . import _validate
from ._errors import APIStatusError, OrderWaitTimeout, TelegentError, TransportError
from ._models import Order, OrderOutcome, decode_order
from ._timing import PollPolicy

if sys.version_info >= (3, 11):
    from asyncio import timeout_at
else:  # pragma: no cover - aiohttp depends on async-timeout before 3.11
    from async_timeout import timeout_at

if TYPE_CHECKING:
    from ._client import TelegentClient

__all__ = ["OrderStream", "is_permanent", "run_workers", "watch_order"]

logger = logging.getLogger("telegent_async")
T = TypeVar("T")

#: Statuses a retry or a later poll can fix; any other API status ends a wait at once.
_TRANSIENT_STATUSES = frozenset({408, 429})


def is_permanent(error: TelegentError) -> bool:
    """True when polling again cannot help: 400, 401, 403, 404, 405 and other non-5xx answers.

    Transport failures, 5xx, 408, 429 and undecodable bodies are transient: the transport has
    already retried them, and a waiter keeps polling on its own schedule until its deadline.
    """
    return (
        isinstance(error, APIStatusError)
        and error.status_code < 500
        and error.status_code not in _TRANSIENT_STATUSES
    )


def _checked(timeout: float | None, policy: PollPolicy | None) -> tuple[float | None, PollPolicy]:
    if timeout is not None:
        timeout = _validate.positive_number("timeout", timeout)
    if policy is None:
        policy = PollPolicy.PROVISION
    elif not isinstance(policy, PollPolicy):
        raise TypeError(f"policy must be a PollPolicy, not {type(policy).__name__}")
    return timeout, policy


def _log_change(order: Order, was: str | None) -> None:
    logger.info("order %s: %s -> %s", order.order_id, was, order.raw_status)


def _compact(order: Order) -> bytes:
    """The order's JSON, re-encoded: a fifth of the memory of the decoded `Order` it restores."""
    return json.dumps(order.raw, separators=(",", ":")).encode()


async def watch_order(
    client: TelegentClient, order_id: str, *, timeout: float | None, policy: PollPolicy | None
) -> AsyncGenerator[Order, None]:
    """Yield the first observation and each status change; end after the settled one."""
    order_id = _validate.order_id(order_id)
    timeout, policy = _checked(timeout, policy)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    last: Order | None = None
    failure: TelegentError | None = None
    attempt = 0
    while True:
        at_deadline = deadline is not None and loop.time() >= deadline
        try:
            async with timeout_at(_answer_by(client, deadline, at_deadline)):
                order = await client.get_order(order_id)
        except asyncio.TimeoutError:
            raise OrderWaitTimeout(order_id, last, timeout) from failure
        except TelegentError as exc:
            if is_permanent(exc):
                raise
            failure = exc
            logger.debug("order %s: poll failed, will poll again: %s", order_id, exc)
        else:
            failure = None
            if last is None or order.raw_status != last.raw_status:
                _log_change(order, None if last is None else last.raw_status)
                last = order
                yield order
                if order.is_settled:
                    return
        if at_deadline:
            raise OrderWaitTimeout(order_id, last, timeout) from failure
        delay = policy.delay(attempt)
        attempt += 1
        if deadline is not None:
            # The next poll would fall past the deadline: poll at the deadline instead, so that
            # a timeout never reports an answer that may be hours old.
            delay = min(delay, max(0.0, deadline - loop.time()))
        logger.debug("order %s: next poll in %.2f s", order_id, delay)
        await asyncio.sleep(delay)


def _answer_by(client: TelegentClient, deadline: float | None, at_deadline: bool) -> float | None:
    """When a poll must have answered: by the deadline, or, for the poll made at the deadline,
    one attempt timeout later (its budget slot included), so that a wait overruns its deadline
    by at most that to report a fresh answer."""
    if deadline is None or not at_deadline:
        return deadline
    return deadline + client.timeout


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


class _Completions:
    """Polls that have ended, and the scheduler's wake-up call.

    Kept apart from `OrderStream` so that running polls (whose done-callbacks land here) do not
    keep alive a stream that its caller dropped: dropping it must cancel them, not drain them.
    """

    __slots__ = ("finished", "wakeup")

    def __init__(self) -> None:
        self.finished: deque[asyncio.Task[Order]] = deque()
        self.wakeup: asyncio.Future[None] | None = None

    def add(self, task: asyncio.Task[Order]) -> None:
        self.finished.append(task)
        self.wake()

    def wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)


class OrderStream:
    """The async iterator returned by `TelegentClient.wait_for_orders`.

    Yields one `OrderOutcome` per distinct order ID, as each settles, fails permanently
    (404 ...) or reaches the deadline. An order whose next poll would fall past the deadline is
    polled once more at the deadline. Breaking out of the `async for` cancels every poll and
    gives their budget slots back at once, even while the stream itself is still referenced;
    `async with client.wait_for_orders(ids) as stream:` also waits for the polls to end.
    """

    def __init__(
        self,
        client: TelegentClient,
        order_ids: Iterable[str],
        *,
        timeout: float | None,
        policy: PollPolicy | None,
    ) -> None:
        self._timeout, self._policy = _checked(timeout, policy)
        self._client = client
        self._ids = list(dict.fromkeys(order_ids))
        self._pending = len(self._ids)
        self._attempts = bytearray(len(self._ids))  # backoff step per order
        # The last answer of each order not yet settled, kept for its timeout outcome: status
        # (interned) and compact JSON, not an `Order` (100,000 of those would take 120 MB).
        self._last: dict[int, tuple[str, bytes]] = {}
        self._due: list[tuple[float, int]] = []  # heap of (next poll time, index)
        self._in_flight: dict[asyncio.Task[Order], int] = {}
        self._stopping: list[asyncio.Task[Order]] = []  # cancelled, not yet seen to end
        self._done = _Completions()
        self._ready: deque[OrderOutcome] = deque()
        self._deadline: float | None = None
        self._final_answer_by: float | None = None  # polls made at the deadline end by then
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        """Orders not yet settled or failed (and not yet yielded)."""
        return self._pending

    @property
    def in_flight(self) -> int:
        """Polls under way now."""
        return len(self._in_flight)

    def __aiter__(self) -> _Iteration:
        return _Iteration(self)

    async def __aenter__(self) -> OrderStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> OrderOutcome:
        loop = self._loop
        if loop is None:
            loop = self._start()
        try:
            while not self._ready:
                if self._pending == 0:
                    raise StopAsyncIteration
                now = loop.time()
                self._collect(now)  # answers that came in before the deadline count
                if self._ready:
                    break
                if self._final_answer_by is not None and now >= self._final_answer_by:
                    await self._expire()
                    continue
                self._launch_due(now)
                await self._sleep_until_something_happens(loop)
        except BaseException as exc:
            if not isinstance(exc, StopAsyncIteration):
                await self.aclose()
            raise
        return self._ready.popleft()

    async def aclose(self) -> None:
        """Stop every poll and wait until they have ended; nothing more is yielded."""
        self._cancel_all()
        self._ready.clear()
        await self._wait_stopped()

    async def _wait_stopped(self) -> None:
        tasks, self._stopping = self._stopping, []
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        # Reached when a caller breaks out of `async for` without `async with`: stop the polls
        # now, synchronously, so that no further request is sent. (The polls reference only
        # `_Completions`, so the stream is freed at once.) Nothing to do if __init__ refused
        # its arguments.
        if hasattr(self, "_in_flight"):
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._cancel_all()

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._loop = loop
        if self._timeout is not None:
            self._deadline = now + self._timeout
            self._final_answer_by = self._deadline + self._client.timeout
            self._warn_if_over_budget()
        self._due = [(now, index) for index in range(len(self._ids))]  # already a heap
        return loop

    def _warn_if_over_budget(self) -> None:
        rate = self._client.budget.requests_per_minute
        assert self._timeout is not None
        if rate is None:
            return
        polls = math.floor(rate * self._timeout / 60.0) + 1  # the first one goes out at once
        if len(self._ids) > polls:
            logger.warning(
                "wait_for_orders: %d orders, but %g requests/min allow about %d polls in %g s:"
                " about %d orders will time out without ever being polled",
                len(self._ids), rate, polls, self._timeout, len(self._ids) - polls,
            )  # fmt: skip

    def _cancel_all(self) -> None:
        for task in self._in_flight:
            if not task.cancel() and not task.cancelled():
                task.exception()  # ended but unread: mark its error seen ("never retrieved")
        # Cancelled tasks give their budget slots back only when they next run: give them
        # back now, so that the client's next request does not queue behind them.
        self._client.budget.abandon(self._in_flight)
        self._stopping.extend(self._in_flight)
        self._in_flight.clear()
        self._done.finished.clear()
        self._due.clear()
        self._pending = 0

    def _launch_due(self, now: float) -> None:
        limit = self._client.max_connections
        while self._due and self._due[0][0] <= now and len(self._in_flight) < limit:
            _, index = heapq.heappop(self._due)
            task = asyncio.ensure_future(self._client.get_order(self._ids[index]))
            self._in_flight[task] = index
            task.add_done_callback(self._done.add)

    async def _sleep_until_something_happens(self, loop: asyncio.AbstractEventLoop) -> None:
        done = self._done
        if done.finished:
            return
        wake_at = self._final_answer_by
        if self._due and len(self._in_flight) < self._client.max_connections:
            next_due = self._due[0][0]
            wake_at = next_due if wake_at is None else min(wake_at, next_due)
        done.wakeup = loop.create_future()
        timer = None if wake_at is None else loop.call_at(wake_at, done.wake)
        try:
            await done.wakeup
        finally:
            done.wakeup = None
            if timer is not None:
                timer.cancel()

    def _collect(self, now: float) -> None:
        finished = self._done.finished
        while finished:
            task = finished.popleft()
            index = self._in_flight.pop(task, None)
            if index is None:
                continue  # cancelled by aclose() or the deadline
            order_id = self._ids[index]
            # A poll cancelled from outside (the client closing mid-wait) is polled again, so
            # that the order is not lost and the next poll reports why.
            error = TransportError("poll cancelled") if task.cancelled() else task.exception()
            self._attempts[index] = min(self._attempts[index] + 1, 255)
            if error is None:
                order = task.result()
                seen = self._last.get(index)
                was = None if seen is None else seen[0]
                if was != order.raw_status:
                    _log_change(order, was)
                if order.is_settled:
                    self._settle(index, OrderOutcome(order_id, order))
                    continue
                self._last[index] = (sys.intern(order.raw_status), _compact(order))
            elif isinstance(error, TelegentError) and is_permanent(error):
                self._settle(index, OrderOutcome(order_id, self._take_last(index), error))
                continue
            elif isinstance(error, TelegentError):
                logger.debug("order %s: poll failed, will poll again: %s", order_id, error)
            else:
                raise error  # a bug, not an API failure: do not hide it
            deadline = self._deadline
            if deadline is not None and now >= deadline:  # the answer at the deadline: final
                self._settle(index, self._timed_out(index, polled=True))
                continue
            next_poll = now + self._policy.delay(self._attempts[index] - 1)
            if deadline is not None:
                next_poll = min(next_poll, deadline)  # never report an answer hours old
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("order %s: next poll in %.2f s", order_id, next_poll - now)
            heapq.heappush(self._due, (next_poll, index))

    def _take_last(self, index: int) -> Order | None:
        seen = self._last.pop(index, None)
        return None if seen is None else decode_order(200, seen[1])

    def _settle(self, index: int, outcome: OrderOutcome) -> None:
        self._last.pop(index, None)
        self._pending -= 1
        self._ready.append(outcome)

    def _timed_out(self, index: int, *, polled: bool) -> OrderOutcome:
        order_id, last = self._ids[index], self._take_last(index)
        error = OrderWaitTimeout(order_id, last, self._timeout, polled=polled)
        return OrderOutcome(order_id, last, error)

    async def _expire(self) -> None:
        """The polls at the deadline had their time: every unsettled order times out."""
        queued = self._client.budget.queued_owners()
        sent = {index for task, index in self._in_flight.items() if task not in queued}
        waiting = sorted([*self._in_flight.values(), *(index for _, index in self._due)])
        self._cancel_all()
        await self._wait_stopped()
        for index in waiting:
            # No answer and no request sent: the budget never let this order's turn come.
            polled = self._attempts[index] > 0 or index in sent
            self._ready.append(self._timed_out(index, polled=polled))


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
            self._stream._cancel_all()
