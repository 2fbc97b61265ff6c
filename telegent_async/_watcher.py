"""`OrderWatcher`: durable watches, polled by the one scheduler, delivered at least once.

Everything the watcher knows lives in its store, so a deploy, a crash or a kill -9 loses
nothing: the next watcher on the same store carries on from the stored schedule. Several
watchers (processes) may share a store; leases decide which one polls an order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from . import _validate
from ._errors import TelegentError, is_credentials_error
from ._health import Outage, WatcherHealth, retrying
from ._models import Order, OrderOutcome
from ._scheduler import Lookups, Scheduler
from ._stores import StoreLike, store_of
from ._stores.base import BATCH, NewWatch, WatchCounts, WatchState, WatchStore
from ._telemetry import telemetry
from ._timing import PollPolicy, checked_policy, deadline_at
from ._waiters import Waiters

__all__ = ["CLOSE_GRACE", "OrderWatcher", "through_cancels", "until_refused"]

logger = logging.getLogger("telegent_async")

#: Set on the log record that says a watcher stopped (a CLI that reports it drops the record).
STOPPED = "telegent_watcher_stopped"
#: How often a running watcher drops acknowledged outcomes older than `retain`.
PURGE_EVERY = 3600.0
#: How long `aclose` goes on stopping through further cancels, so that the claims of polls
#: under way are given back: `watch run` re-cancels every 0.5 s after SIGTERM, and a stop
#: may wait that long for a store (another process's lock, a Redis stall). Cut short, the
#: release was skipped and the watches stayed leased until their lease ended
#: (tests/test_faults.py; the likely cause of a lease one CI run found left after SIGTERM).
CLOSE_GRACE = 5.0

Deadline: TypeAlias = datetime | float | None
T = TypeVar("T")
_ByIds: TypeAlias = Callable[[Sequence[str]], Awaitable[int]]  # a store write by order IDs


def _policy(policy: object) -> PollPolicy | None:
    return None if policy is None else checked_policy("policy", policy)


class OrderWatcher:
    """Watch orders durably: `async with OrderWatcher(client, "watches.db") as watcher:`.

    Left alone for days, it rides out its store's and its budget's outages (retried until
    they pass) and refused credentials (polls paused, no watch settled); a fault that does not
    pass stops it loudly. `health` says how it is doing (README, "Operating a watcher").

    Args:
        client: The `TelegentClient` that polls.
        store: A store (`MemoryStore`, `SQLiteStore`), a path (an `SQLiteStore`), or None
            (a `MemoryStore`).
        policy: The cadence of watches added without a policy of their own.
        lease: Seconds a poll may take before another worker may claim its order (renewed
            while the poll runs).
        retain: Seconds acknowledged outcomes stay readable (`get`) before they are purged.
        worker_id: This worker's name in the store's claims (default: host, PID and a random
            suffix).
    """

    def __init__(
        self,
        client: Lookups,
        store: StoreLike = None,
        *,
        policy: PollPolicy = PollPolicy.PROVISION,
        lease: float = 60.0,
        retain: float = 7 * 86400.0,
        worker_id: str | None = None,
    ) -> None:
        checked_policy("policy", policy)
        self._lease = _validate.positive_number("lease", lease)
        self._retain = _validate.positive_number("retain", retain)
        if worker_id is None:
            worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        elif not isinstance(worker_id, str) or not worker_id:
            raise TypeError("worker_id must be a non-empty str or None")
        self.worker_id = worker_id
        self._store, self._owns_store = store_of(store)
        self._waiters = Waiters()
        self._scheduler = Scheduler(
            self._store,
            client,
            policy=policy,
            lease=self._lease,
            worker=worker_id,
            on_settled=self._waiters.settled,
            pause_on_refusal=True,
        )
        self._budget = getattr(client, "budget", None)
        metrics = telemetry()
        if metrics is not None:
            metrics.watch(self)
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None  # why the scheduler stopped, if it did
        self._closed = False  # `settled()` iterators end

    def __repr__(self) -> str:
        return f"OrderWatcher(store={self._store!r}, worker_id={self.worker_id!r})"

    @property
    def store(self) -> WatchStore:
        """The store this watcher keeps its watches in."""
        return self._store

    @property
    def health(self) -> WatcherHealth:
        """How the watcher is doing now: running, last poll, store, budget, credentials."""
        scheduler = self._scheduler
        budget = getattr(self._budget, "outage", None)
        paused = scheduler.paused_until - time.time()
        return WatcherHealth.of(
            running=bool(self._tasks) and not self._tasks[0].done(),
            last_poll_at=scheduler.last_poll_at,
            paused_until=time.time() + paused if paused > 0 else None,
            fatal=self._failure,
            store=scheduler.store_outage,
            budget=budget if isinstance(budget, Outage) else None,
            credentials=scheduler.refused,
        )

    async def _stored(self, operation: Callable[[], Awaitable[T]]) -> T:
        """A store operation, retried through the store's transient faults while the watcher
        runs (a service waits them out); tried once when it does not (`watch add`). The
        scheduler's polls say when the store is back."""
        if not self._tasks:
            return await operation()
        outage = self._scheduler.store_outage
        return await retrying(operation, outage, ends=False, stop=lambda: not self._tasks)

    async def _one(self, operation: _ByIds, order_id: str) -> bool:
        """`operation` of the store on one checked order ID (as `_stored`): True if it applied."""
        return await self._stored(functools.partial(operation, [_validate.order_id(order_id)])) == 1

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> OrderWatcher:
        if self._tasks:
            raise RuntimeError("this OrderWatcher is already running")
        self._closed = False
        await self._rearm_refused()
        self._waiters.start()
        self._tasks = [
            asyncio.ensure_future(self._scheduler.run()),
            asyncio.ensure_future(self._purge_now_and_then()),
        ]
        self._tasks[0].add_done_callback(self._scheduler_ended)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
        if self._failure is not None and exc_info[1] is not self._failure:
            raise self._failure  # a fault that does not pass stopped it: never silently

    async def aclose(self) -> None:
        """Stop polling, give back the claims of polls under way, close a store we opened;
        `settled()` iterators end. Cancelled meanwhile, it goes on stopping for up to
        `CLOSE_GRACE` seconds more, so that the claims are given back and the store closed,
        then passes the cancel on."""
        self._closed = True
        self._waiters.announce()
        tasks, self._tasks = self._tasks, []
        self._scheduler.close()
        for task in tasks:
            task.cancel()
        await through_cancels(asyncio.ensure_future(self._stop(tasks)), CLOSE_GRACE)

    async def _stop(self, tasks: Sequence[asyncio.Task[None]]) -> None:
        """`aclose` once its tasks are cancelled: wait for them to end, fail the waiters,
        close a store we opened."""
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._waiters.fail(RuntimeError("the OrderWatcher was closed"))
        if self._owns_store:
            await self._store.aclose()

    def _scheduler_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("order watcher stopped: %r", error, extra={STOPPED: True})
            self._failure = error
            self._waiters.fail(error)
            self._waiters.announce()  # `settled()` raises it

    async def _rearm_refused(self) -> None:
        """Re-arm the watches a 0.2.0 watcher settled because the API refused its credentials
        (that says nothing about their orders): pending again, polled now."""
        refused: list[str] = []
        after = 0
        while batch := await self._store.outcomes(after, BATCH):
            after = batch[-1].seq
            refused += [d.outcome.order_id for d in batch if is_credentials_error(d.outcome.error)]
        if refused:
            rearmed = await self._store.retry(refused)
            logger.warning("re-armed %d watches settled as credentials refused", rearmed)

    async def _purge_now_and_then(self) -> None:
        """Purge every `PURGE_EVERY` seconds until closed. It looks at `_closed` after each
        purge: before Python 3.12, the `asyncio.wait_for` redis-py wraps each send in (with a
        socket timeout) can swallow the cancel of `aclose`, and an hour's sleep would follow."""
        while not self._closed:
            purged = await self._stored(lambda: self._store.purge(self._retain))
            if purged:
                logger.info("purged %d acknowledged outcomes", purged)
            if not self._closed:
                await asyncio.sleep(PURGE_EVERY)

    # -- watches -------------------------------------------------------------------------------

    async def _deadline(self, deadline: Deadline) -> float | None:
        return None if deadline is None else deadline_at(deadline, await self._store.now())

    async def _watches(
        self, order_ids: Iterable[str], policy: object, deadline: Deadline, tag: object
    ) -> list[NewWatch]:
        ids = _validate.order_ids(order_ids)
        checked_policy, checked_tag = _policy(policy), _validate.tag(tag)
        at = await self._deadline(deadline)
        return [NewWatch(order_id, checked_policy, at, checked_tag) for order_id in ids]

    async def add(
        self,
        order_id: str,
        *,
        policy: PollPolicy | None = None,
        deadline: Deadline = None,
        tag: str | None = None,
    ) -> bool:
        """Watch an order; returns once committed. False if it was already watched (unchanged).

        Args:
            order_id: The order to watch.
            policy: Its poll cadence (None: the watcher's `policy`).
            deadline: An aware datetime, or seconds from now, or None (no deadline); past it
                the watch settles with `OrderWaitTimeout` (after one last poll at the
                deadline).
            tag: A label of the caller's, carried to the outcome (`OrderOutcome.tag`).
        """
        watches = await self._watches([order_id], policy, deadline, tag)
        return await self._stored(functools.partial(self._store.add, watches)) == 1

    async def add_many(
        self,
        order_ids: Iterable[str],
        *,
        policy: PollPolicy | None = None,
        deadline: Deadline = None,
        tag: str | None = None,
    ) -> int:
        """Watch many orders in one transaction; returns how many were new.

        Args:
            order_ids: The orders to watch.
            policy: As in `add`, for each of them.
            deadline: As in `add`, for each of them.
            tag: As in `add`, for each of them.
        """
        watches = await self._watches(order_ids, policy, deadline, tag)
        return await self._stored(functools.partial(self._store.add, watches))

    async def wait(
        self,
        order_id: str,
        *,
        timeout: float | None = None,
        policy: PollPolicy | None = None,
        deadline: Deadline = None,
        tag: str | None = None,
    ) -> Order:
        """The settled order (whatever its outcome), watching it first if it is new.

        Any number of waiters share the polls of one order. Raises the outcome's error (e.g.
        `NotFoundError`, `OrderWaitTimeout` at the watch's deadline), or `OrderWaitTimeout`
        after `timeout` seconds of waiting here (the watch goes on). The outcome is still
        delivered by `settled()`.

        Args:
            order_id: The order to wait for.
            timeout: Seconds to wait here, or None (until the watch settles).
            policy: As in `add` (used only when the order is new).
            deadline: As in `add` (used only when the order is new).
            tag: As in `add` (used only when the order is new).
        """
        if not self._tasks:
            raise RuntimeError("start the watcher first: async with OrderWatcher(...)")
        if self._failure is not None:
            raise self._failure
        if timeout is not None:
            timeout = _validate.positive_number("timeout", timeout)
        await self.add(order_id, policy=policy, deadline=deadline, tag=tag)
        read = functools.partial(self._stored, functools.partial(self._store.get, order_id))
        cause = self._scheduler.timeout_cause
        return await self._waiters.wait(order_id, read, timeout, self._store.max_idle, cause)

    async def wake(self, order_id: str) -> bool:
        """Poll this order as soon as the budget allows (a webhook said it changed).

        Args:
            order_id: The watched order; returns False if it is not watched.
        """
        return await self._one(self._store.wake, order_id)

    async def get(self, order_id: str) -> WatchState | None:
        """The watch's state, or None if the order is not watched (or was purged).

        Args:
            order_id: The order.
        """
        return await self._stored(functools.partial(self._store.get, _validate.order_id(order_id)))

    async def remove(self, order_id: str) -> bool:
        """Stop watching an order and forget its state; False if it was not watched. Its
        waiters here (`wait`) raise `TelegentError` at once.

        Args:
            order_id: The order.
        """
        removed = await self._one(self._store.remove, order_id)
        self._waiters.removed(order_id)
        return removed

    async def retry(self, order_id: str) -> bool:
        """Watch a settled order again: pending, polled now, its outcome no longer delivered
        (e.g. after fixing what made it fail); False if it is not watched or not settled.

        Args:
            order_id: The order.
        """
        return await self._one(self._store.retry, order_id)

    async def count(self) -> WatchCounts:
        """How many watches the store holds: pending, settled, and settled but unacknowledged."""
        return await self._stored(self._store.count)

    async def watches(self, *, settled: bool | None = None) -> AsyncIterator[WatchState]:
        """Every watch of the store (read in batches, in no set order).

        Args:
            settled: True: only settled watches; False: only pending ones; None: all.
        """
        if settled is not None and not isinstance(settled, bool):
            raise TypeError(f"settled must be a bool or None, not {type(settled).__name__}")
        async for state in self._store.watches(settled):
            yield state

    async def ack(self, order_id: str) -> bool:
        """Acknowledge a settled outcome: `settled()` never delivers it again.

        Args:
            order_id: The order whose outcome was handled.
        """
        return await self._one(self._store.ack, order_id)

    async def settled(self, *, auto_ack: bool = True) -> AsyncIterator[OrderOutcome]:
        """Each settled outcome not yet acknowledged, oldest first, then each new one.

        At least once: an outcome is committed before it is yielded, and with `auto_ack` it is
        acknowledged when the loop asks for the next one, so a crash while handling it means
        it is delivered again. Leaving the loop (`break`, `return`, an exception) before
        asking for the next one acknowledges nothing either: the outcome just received is
        delivered again, to the next `settled()` (of this or another process), so `ack` it
        yourself before a `break` if it was handled.

        Args:
            auto_ack: Acknowledge each outcome when the loop asks for the next one; with
                False, call `ack(order_id)` yourself.
        """
        store = self._store
        after = 0
        while not self._closed:
            if self._waiters.news is not None:
                self._waiters.news.clear()
            if self._failure is not None:
                raise self._failure
            try:
                batch = await self._stored(functools.partial(store.outcomes, after))
            except Exception:
                if self._closed:  # the store closed under us: the watcher is done
                    return
                raise
            for delivery in batch:
                after = delivery.seq
                yield delivery.outcome
                if auto_ack:
                    await self._stored(functools.partial(store.ack, [delivery.outcome.order_id]))
            if not batch:
                await self._waiters.news_or_timeout(store.max_idle)


