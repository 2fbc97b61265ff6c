"""What each answer means to Temporal (pure): the errors activities raise, when Temporal should
try again, the heartbeat a wait resumes from, and which activity a workflow runs next.

Temporal retries an activity that raises anything but a non-retryable `ApplicationError`, after
its retry policy's interval, or after `next_retry_delay` when the error sets one (not capped by
the policy's `maximum_interval`). So a pending order is a retryable `OrderPending` whose delay
is the order's poll cadence: each poll is one activity attempt, and between two polls nothing
runs on any worker. A settled failure, a 4xx that polling again cannot change and bad input are
non-retryable; transient failures (5xx, 408, 429, connection errors) the SDK already retried
are retryable, on the same cadence (no earlier than a 429's Retry-After).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Final

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from ..._carrier import RESUBMIT_FIELD, NextStep
from ..._errors import RateLimitError, SubmitOutcomeUnknownError, TelegentError
from ..._status import is_permanent
from ..._timing import PollPolicy, full_jitter
from ._data import OrderResult, preset_policy

__all__ = [
    "NON_RETRYABLE_TYPES",
    "Action",
    "OrderFailed",
    "OrderPending",
    "application_error",
    "failed_result",
    "fields_to_ask",
    "next_action",
    "poll_delay",
    "poll_retry_policy",
    "progress",
    "resume_point",
]


class OrderPending(ApplicationError):
    """Raised by `telegent.poll_order` while the order is pending: retryable, with
    `next_retry_delay` the order's next poll; `details[0]` is the `OrderResult` seen.

    Args:
        result: The pending order.
        delay: When to poll it again.
    """

    TYPE: Final = "OrderPending"

    def __init__(self, result: OrderResult, delay: timedelta) -> None:
        super().__init__(
            f"order {result.order_id} is {result.raw_status}; next poll in {_words(delay)}",
            result,
            type=self.TYPE,
            next_retry_delay=delay,
        )


class OrderFailed(ApplicationError):
    """Raised when the order settled without success (rejected, in error, cancelled):
    non-retryable; `details[0]` is the `OrderResult` (see `failed_result`).

    Args:
        result: The settled order.
    """

    TYPE: Final = "OrderFailed"

    def __init__(self, result: OrderResult) -> None:
        code = f" ({result.carrier_code})" if result.carrier_code else ""
        super().__init__(
            f"order {result.order_id} settled {result.raw_status}{code}",
            result,
            type=self.TYPE,
            non_retryable=True,
        )


#: Error types no retry can change, named in `poll_retry_policy` (each is also raised
#: non-retryable): a settled failure, and a create whose outcome is unknown.
NON_RETRYABLE_TYPES: Final = (OrderFailed.TYPE, SubmitOutcomeUnknownError.__name__)


def _words(delay: timedelta) -> str:
    seconds = delay.total_seconds()
    return f"{seconds:.3g} s" if seconds < 120 else f"{seconds / 60:.3g} min"


def poll_delay(
    policy: PollPolicy,
    polls: int,
    *,
    paused_for: float = 0.0,
    jitter: Callable[[float], float] = full_jitter,
) -> timedelta:
    """When to poll again after `polls` polls (>= 1): the cadence's delay, but no earlier than
    the end of the client's 429 pause (`paused_for` seconds; a failed poll's own Retry-After is
    `application_error`'s floor)."""
    delay = policy.delay(max(0, polls - 1), jitter)
    return timedelta(seconds=max(delay, paused_for))


def application_error(error: Exception, delay: timedelta | None = None) -> ApplicationError:
    """The `ApplicationError` an activity raises for an SDK error or bad input.

    Its type is the error's class name (`NotFoundError`, `ValueError` ...). Non-retryable: bad
    input (`ValueError`, `TypeError`), a 4xx polling again cannot change (400, 401, 403, 404,
    405) and a create whose outcome is unknown. Anything else is transient: retryable after
    `delay` (a 429's Retry-After at least), or the retry policy's interval when None.
    """
    kind = type(error).__name__
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        floor = timedelta(seconds=error.retry_after)
        delay = floor if delay is None else max(delay, floor)
    final = not isinstance(error, TelegentError) or is_permanent(error)
    final = final or isinstance(error, SubmitOutcomeUnknownError)
    return ApplicationError(
        str(error), type=kind, non_retryable=final, next_retry_delay=None if final else delay
    )


