"""`OrderActivities`: Temporal activities over one `TelegentClient` per worker process.

Every activity of a worker goes through the one client it was given, so they share its budget
(a `RedisBudget` shares it across workers and hosts), its token cache and its connection pool:
a client per activity would multiply the account's request rate. The client reads its
credentials from the worker's environment (`TELEGENT_ACCOUNT_KEY`, ...) when built without
them, so none ever goes into workflow history.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from temporalio import activity

from ..._client import TelegentClient
from ..._errors import TelegentError
from ..._models import Order
from ..._schedule import PollVerdict, decide
from ..._timing import PollPolicy
from ._data import (
    OrderResult,
    PollInput,
    PortInResult,
    SubmitInput,
    SubmittedResult,
    UpdateInput,
    port_in_result,
    result_of,
    submitted_result,
)
from ._decisions import (
    OrderFailed,
    OrderPending,
    application_error,
    poll_delay,
    progress,
    resume_point,
)

__all__ = ["OrderActivities"]


@contextlib.contextmanager
def _as_application_error(delay: Callable[[], timedelta | None] = lambda: None) -> Iterator[None]:
    """SDK errors and bad input leave an activity as `application_error`'s ApplicationError
    (retryable or not); a cancellation and anything else pass as they are."""
    try:
        yield
    except (TelegentError, ValueError, TypeError) as exc:
        raise application_error(exc, delay()) from exc


def _settled(order: Order) -> OrderResult:
    """The result of a settled order, or `OrderFailed` when it did not succeed."""
    result = result_of(order)
    if not order.succeeded:
        raise OrderFailed(result)
    return result


class OrderActivities:
    """The Telegent activities of one worker process, sharing `client` (one budget, one token
    cache). Register them with `Worker(..., activities=OrderActivities(client).all())`.

    Args:
        client: The worker's client, entered (`async with`) for the worker's lifetime.
    """

    def __init__(self, client: TelegentClient) -> None:
        if not isinstance(client, TelegentClient):
            raise TypeError(f"client must be a TelegentClient, not {type(client).__name__}")
        self.client = client

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for a worker's `activities=`."""
        return [
            self.poll_order,
            self.wait_for_order,
            self.get_order,
            self.update_port_in,
            self.cancel_port_in,
            self.submit_port_in,
        ]

    def _policy(self, request: PollInput) -> PollPolicy:
        with _as_application_error():
            return request.policy(self.client.poll_policy)

    @activity.defn(name="telegent.poll_order")
    async def poll_order(self, request: PollInput) -> OrderResult:
        """Poll the order once: its `OrderResult` when it completed; `OrderFailed` when it
        settled otherwise; `OrderPending` while it is pending, whose `next_retry_delay` is the
        cadence's next delay after this many polls (the activity's attempt number).

        Args:
            request: The order and its cadence.
        """
        policy = self._policy(request)
        polls = activity.info().attempt

        def delay() -> timedelta:
            return poll_delay(policy, polls, paused_for=self.client.stats.budget_paused_for)

        with _as_application_error(delay):
            order = await self.client.get_order(request.order_id)
        if not order.is_settled:
            raise OrderPending(result_of(order), delay())
        return _settled(order)

    @activity.defn(name="telegent.wait_for_order")
    async def wait_for_order(self, request: PollInput) -> OrderResult:
        """Poll on the cadence inside this one activity until the order settles: for short
        waits (a provision order's seconds). Heartbeats `{polls, last_status}` after each poll
        and while it sleeps (set `heartbeat_timeout`); a retried attempt resumes the poll count
        and cadence from the last heartbeat. A cancellation stops it at once. Transient
        failures are polled again on the cadence; the result is `poll_order`'s.

        Args:
            request: The order and its cadence.
        """
        info = activity.info()
        policy = self._policy(request)
        polls, last_status = resume_point(info.heartbeat_details)
        loop = asyncio.get_running_loop()
        while True:
            order: Order | None = None
            error: TelegentError | None = None
            with _as_application_error():
                try:
                    order = await self.client.get_order(request.order_id)
                except TelegentError as exc:
                    error = exc
            polls += 1
            last_status = order.raw_status if order is not None else last_status
            activity.heartbeat(progress(polls, last_status))
            now = loop.time()
            verdict = decide(order, error, now=now, attempt=polls - 1, policy=policy, deadline=None)
            if verdict.verdict is PollVerdict.SETTLED:
                assert order is not None
                return _settled(order)
            if verdict.verdict is PollVerdict.FAILED:
                assert error is not None
                raise application_error(error) from error
            assert verdict.next_poll is not None
            await _sleep(verdict.next_poll - now, info.heartbeat_timeout, (polls, last_status))

    @activity.defn(name="telegent.get_order")
    async def get_order(self, order_id: str) -> OrderResult:
        """Look the order up once, whatever its status.

        Args:
            order_id: The order's ID.
        """
        with _as_application_error():
            return result_of(await self.client.get_order(order_id))

    @activity.defn(name="telegent.update_port_in")
    async def update_port_in(self, request: UpdateInput) -> PortInResult:
        """Correct a rejected port-in with the fields given (`client.update_port_in`); the
        order goes back to `Submitted`: wait for it again.

        Args:
            request: The port-in and its corrections.
        """
        with _as_application_error():
            keywords = request.fields.keywords()
            return port_in_result(await self.client.update_port_in(request.order_id, **keywords))

    @activity.defn(name="telegent.cancel_port_in")
    async def cancel_port_in(self, order_id: str) -> PortInResult:
        """Cancel a port-in (final; a cancel of a cancelled order succeeds).

        Args:
            order_id: The port-in's ID.
        """
        with _as_application_error():
            return port_in_result(await self.client.cancel_port_in(order_id))

    @activity.defn(name="telegent.submit_port_in")
    async def submit_port_in(self, request: SubmitInput) -> SubmittedResult:
        """Submit a port-in (`client.submit_port_in`). When the SDK cannot tell whether
        Telegent created the order (`SubmitOutcomeUnknownError`), the error is non-retryable:
        Temporal must not send it again (`client.check_port_in_eligibility` of the number
        shows whether a port-in is already active). Schedule it with
        `RetryPolicy(maximum_attempts=1)`: an attempt whose worker died mid-request is just as
        unknown, and Temporal would retry it after its timeout.

        Args:
            request: The port-in to submit.
        """
        with _as_application_error():
            submitted = await self.client.submit_port_in(
                request.phone_number,
                current_carrier_name=request.current_carrier_name,
                current_account_number=request.current_account_number,
                current_account_password=request.current_account_password,
                current_billing_address=request.current_billing_address.billing_address(),
                iccid=request.iccid,
                target_portin_classification=request.target_portin_classification,
                subscriber_name=request.subscriber_name,
            )
        return submitted_result(submitted)


async def _sleep(
    seconds: float, heartbeat_timeout: timedelta | None, resume: tuple[int, str | None]
) -> None:
    """Sleep, heartbeating the same progress at least twice per `heartbeat_timeout`, so a
    long gap between polls neither times the attempt out nor hides a cancellation."""
    step = math.inf if heartbeat_timeout is None else heartbeat_timeout.total_seconds() / 2
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > step:
        await asyncio.sleep(step)
        activity.heartbeat(progress(*resume))
    await asyncio.sleep(max(0.0, left))
