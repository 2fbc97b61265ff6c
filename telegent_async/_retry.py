"""What one HTTP attempt's result means for its request: return, re-authenticate, retry or raise.

The transport (`_transport.Transport.send`) only does I/O: it sends an attempt, hands
what came back to `decide_attempt`, and carries out the verdict. Every rule lives here, pure,
so it is tested without a socket (as gidgethub's `decipher_response`): `now` and the jitter
are passed in, never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from ._answers import read_answer, status_error
from ._error_text import body_excerpt
from ._errors import (
    APIStatusError,
    ConnectionNotMadeError,
    ResponseDecodeError,
    TelegentError,
)
from ._request import Request
from ._secrets import scrub
from ._status import RETRY_STATUSES, UNACTED_STATUSES
from ._timing import PollPolicy, full_jitter, parse_retry_after

__all__ = [
    "AttemptVerdict",
    "HTTPAnswer",
    "Reauthenticate",
    "Retry",
    "RetryRules",
    "Return",
    "decide_attempt",
    "reads_clock",
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


def reads_clock(result: HTTPAnswer | TelegentError) -> bool:
    """Whether `decide_attempt` needs `now` for `result`: only to measure a Retry-After (an
    HTTP-date) of a status it retries, so the send path reads the clock only then."""
    return (
        type(result) is HTTPAnswer
        and result.status in RETRY_STATUSES
        and "Retry-After" in result.headers
    )


def decide_attempt(
    result: HTTPAnswer | TelegentError,
    request: Request,
    decode: Callable[[Any], _T],
    *,
    attempt: int,
    rules: RetryRules,
    can_reauthenticate: bool,
    now: datetime | None,
    time_left: float | None = None,
    jitter: Callable[[float], float] = full_jitter,
) -> AttemptVerdict[_T]:
    """The verdict on attempt number `attempt` (from 0) of `request`.

    `result` is the server's answer, or the `TransportError` of an attempt that got none.
    What an answer says is `_answers.read_answer`'s (the same for every call); `decode` turns
    the JSON value of a 2xx into the call's result, raising `ValueError` (or `TypeError`,
    `KeyError`) when it is not what the call expects: that answer is garbled (a
    `ResponseDecodeError`) and is asked again like a 5xx. `can_reauthenticate`: a 401 may be
    answered by fetching a new token (the client has credentials and has not done so for this
    request). `now`: the time, or None when `reads_clock(result)` is false (it is not read).
    `time_left`: seconds before the call's own deadline (None: none); a retry that
    could not even start before it is not made, and the failure is raised instead.

    A request that creates an order (`request.creates`) is sent again only when it cannot
    have been acted on: the connection was never made, 429, 503 (or a 401 before a fresh
    token). Any other failure a lookup would retry raises `SubmitOutcomeUnknownError`.
    """
    pause = None
    retry_after = None
    if isinstance(result, TelegentError):
        failure = result
        acted_on = not isinstance(result, ConnectionNotMadeError)
    else:
        status = result.status
        if status in RETRY_STATUSES:
            header = result.headers.get("Retry-After")
            if header is not None:
                assert now is not None, "reads_clock(result) said the clock was needed"
                retry_after = parse_retry_after(header, now)
        token_request = request.scope is None
        private = token_request or request.private
        read = read_answer(
            status,
            result.headers.get("Content-Type"),
            result.body,
            retry_after=retry_after,
            refusal_status=401 if token_request else 400,
            private=private,
        )
        if not isinstance(read, TelegentError):
            try:
                return Return(decode(read))
            except (ValueError, TypeError, KeyError, RecursionError) as exc:
                excerpt = "" if private else _quoted(result.body, read, bool(request.secrets))
                read = ResponseDecodeError(
                    f"unexpected answer: {exc}", status_code=status, body=excerpt
                )
        failure = read
        acted_on = True
        if isinstance(read, APIStatusError):
            status = read.status_code
            if status == 401 and can_reauthenticate:
                return Reauthenticate()
            acted_on = status not in UNACTED_STATUSES
            if status == 429:
                pause = rules.delay(attempt, retry_after, jitter)
                retry_after = 0.0  # the budget now holds every request, this one included
            if status not in RETRY_STATUSES:
                return Raise(read)
    if request.creates is not None and acted_on:
        return Raise(request.creates.outcome_unknown(failure), pause)
    if attempt >= rules.max_retries:
        return Raise(failure, pause)
    delay = rules.delay(attempt, retry_after, jitter)
    if time_left is not None and delay >= time_left:
        return Raise(failure, pause)  # the retry could not even start in time
    return Retry(failure, delay, pause)


def _quoted(body: bytes, value: object, carries_secrets: bool) -> str:
    """What the error of a 2xx answer its call could not use quotes of it: the start of its
    body; for a request that carries secrets (`carries_secrets`), of its JSON `value` with
    every credential-named field masked (`_secrets.scrub`: it may echo one on file)."""
    if not carries_secrets:
        return body_excerpt(body)
    try:
        return body_excerpt(json.dumps(scrub(value)).encode())
    except (ValueError, RecursionError):
        return ""