def poll_retry_policy(preset: str) -> RetryPolicy:
    """The retry policy that turns an activity's retries into a poll loop: one attempt per
    poll of `telegent.poll_order`, until the order settles or `schedule_to_close_timeout`.

    Attempts are unlimited (the schedule-to-close timeout is the deadline); the intervals are
    the preset's cadence, for failures that set no `next_retry_delay` of their own (a pending
    order and transient failures do).

    Args:
        preset: "portin" (10 minutes doubling to 6 hours) or "provision" (1 s to 15 s).
    """
    policy = preset_policy(preset)
    return RetryPolicy(
        initial_interval=timedelta(seconds=policy.initial),
        backoff_coefficient=policy.factor,
        maximum_interval=timedelta(seconds=policy.max_interval),
        maximum_attempts=0,
        non_retryable_error_types=list(NON_RETRYABLE_TYPES),
    )


# -- wait_for_order's heartbeat ---------------------------------------------------------------


def progress(polls: int, last_status: str | None) -> dict[str, Any]:
    """What `telegent.wait_for_order` heartbeats: `{polls, last_status}`, order data only."""
    return {"polls": polls, "last_status": last_status}


def resume_point(details: Sequence[Any]) -> tuple[int, str | None]:
    """The poll count and last status to resume from: the last heartbeat's details as the
    next attempt receives them (a JSON object), or `(0, None)` when there are none or they are
    not ours."""
    last = details[-1] if details else None
    if not isinstance(last, dict):
        return 0, None
    polls, status = last.get("polls"), last.get("last_status")
    if isinstance(polls, bool) or not isinstance(polls, int) or polls < 0:
        return 0, None
    return polls, status if isinstance(status, str) else None


# -- a workflow's next activity -----------------------------------------------------------------


class Action(enum.Enum):
    """Which activity a port-in workflow runs after a wait ends (`next_action`)."""

    END = "end"  # end with the order: completed, cancelled, in error, or left for a person
    UPDATE = "update"  # telegent.update_port_in with the fields `fields_to_ask` names, then wait
    CANCEL = "cancel"  # telegent.cancel_port_in (final: no update can fix it), then end


def next_action(result: OrderResult, updates: int, max_updates: int = 2) -> Action:
    """The activity to run for a port-in whose wait ended with `result`, after `updates`
    updates: the order's own `next_step` (`tg.NextStep`) decides. Only a rejection no update
    can fix is cancelled (a cancel is final and loses the order); one that needs Telegent's
    support, names no field, or is still rejected after `max_updates` updates ends the
    workflow with the order, for a person (its `next_step` and `remedy` say what to do).

    Args:
        result: The settled order (a success, or an `OrderFailed`'s details).
        updates: Updates already sent for this port-in.
        max_updates: The most updates to send before leaving the port-in to a person.
    """
    step = result.next_step
    if step == NextStep.CANCEL_AND_SUBMIT.name:
        return Action.CANCEL
    if step not in _UPDATES or not fields_to_ask(result) or updates >= max_updates:
        return Action.END
    return Action.UPDATE


_UPDATES: Final = frozenset({NextStep.UPDATE.name, NextStep.UPDATE_AFTER_SUBSCRIBER.name})


def fields_to_ask(result: OrderResult) -> tuple[str, ...]:
    """The `update_port_in` fields an update of this order sends: those its carrier codes
    name, or for a resubmit once the subscriber acted (a 6P number lock lifted) the field an
    update resends unchanged (`tg.RESUBMIT_FIELD`).

    Args:
        result: The order needing action.
    """
    if result.update_fields or result.next_step != NextStep.UPDATE_AFTER_SUBSCRIBER.name:
        return result.update_fields
    return (RESUBMIT_FIELD,)


def failed_result(error: BaseException) -> OrderResult | None:
    """The `OrderResult` an `OrderFailed` carries, or None for any other error.

    Args:
        error: What the workflow caught: an `ActivityError` whose cause is the
            `ApplicationError` (or that `ApplicationError` itself).
    """
    cause = error.cause if isinstance(error, ActivityError) else error
    if not isinstance(cause, ApplicationError) or cause.type != OrderFailed.TYPE:
        return None
    return OrderResult.from_details(cause.details[0]) if cause.details else None
