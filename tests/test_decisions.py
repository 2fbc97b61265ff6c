"""The transport's retry decision, without a socket: one attempt's result in, a verdict out."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from yarl import URL

import telegent_async as tg
from telegent_async._request import Request
from telegent_async._retry import (
    AttemptVerdict,
    HTTPAnswer,
    Raise,
    Reauthenticate,
    Retry,
    RetryRules,
    Return,
    decide_attempt,
)
from telegent_async._timing import PollPolicy

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
RULES = RetryRules(max_retries=2, policy=PollPolicy.RETRY, max_retry_after=60.0)


def no_jitter(delay: float) -> float:
    return delay


LOOKUP = Request("GET", URL("https://api.example/v1.0/numbers/order"), "scope")


def decode(data: object) -> str:
    assert isinstance(data, dict)
    return str(data["OrderStatus"])


def verdict(
    result: HTTPAnswer | tg.TelegentError, attempt: int = 0, *, can_reauthenticate: bool = False
) -> AttemptVerdict[str]:
    return decide_attempt(
        result,
        LOOKUP,
        decode,
        attempt=attempt,
        rules=RULES,
        can_reauthenticate=can_reauthenticate,
        now=NOW,
        jitter=no_jitter,
    )


def answer(status: int, body: object = None, **headers: str) -> HTTPAnswer:
    raw = body if isinstance(body, bytes) else json.dumps(body or {"Message": "m"}).encode()
    return HTTPAnswer(status, {k.replace("_", "-"): v for k, v in headers.items()}, raw)


def test_a_2xx_is_decoded_and_returned() -> None:
    assert verdict(answer(200, {"OrderStatus": "Complete"})) == Return("Complete")


def test_a_garbled_2xx_is_retried_with_backoff() -> None:
    got = verdict(answer(200, b"<html>"), attempt=1)
    assert isinstance(got, Retry) and isinstance(got.failure, tg.ResponseDecodeError)
    assert (got.delay, got.pause) == (2.0, None)


def test_an_error_body_inside_a_2xx_counts_as_that_status() -> None:
    got = verdict(answer(200, {"StatusCode": 404, "Message": "gone"}))
    assert isinstance(got, Raise) and isinstance(got.error, tg.NotFoundError)


@pytest.mark.parametrize("status", [400, 403, 404, 405, 409, 501])
def test_statuses_not_retried_raise_at_once(status: int) -> None:
    got = verdict(answer(status, {"Message": "no"}))
    assert isinstance(got, Raise) and got.pause is None
    assert isinstance(got.error, tg.APIStatusError) and got.error.status_code == status
    assert got.error.message == "no"


def test_a_401_re_authenticates_once_and_then_raises() -> None:
    assert verdict(answer(401), can_reauthenticate=True) == Reauthenticate()
    got = verdict(answer(401), can_reauthenticate=False)
    assert isinstance(got, Raise) and isinstance(got.error, tg.AuthenticationError)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_transient_statuses_retry_on_the_policy_until_the_last_attempt(status: int) -> None:
    assert [getattr(verdict(answer(status), n), "delay", None) for n in range(3)] == [
        1.0,
        2.0,
        None,
    ]
    assert isinstance(verdict(answer(status), 2), Raise)


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    seven = verdict(answer(503, Retry_After="7"))
    assert isinstance(seven, Retry) and seven.delay == 7.0
    assert isinstance(seven.failure, tg.ServiceUnavailableError)
    got = verdict(answer(503, Retry_After="3600"))
    assert isinstance(got, Retry) and got.delay == 60.0
    dated = verdict(answer(503, Retry_After="Fri, 02 Jan 2026 03:04:15 GMT"))
    assert isinstance(dated, Retry) and dated.delay == 10.0


def test_a_429_pauses_the_client_and_retries_behind_the_budget() -> None:
    got = verdict(answer(429, Retry_After="5"))
    assert isinstance(got, Retry) and (got.delay, got.pause) == (0.0, 5.0)
    assert isinstance(got.failure, tg.RateLimitError) and got.failure.retry_after == 5.0
    last = verdict(answer(429), attempt=2)  # no retry left: the client still pauses
    assert isinstance(last, Raise) and last.pause == 4.0


def test_a_transport_failure_is_retried_then_raised() -> None:
    reset = tg.TransportError("reset")
    assert verdict(reset) == Retry(reset, 1.0)
    assert verdict(reset, attempt=2) == Raise(reset)


def test_error_bodies_are_cut_to_an_excerpt() -> None:
    got = verdict(answer(400, b"x" * 5000))
    assert isinstance(got, Raise) and isinstance(got.error, tg.APIStatusError)
    assert got.error.message == f"Bad Request (non-JSON error body: {'x' * 100!r})"
    assert got.error.body == "x" * 500
    redirect = verdict(answer(302, b""))
    assert isinstance(redirect, Raise) and "redirect not followed" in str(redirect.error)
