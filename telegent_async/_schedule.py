"""The poll schedule: what an answer means for an order, and when to poll it next (pure).

Every waiter in the package (`watch_order`, `wait_for_orders`, `OrderWatcher`, whatever store
holds the watches) asks these functions, so the rules live in one place and are tested on a
fake clock: `now`, the attempt number and the jitter are passed in, never read.

Times are seconds on the caller's clock (the store's, for a watcher: wall-clock seconds, so
that deadlines survive a restart).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from ._errors import TelegentError
from ._models import Order
from ._status import is_permanent
from ._timing import PollPolicy, full_jitter

__all__ = [
    "REPORT_GRACE",
    "Decision",
    "PollVerdict",
    "decide",
    "expired_unpolled",
    "is_permanent",
    "next_poll_at",
]

#: How long after its deadline a wait lets its last poll go and answer: the poll at the
#: deadline goes only if the budget has room for it by then and must answer by then, or the
#: timeout is reported with the last answer seen before. A deadline bounds every wait: the
#: report comes within 0.5 s of it (this, and the time to hand the outcomes over).
REPORT_GRACE = 0.3


class PollVerdict(enum.Enum):
    """What one poll's answer means for its order."""

    SETTLED = "settled"  # the order reached a settled status: deliver it
    FAILED = "failed"  # a permanent error (404 ...): deliver the error
    TIMED_OUT = "timed out"  # still pending at (or after) the deadline: deliver OrderWaitTimeout
    POLL = "poll"  # still pending: poll again at `next_poll`


@attrs.frozen(slots=True)
class Decision:
    verdict: PollVerdict
    next_poll: float | None = None


_SETTLED = Decision(PollVerdict.SETTLED)
_FAILED = Decision(PollVerdict.FAILED)
_TIMED_OUT = Decision(PollVerdict.TIMED_OUT)


def next_poll_at(
    now: float,
    attempt: int,
    policy: PollPolicy,
    deadline: float | None,
    jitter: Callable[[float], float] = full_jitter,
) -> float:
    """When to poll next: the policy's delay, but never later than the deadline.

    A poll that would fall past the deadline happens AT the deadline instead, so a wait never
    reports a timeout on an answer that may be hours old (`PollPolicy.PORT_IN` waits up to 6 h).
    """
    at = now + policy.delay(attempt, jitter)
    return at if deadline is None or at < deadline else deadline


def decide(
    order: Order | None,
    error: TelegentError | None,
    *,
    now: float,
    attempt: int,
    policy: PollPolicy,
    deadline: float | None,
    jitter: Callable[[float], float] = full_jitter,
) -> Decision:
    """The verdict on one poll that answered `order` or failed with `error`.

    `attempt` counts the polls of this order before this one. A pending answer (or a transient
    failure) received at or after the deadline is final: that poll was the one at the deadline.
    """
    if error is None and order is not None and order.is_settled:
        return _SETTLED
    if error is not None and is_permanent(error):
        return _FAILED
    if deadline is not None and now >= deadline:
        return _TIMED_OUT
    return Decision(PollVerdict.POLL, next_poll_at(now, attempt, policy, deadline, jitter))


def expired_unpolled(now: float, deadline: float | None, grace: float) -> bool:
    """True when a due poll is so late past the deadline that it should not be sent at all.

    The last poll is scheduled at the deadline; `grace` is how late it may still go out (a
    budget queue, a process restart). Beyond that the watch times out on what it last saw.
    """
    return deadline is not None and now > deadline + grace
