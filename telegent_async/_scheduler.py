"""The one scheduler: claim due watches from a store, poll them, write the answers back.

`wait_for_orders` (on a `MemoryStore`) and `OrderWatcher` (on any store) both run it. It holds
no task per order: at most `max_connections` polls are in flight, each a task whose
done-callback wakes the loop; every decision about an answer comes from `_schedule`.

Its polls are the budget's background polls (`background_polls`: the steady pace, the
reserve left to direct calls). With a limited budget it claims only as many watches as the
budget starts in `CLAIM_AHEAD` seconds (at least one) and claims the next when one is granted
its start, so that each start goes to a watch that was among the most overdue when it was
claimed (the store hands those out first), not to one chosen a long queue earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import attrs

from ._budgets.base import Budget, background_polls
from ._errors import (
    APIStatusError,
    BudgetUnavailableError,
    OrderWaitTimeout,
    TelegentError,
    TransportError,
)
from ._health import REFUSAL_POLICY, Outage, is_refusal, retrying
from ._models import Order, OrderOutcome
from ._schedule import PollVerdict, decide, expired_unpolled
from ._stores.base import Claim, PendingAnswer, Settlement, WatchStore
from ._timing import PollPolicy

__all__ = ["Completions", "Lookups", "Scheduler", "log_change"]

logger = logging.getLogger("telegent_async")


class Lookups(Protocol):
    """What the scheduler needs from a client: one lookup, how many may run at once, and the
    budget its polls take their starts from."""

    @property
    def max_connections(self) -> int: ...

    @property
    def budget(self) -> Budget: ...

    async def get_order(self, order_id: str) -> Order: ...


#: How much of a limited budget's pace the polls waiting for their start may hold: enough to
#: keep a fast shared budget busy across the round trips to Redis between a start and the
#: next claim (at 300/s: 3 polls), one poll for a slow one (at 10/s, each process's next
#: claim waits for its previous start: the choice is never more than a few starts old). No
#: more: a poll waiting for its start holds one of the client's connections.
CLAIM_AHEAD = 0.01


async def _poll(lookups: Lookups, order_id: str, done: Completions) -> Order:
    """One background poll, in a task of its own; `done` hears when the budget grants its
    start."""
    task = asyncio.current_task()
    assert task is not None
    with background_polls(lambda: done.started(task)):
        return await lookups.get_order(order_id)


def _always(_task: object) -> bool:
    return True


def log_change(order: Order, was: str | None) -> None:
    logger.info("order %s: %s -> %s", order.order_id, was, order.raw_status)


class Completions:
    """Polls that have ended, and the scheduler's wake-up call.

    Kept apart from the scheduler so that running polls (whose done-callbacks land here) do
    not keep alive a stream that its caller dropped: dropping it must cancel them, not drain
    them.
    """

    __slots__ = ("finished", "unstarted", "wakeup")

    def __init__(self) -> None:
        self.finished: deque[asyncio.Task[Order]] = deque()
        self.unstarted: set[asyncio.Task[Order]] = set()  # polls still waiting for the budget
        self.wakeup: asyncio.Future[None] | None = None

    def add(self, task: asyncio.Task[Order]) -> None:
        self.finished.append(task)
        self.wake()

    def wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def started(self, task: asyncio.Task[Order]) -> None:
        """The budget granted this poll its start: there is room to claim another."""
        if task in self.unstarted:
            self.unstarted.discard(task)
            self.wake()


@attrs.define(eq=False)
class Scheduler:
    """Polls the due watches of `store` through `lookups` until cancelled.

    `policy` and `deadline` apply to watches that carry none. A poll due more than `grace`
    seconds past its deadline is not sent (see `expired_unpolled`). Each settled outcome is
    committed to the store, then handed to `on_settled`; `on_cancel` hears of polls cancelled
    under way (their budget slots can be given back at once).

    A store that fails transiently is retried (`_health.retrying`) with what it has not
    committed kept until it does: no answer is lost, none written twice (a write whose fence
    no longer matches is refused by the store). With `pause_on_refusal`, refused credentials
    settle nothing: the polls' claims are given back and polling pauses on `REFUSAL_POLICY`.
    """

    store: WatchStore
    _lookups: Lookups
    _policy: PollPolicy = attrs.field(kw_only=True)
    _lease: float = attrs.field(kw_only=True)
    _worker: str = attrs.field(kw_only=True)
    _on_settled: Callable[[OrderOutcome], None] = attrs.field(kw_only=True)
    _on_cancel: Callable[[Collection[asyncio.Task[Order]]], None] | None = attrs.field(
        default=None, kw_only=True
    )
    _deadline: float | None = attrs.field(default=None, kw_only=True)
    _timeout: float | None = attrs.field(default=None, kw_only=True)
    _grace: float = attrs.field(default=math.inf, kw_only=True)
    _pause_on_refusal: bool = attrs.field(default=False, kw_only=True)
    store_outage: Outage = attrs.field(init=False, factory=lambda: Outage("store"))
    refused: Outage = attrs.field(init=False, factory=lambda: Outage("credentials", "refused"))
    #: Store-clock time until which no poll starts (credentials refused), and how many
    #: refusals in a row led there.
    paused_until: float = attrs.field(init=False, default=-math.inf)
    _refusals: int = attrs.field(init=False, default=0)
    #: The failure of the last poll the budget could not let out (`BudgetUnavailableError`),
    #: until a poll gets past it: the cause of a timeout while it lasts, for every watch.
    _budget_failure: TelegentError | None = attrs.field(init=False, default=None)
    #: Wall-clock time of the last poll that ended (answered or failed).
    last_poll_at: float | None = attrs.field(init=False, default=None)
    # Not yet committed (the store failed): written first at the next step.
    _released: list[Claim] = attrs.field(init=False, factory=list)
    _answers: list[PendingAnswer] = attrs.field(init=False, factory=list)
    _settlements: list[Settlement] = attrs.field(init=False, factory=list)
    _in_flight: dict[asyncio.Task[Order], Claim] = attrs.field(init=False, factory=dict)
    #: Polls cancelled, not yet seen to end.
    _stopping: list[asyncio.Task[Order]] = attrs.field(init=False, factory=list)
    _done: Completions = attrs.field(init=False, factory=Completions)
    _renew_at: float = attrs.field(init=False, default=math.inf)
    _closing: bool = attrs.field(init=False, default=False)  # see `close`

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def timeout_cause(self, last_failure: TelegentError | None) -> TelegentError | None:
        """The cause of a watch's timeout: what gives every poll back unrecorded now (the
        refusal of the credentials while polls pause on it, or the budget's outage), if
        anything does, else the watch's last recorded failure (`last_failure`, or None)."""
        refusal = self.refused.error
        if isinstance(refusal, TelegentError):
            return refusal
        return self._budget_failure or last_failure

    async def run(self) -> None:
        """Poll until cancelled; then give back the claims of polls still under way."""
        self._closing = False
        unsubscribe = self.store.subscribe(self._done.wake)
        try:
            while True:
                try:
                    delay = await retrying(self.step, self.store_outage, stop=self._closed)
                except Exception:
                    if not self._closing:
                        raise
                    delay = 0.0  # closed while the store was away, not a failure: sleep ends it
                await self.sleep(delay)
        finally:
            unsubscribe()
            await self.stop()

    async def step(self) -> float:
        """Write back finished polls, renew leases, start due polls; return the seconds until
        there is something to do again (unless a poll ends or the store nudges us first)."""
        store = self.store
        now = await store.now()
        self._collect(now)
        await self._commit()
        if now >= self._renew_at:
            await self._renew(now)
        free = self._lookups.max_connections - len(self._in_flight)
        wake_at = now + store.max_idle
        if now < self.paused_until:
            wake_at = min(wake_at, self.paused_until)
        elif free > 0:
            wake_at = min(wake_at, await self._poll_due(free, now))
        if self._in_flight:
            wake_at = min(wake_at, self._renew_at)
        return wake_at - now

    async def _poll_due(self, free: int, now: float) -> float:
        """Start polls of due watches, `free` at most; return when to look again.

        A budget without a limit takes them all at once (paused by a 429, they wait for the
        pause together). With a limited one, the polls waiting for their start hold
        `CLAIM_AHEAD` of its pace at most (one at least); the next claim comes when one is
        granted its start.
        """
        store = self.store
        budget = self._lookups.budget
        rate = budget.rate
        if math.isfinite(rate) and not budget.open_now(asyncio.get_running_loop().time()):
            ahead = max(1, math.ceil(rate * CLAIM_AHEAD))
            free = min(free, ahead - len(self._done.unstarted))
            if free <= 0:
                return math.inf  # a start granted (or a poll ended) wakes us
        claims = await store.claim(free, self._lease, self._worker)
        await self._start(claims, now)
        if len(claims) == free:
            return math.inf
        due = await store.next_due()
        return math.inf if due is None else due

    def _drop_polls(self) -> tuple[list[asyncio.Task[Order]], list[Claim]]:
        tasks, claims = list(self._in_flight), list(self._in_flight.values())
        self._in_flight.clear()
        self._done.finished.clear()
        self._done.unstarted.clear()
        self._renew_at = math.inf
        for task in tasks:
            if not task.cancel() and not task.cancelled():
                task.exception()  # ended but unread: mark its error seen ("never retrieved")
        if tasks and self._on_cancel is not None:
            self._on_cancel(tasks)
        self._stopping.extend(tasks)
        return tasks, claims

    def close(self) -> None:
        """`run` stops at its next sleep at the latest (call it before cancelling `run`'s task:
        Python 3.10 cannot tell that a library swallowed that cancel)."""
        self._closing = True

    def _closed(self) -> bool:
        return self._closing

    def cancel_now(self) -> None:
        """Cancel the polls under way, synchronously (no further request is sent)."""
        self._drop_polls()

    async def cancel(self) -> list[Claim]:
        """Cancel the polls under way, wait until they have ended, and return their claims."""
        _, claims = self._drop_polls()
        tasks, self._stopping = self._stopping, []
        await asyncio.gather(*tasks, return_exceptions=True)
        return claims

    async def stop(self) -> None:
        """Cancel the polls under way and release their claims, so another worker takes them;
        first write back what finished polls left, if the cancel cut `_commit` short (their
        watches stayed leased: tests/test_watcher.py, a cancel in the write of answers)."""
        claims = await self.cancel()
        with contextlib.suppress(Exception):  # the store may be gone; leases then expire
            await self._commit()
        if claims:
            with contextlib.suppress(Exception):
                await self.store.release(claims)

    async def expire(self, requested: Callable[[object], bool] = _always) -> None:
        """The deadline passed: every watch left settles with `OrderWaitTimeout`, unpolled.

        For a fan-out with one deadline, whose due watches are all its watches by then.
        `requested(task)`: whether a poll under way has sent its request (one still waiting
        for a connection or the budget has not: its order was never polled).
        """
        sent = {claim.order_id for task, claim in self._in_flight.items() if requested(task)}
        claims = await self.cancel()
        claims += await self.store.claim(sys.maxsize, self._lease, self._worker)
        claims.sort(key=lambda claim: claim.ref)  # in the order they were added
        await self._settle(
            [self._expired(claim, claim.attempts > 0 or claim.order_id in sent) for claim in claims]
        )

    async def sleep(self, delay: float) -> None:
        """Sleep `delay` seconds, or less: until a poll ends or the store nudges us.

        Never once `close` was called or while a cancel is pending: a library below may have
        swallowed the cancel meant to stop `run`, which would then sleep on until cancelled
        again. A cancel still to land (`cancellable` requests a cancel again once its Redis
        command is done) lands here; raised on top of it instead, it landed a second time in
        `stop`, cutting short the release of the claims under way (tests/test_cli_redis.py,
        the SIGTERM test, left leases so in 9 runs of 152).
        """
        task = asyncio.current_task()
        pending = sys.version_info >= (3, 11) and task is not None and task.cancelling() > 0
        if self._closing or pending:
            await asyncio.sleep(0)
            raise asyncio.CancelledError
        done = self._done
        if done.finished or delay <= 0:
            return
        loop = asyncio.get_running_loop()
        done.wakeup = loop.create_future()
        timer = None if math.isinf(delay) else loop.call_later(delay, done.wake)
        try:
            await done.wakeup
        finally:
            done.wakeup = None
            if timer is not None:
                timer.cancel()

    def _deadline_of(self, claim: Claim) -> float | None:
        return self._deadline if claim.deadline is None else claim.deadline

    def _timed_out(
        self, claim: Claim, last: Order | None, cause: TelegentError | None, *, polled: bool = True
    ) -> OrderWaitTimeout:
        """The watch's timeout; `cause`: its last poll's failure, if that poll failed."""
        timeout = OrderWaitTimeout(claim.order_id, last, self._timeout, polled=polled)
        timeout.__cause__ = cause
        return timeout

    def _expired(self, claim: Claim, polled: bool) -> Settlement:
        """A watch past its deadline that is settled without another poll (`polled`: the
        order was polled before), with its `timeout_cause`."""
        last = claim.last()
        cause = self.timeout_cause(claim.last_failure())
        timeout = self._timed_out(claim, last, cause, polled=polled)
        return Settlement(claim, last, timeout, polled=False)

    async def _start(self, claims: Sequence[Claim], now: float) -> None:
        expired = []
        for claim in claims:
            if expired_unpolled(now, self._deadline_of(claim), self._grace):
                expired.append(self._expired(claim, claim.attempts > 0))
                continue
            task = asyncio.ensure_future(_poll(self._lookups, claim.order_id, self._done))
            self._done.unstarted.add(task)
            self._in_flight[task] = claim
            task.add_done_callback(self._done.add)
        if self._in_flight and math.isinf(self._renew_at):
            self._renew_at = now + self._lease / 3
        if expired:
            self._settlements += expired
            await self._commit()

    async def _commit(self) -> None:
        """Write what the last polls left (each list is cleared once the store took it)."""
        if self._released:
            await self.store.release(self._released)
            self._released = []
        if self._answers:
            await self.store.record(self._answers)
            self._answers = []
        if self._settlements:
            await self._settle(self._settlements)
            self._settlements = []

    def _refused(self, now: float, error: TelegentError) -> None:
        """The API refused the credentials: pause every poll, longer each time in a row."""
        delay = REFUSAL_POLICY.delay(self._refusals)
        self._refusals += 1
        self.paused_until = max(self.paused_until, now + delay)
        self.refused.begin(error)
        logger.info("credentials refused: polls paused for %.1f s", delay)

    def _accepted(self) -> None:
        self._refusals = 0
        self.refused.end()

    def _collect(self, now: float) -> None:
        answers, settlements = self._answers, self._settlements
        refusal: TelegentError | None = None
        finished = self._done.finished
        while finished:
            task = finished.popleft()
            self._done.unstarted.discard(task)
            claim = self._in_flight.pop(task, None)
            if claim is None:  # its lease was lost, or the scheduler stopped
                if not task.cancelled():
                    task.exception()  # mark it seen ("exception was never retrieved")
                continue
            order: Order | None = None
            # A poll cancelled from outside (the client closing mid-wait) is polled again, so
            # that the order is not lost and the next poll reports why.
            error = TransportError("poll cancelled") if task.cancelled() else task.exception()
            if error is None:
                order = task.result()
                if order.raw_status != claim.last_status:
                    log_change(order, claim.last_status)
            elif not isinstance(error, TelegentError):
                raise error  # a bug, not an API failure: do not hide it
            else:
                logger.debug("order %s: poll failed: %s", claim.order_id, error)
            self.last_poll_at = time.time()
            unbudgeted = isinstance(error, BudgetUnavailableError)
            self._budget_failure = error if unbudgeted else None
            if error is None or (isinstance(error, APIStatusError) and not is_refusal(error)):
                self._accepted()
            if error is not None and self._pause_on_refusal and is_refusal(error):
                refusal = error  # the account's fault, not the order's
                self._released.append(claim)
                continue
            if unbudgeted:  # the budget's own outage: polled later
                self._released.append(claim)
                continue
            policy = self._policy if claim.policy is None else claim.policy
            decision = decide(
                order,
                error,
                now=now,
                attempt=claim.attempts,
                policy=policy,
                deadline=self._deadline_of(claim),
            )
            verdict = decision.verdict
            if verdict is PollVerdict.POLL:
                assert decision.next_poll is not None
                if logger.isEnabledFor(logging.DEBUG):
                    wait = decision.next_poll - now
                    logger.debug("order %s: next poll in %.2f s", claim.order_id, wait)
                answers.append(PendingAnswer(claim, decision.next_poll, order, error))
            elif verdict is PollVerdict.SETTLED:
                settlements.append(Settlement(claim, order, None))
            else:
                last = order or claim.last()
                if verdict is PollVerdict.TIMED_OUT:
                    error = self._timed_out(claim, last, error)
                settlements.append(Settlement(claim, last, error))
        if not self._in_flight:
            self._renew_at = math.inf
        if refusal is not None:
            self._refused(now, refusal)

    async def _settle(self, settlements: list[Settlement]) -> None:
        stale = set(await self.store.settle(settlements))
        for item in settlements:
            claim = item.claim
            if claim.order_id not in stale:
                self._on_settled(OrderOutcome(claim.order_id, item.order, item.error, claim.tag))

    async def _renew(self, now: float) -> None:
        self._renew_at = now + self._lease / 3
        lost = set(await self.store.renew(list(self._in_flight.values()), self._lease))
        for task, claim in list(self._in_flight.items()):
            if claim.order_id in lost:  # another worker holds it now: its answer is not ours
                del self._in_flight[task]
                task.cancel()
