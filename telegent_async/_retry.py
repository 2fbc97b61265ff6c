"""What one HTTP attempt's result means for its request: return, re-authenticate, retry or raise.

The transport (`_transport._Transport._send`) only does I/O: it sends an attempt, hands
what came back to `decide_attempt`, and carries out the verdict. Every rule lives here, pure,
so it is tested without a socket (as gidgethub's `decipher_response`): `now` and the jitter
are passed in, never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from ._errors import (
    APIStatusError,
    ResponseDecodeError,
    TelegentError,
    body_excerpt,
    message_excerpt,
)
from ._status import RETRY_STATUSES, error_for_status
from ._timing import PollPolicy, full_jitter, parse_retry_after

__all__ = [
    "AttemptVerdict",
    "HTTPAnswer",
    "Reauthenticate",
    "Retry",
    "RetryRules",
    "Return",
    "decide_attempt",
    "status_error",
]

_T = TypeVar("_T")


@attrs.frozen
class HTTPAnswer:
    """What the server sent back for one attempt (the body already capped and redacted)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen
class RetryRules:
    """How a client retries: `max_retries` per request, `policy`'s cadence between attempts,
    and a server's Retry-After honoured up to `max_retry_after` seconds."""

    max_retries: int
    policy: PollPolicy
    max_retry_after: float

    def delay(
        self,
        attempt: int,
        retry_after: float | None,
        jitter: Callable[[float], float] = full_jitter,
    ) -> float:
        """Seconds before the retry after attempt number `attempt` (counted from 0)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.policy.delay(attempt, jitter)


@attrs.frozen
class Return(Generic[_T]):
    """The answer decoded: the request's result."""

    value: _T


@attrs.frozen
class Reauthenticate:
    """A 401 on a token that can be renewed: discard it and send again at once, once."""


@attrs.frozen
class Retry:
    """Send again after `delay` seconds. `pause` (a 429): first hold every request of the
    client for that many seconds; the retry then waits for the budget, not for `delay` (0)."""

    failure: TelegentError
    delay: float
    pause: float | None = None


@attrs.frozen
class Raise:
    """Give up with `error`. `pause` as in `Retry`: a 429 pauses the client even when this
    request has no retry left, since the others would meet the same limit."""

    error: TelegentError
    pause: float | None = None


AttemptVerdict = Return[_T] | Reauthenticate | Retry | Raise


def decide_attempt(
    result: HTTPAnswer | TelegentError,
    decode: Callable[[int, bytes], _T],
    *,
    attempt: int,
    rules: RetryRules,
    can_reauthenticate: bool,
    now: datetime,
    time_left: float | None = None,
    jitter: Callable[[float], float] = full_jitter,
) -> AttemptVerdict[_T]:
    """The verdict on attempt number `attempt` (from 0) of a request.

    `result` is the server's answer, or the `TransportError` of an attempt that got none.
    `decode` turns a 2xx answer into the result; a `ResponseDecodeError` from it (a garbled
    answer: a proxy's HTML, truncated JSON) is retried like a 5xx, so it may raise one only
    for a request that is safe to repeat, and an `APIStatusError` from it (an error body inside
    a 2xx) counts as an answer with that status. `can_reauthenticate`: a 401 may be answered by
    fetching a new token (the client has credentials and has not done so for this request).
    `time_left`: seconds before the call's own deadline (None: none); a retry that could not
    even start before it is not made, and the failure is raised instead.
    """
    pause = None
    if isinstance(result, TelegentError):
        failure = result
        retry_after = None
    else:
        status = result.status
        if 200 <= status < 300:
            try:
                return Return(decode(status, result.body))
            except ResponseDecodeError as exc:
                failure, retry_after = exc, None  # garbled, or about another order: asked again
            except APIStatusError as exc:
                status = exc.status_code  # an error body inside a 2xx: that status
        if not 200 <= status < 300:
            if status == 401 and can_reauthenticate:
                return Reauthenticate()
            retry_after = None
            if status in RETRY_STATUSES:
                retry_after = parse_retry_after(result.headers.get("Retry-After"), now)
            failure = status_error(status, result.body, retry_after)
            if status == 429:
                pause = rules.delay(attempt, retry_after, jitter)
                retry_after = 0.0  # the budget now holds every request, this one included
            if status not in RETRY_STATUSES:
                return Raise(failure)
    if attempt >= rules.max_retries:
        return Raise(failure, pause)
    delay = rules.delay(attempt, retry_after, jitter)
    if time_left is not None and delay >= time_left:
        return Raise(failure, pause)  # the retry could not even start in time
    return Retry(failure, delay, pause)


def status_error(status: int, body: bytes, retry_after: float | None) -> APIStatusError:
    """The typed error for a non-2xx answer, with the server's `Message` when it sent one."""
    if 300 <= status < 400:
        return APIStatusError(
            status, "redirect not followed (a bearer token never leaves the API host)", None
        )
    excerpt = body_excerpt(body)
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        parsed = None
    message = message_excerpt(parsed)
    if message is not None:
        return error_for_status(status, message, parsed, retry_after)
    message = "no error message" if not excerpt.strip() else "non-JSON error body"
    return error_for_status(status, message, excerpt, retry_after)
