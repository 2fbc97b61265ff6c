"""The budgets wing: the account's request budget.

`base` holds the pure decisions (rolling window, pacing, what a 429 teaches) and the `Budget`
protocol; `local` is one process's budget, `redis` the budget every process naming the same
Redis shares. `budget_of` turns `TelegentClient(budget=, requests_per_minute=)` into a budget.
"""

from __future__ import annotations

from .._config import DEFAULT_REQUESTS_PER_MINUTE
from .base import Budget
from .local import LocalBudget
from .redis import RedisBudget

__all__ = ["Budget", "LocalBudget", "RedisBudget", "budget_of"]


def budget_of(budget: object, requests_per_minute: float | None) -> Budget:
    """`budget=` as given, else a `LocalBudget` of `requests_per_minute` (50 by default)."""
    if budget is None:
        return LocalBudget(requests_per_minute)
    if not all(callable(getattr(budget, name, None)) for name in ("acquire", "pause", "start_now")):
        raise TypeError(
            f"budget must be a LocalBudget or a RedisBudget, not {type(budget).__name__}"
        )
    if requests_per_minute != DEFAULT_REQUESTS_PER_MINUTE:
        raise ValueError("give budget= or requests_per_minute=, not both (the budget has its rate)")
    return budget  # type: ignore[return-value]
