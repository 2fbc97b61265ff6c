"""The one status table: what the transport retries, what ends a wait, and the class raised."""

from __future__ import annotations

import pytest

import telegent_async as tg
from telegent_async._schedule import is_permanent
from telegent_async._status import (
    RETRY_STATUSES,
    STATUS_RULES,
    error_for_status,
    rule_for,
    status_words,
)


def test_the_transport_retries_what_telegent_advises() -> None:
    assert {408, 429, 500, 502, 503, 504} == RETRY_STATUSES


#: Telegent's documented statuses as its reference describes them: the class raised, whether
#: the transport sends again, whether a waiter stops, and the words a person reads.
DOCUMENTED = [
    (400, tg.BadRequestError, False, True, "bad request"),
    (401, tg.AuthenticationError, False, True, "not authenticated"),
    (403, tg.PermissionDeniedError, False, True, "permission denied"),
    (404, tg.NotFoundError, False, True, "not found"),
    (405, tg.MethodNotAllowedError, False, True, "method not allowed"),
    (408, tg.RequestTimeoutError, True, False, "request timeout"),
    (422, tg.UnprocessableEntityError, False, True, "refused by a business rule"),
    (429, tg.RateLimitError, True, False, "rate limited"),
    (500, tg.InternalServerError, True, False, "server error"),
    (502, tg.ServerError, True, False, "bad gateway"),
    (503, tg.ServiceUnavailableError, True, False, "unavailable"),
    (504, tg.GatewayTimeoutError, True, False, "gateway timeout"),
]


def test_the_table_holds_every_documented_status_in_order() -> None:
    assert [rule.status for rule in STATUS_RULES] == [row[0] for row in DOCUMENTED]


@pytest.mark.parametrize(("status", "error", "retried", "ends_wait", "words"), DOCUMENTED)
def test_each_rule_agrees_with_the_error_and_the_waiters(
    status: int, error: type[tg.APIStatusError], retried: bool, ends_wait: bool, words: str
) -> None:
    raised = error_for_status(status, "words")
    assert type(raised) is error
    assert is_permanent(raised) is ends_wait
    assert (rule_for(status).retried, rule_for(status).ends_wait) == (retried, ends_wait)
    assert status_words(status) == words


@pytest.mark.parametrize(
    ("status", "error", "ends_wait"),
    [(302, tg.APIStatusError, True), (409, tg.APIStatusError, True), (501, tg.ServerError, False)],
)
def test_statuses_outside_the_table(
    status: int, error: type[tg.APIStatusError], ends_wait: bool
) -> None:
    rule = rule_for(status)
    assert (rule.error, rule.retried, rule.ends_wait) == (error, False, ends_wait)
    assert status_words(status) == f"HTTP {status}"


def test_errors_that_are_not_statuses_never_end_a_wait() -> None:
    assert not is_permanent(tg.TransportError("reset"))
    assert not is_permanent(tg.ResponseDecodeError("html", status_code=200, body="<html>"))
