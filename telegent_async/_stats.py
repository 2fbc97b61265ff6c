"""Live counters of a client: what it sent, what came back, what it retried and why.

The send path only adds 1 to plain integers (two per request: sent, and the answer's status
class); everything else happens when someone reads `client.stats`, which copies the counters
into a frozen `ClientStats`. Health endpoints, the CLI's progress line and the OpenTelemetry
metrics (`_telemetry`) all read these same counters, so the numbers never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ._errors import (
    APIStatusError,
    ResponseDecodeError,
    TelegentError,
    TransportTimeoutError,
)

__all__ = ["ClientStats", "Counters", "retry_reason"]

#: Status classes by `status // 100` (aiohttp accepts any three digits); index 0 counts the
#: attempts that got no answer at all.
_CLASS_NAMES = ("no answer", *(f"{digit}xx" for digit in range(1, 10)))


def retry_reason(failure: TelegentError) -> str:
    """A short, low-cardinality name for why a request is retried (a metric attribute)."""
    if isinstance(failure, APIStatusError):
        return str(failure.status_code)
    if isinstance(failure, TransportTimeoutError):
        return "timeout"
    if isinstance(failure, ResponseDecodeError):
        return "undecodable"
    return "connection"


@attrs.frozen
class ClientStats:
    """A snapshot of a client's counters since it was created (`client.stats`).

    Attributes:
        requests: HTTP requests sent (every attempt, token requests included).
        responses: Of those answered or failed, how many per status class (`"2xx"`,
            `"4xx"`, `"5xx"`... and `"no answer"` for connection failures and timeouts).
        retries: Retries by reason (the status, `"401"` for the one re-authentication,
            `"timeout"`, `"connection"`, `"undecodable"`).
        token_requests: Tokens requested.
        rate_limit_pauses: 429 answers that paused the whole client.
        budget_rate: The budget's current pace in requests per minute (None: unlimited).
        budget_paused_for: Seconds until a 429 pause ends (0: none).
        cancelled: Requests sent, then cancelled before their answer (they never get one).
    """

    requests: int
    responses: Mapping[str, int]
    retries: Mapping[str, int]
    token_requests: int
    rate_limit_pauses: int
    budget_rate: float | None
    budget_paused_for: float
    cancelled: int = 0

    @property
    def in_flight(self) -> int:
        """Requests sent that have not been answered (or failed, or been cancelled) yet."""
        return self.requests - sum(self.responses.values()) - self.cancelled


class Counters:
    """The mutable counters behind `ClientStats`; the send path increments the fields."""

    __slots__ = (
        "by_class",
        "cancelled",
        "rate_limit_pauses",
        "requests",
        "retries",
        "token_requests",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.by_class = [0] * len(_CLASS_NAMES)  # answers by `status // 100`; 0: no answer
        self.retries: dict[str, int] = {}
        self.token_requests = 0
        self.rate_limit_pauses = 0
        self.cancelled = 0

    def retried(self, reason: str) -> None:
        self.retries[reason] = self.retries.get(reason, 0) + 1

    def responses(self) -> dict[str, int]:
        return {name: n for name, n in zip(_CLASS_NAMES, self.by_class, strict=True) if n}

    def snapshot(self, budget_rate: float | None, budget_paused_for: float) -> ClientStats:
        return ClientStats(
            requests=self.requests,
            responses=MappingProxyType(self.responses()),
            retries=MappingProxyType(dict(self.retries)),
            token_requests=self.token_requests,
            rate_limit_pauses=self.rate_limit_pauses,
            budget_rate=budget_rate,
            budget_paused_for=budget_paused_for,
            cancelled=self.cancelled,
        )
