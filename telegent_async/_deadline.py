"""The deadline of one call, applied to each of its waits (a token, a connection slot, the
budget): past it, `TransportTimeoutError`, chained to the last attempt's failure if any, or
`BudgetUnavailableError` while the budget's Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from ._errors import BudgetUnavailableError, TelegentError, TransportTimeoutError

if TYPE_CHECKING:
    from ._budgets.base import Budget

__all__ = ["CALL_TIMED_OUT", "by"]

CALL_TIMED_OUT = "the call's timeout passed before an answer"

_T = TypeVar("_T")


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
