"""Faults of what a watcher depends on (its store, its budget, the account's credentials) as
episodes to ride out, not deaths: which faults pass (pure), the one retry loop, and the
health they add up to (`tg.WatcherHealth`).

The rule: a fault that passes by itself (a connection refused or reset, a timeout, Redis
loading or failing over, an SQLite file locked by another process) is retried on
`FAULT_POLICY`, whose longest pause is one second, so work resumes within two seconds of the
dependency coming back; any other fault (a file that is not a database, a newer schema) is
raised at once, and stops whatever depends on it loudly. Refused credentials, and a base URL
that reaches no endpoint, are paused on `REFUSAL_POLICY` instead (a setup problem is fixed by a
person, in minutes or hours; settling every watch with it would lose them all).
Each outage is logged twice, at WARNING: when it starts and when it ends, with its length.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TypeVar

import attrs

from ._errors import (
    AuthenticationError,
    BudgetUnavailableError,
    EndpointNotFoundError,
    PermissionDeniedError,
)
from ._stores.sqlite_file import is_locked
from ._timing import PollPolicy

__all__ = [
    "FAULT_POLICY",
    "REFUSAL_POLICY",
    "Outage",
    "WatcherHealth",
    "is_refusal",
    "is_transient",
    "retrying",
]

logger = logging.getLogger("telegent_async")

T = TypeVar("T")

#: Retries of a transient fault: 0.1 s doubling to 1 s, half jittered (several workers that
#: lost one Redis must not come back in step).
FAULT_POLICY = PollPolicy(initial=0.1, factor=2.0, max_interval=1.0, jitter=0.5)
#: Pauses after refused credentials: 1 s doubling to 5 minutes (`PollPolicy.RETRY`'s cadence,
#: growing to minutes: nobody fixes an account in 30 s).
REFUSAL_POLICY = PollPolicy(initial=1.0, factor=2.0, max_interval=300.0, jitter=0.2)

#: Redis answers that mean "not now" (a replica loading, a failover under way).
_REDIS_BUSY = ("LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN")
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


@functools.cache
def _redis_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """redis-py's transient errors and its ResponseError, or nothing without the extra."""
    try:
        from redis import exceptions
    except ImportError:  # pragma: no cover - depends on the environment
        return (), ()
    return (exceptions.ConnectionError, exceptions.TimeoutError), (exceptions.ResponseError,)


def is_transient(error: BaseException) -> bool:
    """True when `error` is a fault that passes by itself: retry the operation later (pure)."""
    if isinstance(error, BudgetUnavailableError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        return is_locked(error)
    if isinstance(error, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True  # refused, reset, aborted, broken pipe, timed out
    if isinstance(error, OSError) and error.errno in _UNREACHABLE:
        return True
    transient, response = _redis_errors()
    if isinstance(error, transient):
        return True  # redis-py's ConnectionError covers BusyLoadingError (LOADING)
    return isinstance(error, response) and str(error).startswith(_REDIS_BUSY)


def is_refusal(error: BaseException) -> bool:
    """True when every poll would fail alike for the account's setup, not for an order: its
    credentials refused (401 or 403 after a fresh token) or its base URL reaching no endpoint
    (`EndpointNotFoundError`, a gateway's routing miss) (pure)."""
    return isinstance(error, (AuthenticationError, PermissionDeniedError, EndpointNotFoundError))


def describe(what: str, error: BaseException, state: str = "unavailable") -> str:
    """An outage in words, for logs and `WatcherHealth.fault` (never a URL's password: the
    store and budget errors say host and port only)."""
    text = str(error).strip() or "no details"
    return f"{what} {state}: {type(error).__name__}: {text[:200]}"


class Outage:
    """One dependency's outage, if one is under way: logged once when it starts, once when it
    ends (with how long it lasted), both at WARNING."""

    __slots__ = ("error", "since", "state", "what")

    def __init__(self, what: str, state: str = "unavailable") -> None:
        self.what = what
        self.state = state
        self.error: BaseException | None = None
        self.since = 0.0  # monotonic

    @property
    def refusal(self) -> bool:
        return self.state == "refused"

    @property
    def fault(self) -> str | None:
        """What is wrong now, in words, or None."""
        return None if self.error is None else describe(self.what, self.error, self.state)

    def begin(self, error: BaseException) -> None:
        if self.error is None:
            self.since = time.monotonic()
            until = "polls paused until accepted" if self.refusal else "retrying until it is back"
            logger.warning("%s (%s)", describe(self.what, error, self.state), until)
        self.error = error

    def end(self) -> None:
        if self.error is not None:
            lasted = time.monotonic() - self.since
            back = "accepted again" if self.refusal else "available again"
            logger.warning("%s %s after %.1f s", self.what, back, lasted)
            self.error = None


async def retrying(
    operation: Callable[[], Awaitable[T]],
    outage: Outage,
    *,
    give_up_at: float | None = None,
    policy: PollPolicy = FAULT_POLICY,
    ends: bool = True,
    stop: Callable[[], bool] | None = None,
) -> T:
    """`await operation()`, again on `policy` for as long as it fails with a transient fault
    (`outage` hears when it starts and, if `ends`, when it ends: an operation that may succeed
    while its dependency is half away, a read while another process holds the write lock,
    should not say it is back). Anything else is raised at once; so is the transient fault
    whose next try would fall after `give_up_at` (loop time), or once `stop()` is true."""
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        try:
            result = await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = policy.delay(attempt)
            outage.begin(exc)
            if give_up_at is not None and loop.time() + delay > give_up_at:
                raise
            if stop is not None and stop():
                raise
            attempt += 1
            await asyncio.sleep(delay)
        else:
            if ends:
                outage.end()
            return result


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


@attrs.frozen
class WatcherHealth:
    """How an `OrderWatcher` is doing (`watcher.health`): serve it from a health endpoint.

    Attributes:
        running: The watcher is started and its scheduler is alive (False after a fault that
            does not pass, or once closed).
        last_poll_at: When a poll last got an answer (or failed), or None.
        store_ok: The store answered its last operation.
        budget_ok: The client's budget (a `RedisBudget`'s Redis) answered its last request.
        credentials_ok: The API did not refuse the account's credentials at the last poll.
        paused_until: When polling resumes after refused credentials, or None.
        fault: What is wrong now, in words, or None.
    """

    running: bool
    last_poll_at: datetime | None
    store_ok: bool
    budget_ok: bool
    credentials_ok: bool
    paused_until: datetime | None
    fault: str | None

    @classmethod
    def of(
        cls,
        *,
        running: bool,
        last_poll_at: float | None,
        paused_until: float | None,
        fatal: BaseException | None,
        store: Outage,
        budget: Outage | None,
        credentials: Outage,
    ) -> WatcherHealth:
        """The health these outages add up to (`last_poll_at`, `paused_until`: epoch seconds)."""
        faults = [
            None if fatal is None else f"stopped: {describe('store', fatal)}",
            store.fault,
            None if budget is None else budget.fault,
            credentials.fault,
        ]
        return cls(
            running=running and fatal is None,
            last_poll_at=_moment(last_poll_at),
            store_ok=store.error is None and fatal is None,
            budget_ok=budget is None or budget.error is None,
            credentials_ok=credentials.error is None,
            paused_until=_moment(paused_until),
            fault=next((fault for fault in faults if fault is not None), None),
        )
