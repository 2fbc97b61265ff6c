"""The one status table: what the transport retries, what ends a wait, and the class raised."""

from __future__ import annotations

import pytest

import telegent_async as tg
from telegent_async._schedule import is_permanent
from telegent_async._status import (
    RETRY_STATUSES,
    STATUS_RULES,
    StatusRule,
    error_for_status,
    rule_for,
    status_words,
)


def test_the_transport_retries_what_telegent_advises() -> None:
    assert {408, 429, 500, 502, 503, 504} == RETRY_STATUSES


@pytest.mark.parametrize("rule", STATUS_RULES, ids=lambda rule: str(rule.status))
def test_each_rule_agrees_with_the_error_and_the_waiters(rule: StatusRule) -> None:
    error = error_for_status(rule.status, "words")
    assert type(error) is rule.error
    assert is_permanent(error) is rule.ends_wait
    assert not (rule.retried and rule.ends_wait)  # a retried status never ends a wait
    assert status_words(rule.status) == rule.words


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
