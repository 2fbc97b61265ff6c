"""The deadline of one call, applied to each of its waits (a token, a connection slot, the
budget): past it, `TransportTimeoutError`, chained to the last attempt's failure if any, or
`BudgetUnavailableError` while the budget's Redis is away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, TypeVar

from ._errors import BudgetUnavailableError, TelegentError, TransportTimeoutError

if TYPE_CHECKING:
    from ._budgets.base import Budget

__all__ = ["CALL_TIMED_OUT", "by", "slot"]

CALL_TIMED_OUT = "the call's timeout passed before an answer"

_T = TypeVar("_T")


def slot(
    slots: asyncio.Semaphore, deadline: float | None, failure: TelegentError | None
) -> contextlib.AbstractAsyncContextManager[object]:
    """A pooled connection's slot; a call with a deadline waits for it only until then."""
    return slots if deadline is None else _slot_by(slots, deadline, failure)


@contextlib.asynccontextmanager
async def _slot_by(
    slots: asyncio.Semaphore, deadline: float, failure: TelegentError | None
) -> AsyncIterator[None]:
    await by(deadline, slots.acquire(), failure)
    try:
        yield
    finally:
        slots.release()


async def by(
    deadline: float | None,
    step: Awaitable[_T],
    failure: TelegentError | None = None,
    budget: Budget | None = None,
) -> _T:
    """Await one wait of a call (a token, a budget slot) within the call's deadline. A
    deadline that passes while `budget`'s Redis is away (a token request waits for the
    budget too) is `BudgetUnavailableError`: nothing was sent."""
    if deadline is None:
        return await step
    try:
        return await asyncio.wait_for(step, deadline - asyncio.get_running_loop().time())
    except asyncio.TimeoutError:
        outage = None if budget is None else budget.outage
        if outage is not None and outage.error is not None:
            raise BudgetUnavailableError(
                "the budget's Redis could not be reached before the call's timeout"
            ) from outage.error
        raise TransportTimeoutError(CALL_TIMED_OUT) from failure