def timeout_cause(watcher: OrderWatcher, state: WatchState | None) -> TelegentError | None:
    """The cause a timeout of the watch in `state` names now (`Scheduler.timeout_cause`);
    for `wait --state`, which times its run out itself."""
    return watcher._scheduler.timeout_cause(None if state is None else state.last_error)


async def until_refused(watcher: OrderWatcher, every: float = 0.2) -> TelegentError:
    """Wait until the API refuses the watcher's credentials (its polls pause: no watch
    settles) and return the refusal; for a run that should stop then (`watch run`)."""
    while True:
        error = watcher._scheduler.refused.error
        if isinstance(error, TelegentError):
            return error
        await asyncio.sleep(every)


async def through_cancels(stopping: asyncio.Future[Any], grace: float) -> None:
    """Wait for `stopping` to end, as long as it takes; cancelled meanwhile, go on waiting
    for `grace` seconds more at most (then cancel it and wait no longer), and then pass the
    cancel on. (Counted from the first cancel: a stop not cancelled again is never cut.)"""
    loop = asyncio.get_running_loop()
    give_up: float | None = None  # set by the first cancel that comes
    while not stopping.done():
        left = None if give_up is None else give_up - loop.time()
        if left is not None and left <= 0:
            stopping.cancel()
            break
        try:
            await asyncio.wait([stopping], timeout=left)
        except asyncio.CancelledError:
            if give_up is None:
                give_up = loop.time() + grace
    if give_up is not None:
        raise asyncio.CancelledError
