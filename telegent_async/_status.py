"""What each HTTP status of the API means to the SDK: one table, every rule derived from it (pure).

The transport's retry set, the waiters' permanent/transient rule, the exception class of each
status and the words a person reads (the CLI's report) all come from `STATUS_RULES`, so a
status cannot be retried by one part of the package and reported as final by another.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._error_text import is_routing_miss
from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    GatewayTimeoutError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    TelegentError,
    UnprocessableEntityError,
)

__all__ = [
    "RETRY_STATUSES",
    "STATUS_RULES",
    "UNACTED_STATUSES",
    "StatusRule",
    "error_for_status",
    "is_permanent",
    "rule_for",
    "status_words",
]


@attrs.frozen
class StatusRule:
    """How the SDK treats one HTTP status.

    Args:
        status: The HTTP status code.
        error: The exception class raised for it.
        retried: The transport retries it, with backoff (a 429 also pauses the whole client).
        ends_wait: A waiter stops at once with this error: polling again cannot help. A status
            that does not end a wait is transient: the waiter polls again on its schedule.
        words: A few words for people (a report's column, a log line).
        unacted: The answer says the request was not acted on (refused before any work), so
            even a call that creates an order is sent again after it.

    What a web backend answers its own caller when the error ends its request is the error
    class's own `http_status` (`_errors`).
    """

    status: int
    error: type[APIStatusError]
    retried: bool
    ends_wait: bool
    words: str
    unacted: bool = False


def _rule(
    status: int,
    error: type[APIStatusError],
    words: str,
    *,
    retried: bool = False,
    unacted: bool = False,
) -> StatusRule:
    # Telegent's guidance: what the transport retries is transient for a waiter too, and an
    # unretried 4xx is final; an unretried 5xx (501, 505 ...) still leaves a waiter polling.
    return StatusRule(status, error, retried, not retried and status < 500, words, unacted)


#: Every status Telegent documents (plus a gateway's 502), in status order.
STATUS_RULES: tuple[StatusRule, ...] = (
    _rule(400, BadRequestError, "bad request"),
    _rule(401, AuthenticationError, "not authenticated"),
    _rule(403, PermissionDeniedError, "permission denied"),
    _rule(404, NotFoundError, "not found"),  # the caller can act on it as is
    _rule(405, MethodNotAllowedError, "method not allowed"),
    _rule(408, RequestTimeoutError, "request timeout", retried=True),
    _rule(422, UnprocessableEntityError, "refused by a business rule"),
    _rule(429, RateLimitError, "rate limited", retried=True, unacted=True),
    _rule(500, InternalServerError, "server error", retried=True),
    _rule(502, ServerError, "bad gateway", retried=True),  # and the 5xx without a class
    _rule(503, ServiceUnavailableError, "unavailable", retried=True, unacted=True),
    _rule(504, GatewayTimeoutError, "gateway timeout", retried=True),
)
_BY_STATUS = {rule.status: rule for rule in STATUS_RULES}

#: The statuses the transport retries (plus connection errors and attempt timeouts).
RETRY_STATUSES = frozenset(rule.status for rule in STATUS_RULES if rule.retried)
#: The retried statuses after which a call that creates an order is sent again too.
UNACTED_STATUSES = frozenset(rule.status for rule in STATUS_RULES if rule.retried and rule.unacted)


def rule_for(status: int) -> StatusRule:
    """The rule of any status: a documented one's row, else a 5xx is a transient `ServerError`
    and anything else (a 3xx not followed, 409, 418 ...) a final `APIStatusError`."""
    rule = _BY_STATUS.get(status)
    if rule is not None:
        return rule
    if status >= 500:
        return _rule(status, ServerError, f"HTTP {status}")
    return _rule(status, APIStatusError, f"HTTP {status}")


def status_words(status: int) -> str:
    """A few words for people about `status` (`429` -> "rate limited")."""
    return rule_for(status).words


def is_permanent(error: TelegentError) -> bool:
    """True when polling again cannot help: 400, 401, 403, 404, 405 and other non-5xx answers.

    Transport failures, 5xx, 408, 429 and undecodable bodies are transient: the transport has
    already retried them, and a waiter keeps polling on its own schedule until its deadline.
    """
    return isinstance(error, APIStatusError) and rule_for(error.status_code).ends_wait


def error_for_status(
    status_code: int, message: str, body: Any = None, retry_after: float | None = None
) -> APIStatusError:
    """The typed error for an HTTP error status (pure); a 404 that is a routing miss
    (`_error_text.is_routing_miss`) is an `EndpointNotFoundError`."""
    error = rule_for(status_code).error
    if is_routing_miss(status_code, body):
        return EndpointNotFoundError(status_code, message, body)
    if error is RateLimitError:
        return RateLimitError(status_code, message, body, retry_after)
    return error(status_code, message, body)
