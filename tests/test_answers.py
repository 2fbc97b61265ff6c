"""What an answer says, whatever call it answers: `_answers.read_answer` and, for a call that
creates an order, `_retry.decide_attempt`'s never-doubled rule. No socket.

The expected results are stated here from REFERENCE.md ("Answers, as the documentation
describes them"; DESIGN.md "Creating is never doubled"), not read from the implementation's
table: `expected()` below is this file's own statement of the rule.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

import telegent_async as tg
from telegent_async._answers import read_answer
from telegent_async._errors import ConnectionNotMadeError
from telegent_async._request import Creates, Request
from telegent_async._retry import HTTPAnswer, Raise, Retry, RetryRules, Return, decide_attempt
from telegent_async._timing import PollPolicy

ORDER = {"OrderId": "JNUOID-1", "OrderStatus": "Complete"}

#: Which class each status is, as README's error table lists them.
CLASS_OF = {
    301: tg.APIStatusError,
    302: tg.APIStatusError,
    400: tg.BadRequestError,
    401: tg.AuthenticationError,
    403: tg.PermissionDeniedError,
    404: tg.NotFoundError,
    409: tg.APIStatusError,
    422: tg.UnprocessableEntityError,
    429: tg.RateLimitError,
    500: tg.InternalServerError,
    502: tg.ServerError,
    503: tg.ServiceUnavailableError,
    504: tg.GatewayTimeoutError,
}
STATUSES = [200, 201, 204, *CLASS_OF]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/json",
    "text/plain; charset=utf-8",
    "application/problem+json",
    None,
    "text/html",
    "application/xml",
]
BODIES: dict[str, bytes] = {
    "order": json.dumps(ORDER).encode(),
    "error object": b'{"StatusCode": 404, "Message": "Order not found"}',
    "error object 503": b'{"StatusCode": 503, "Message": "down"}',
    "status code without message": b'{"StatusCode": 404, "OrderId": "JNUOID-1"}',
    "token refused": b'{"token": null, "successful": false, "message": "Invalid key"}',
    "envelope": json.dumps({"Successful": True, "Data": ORDER}).encode(),
    "envelope of a list": b'{"Successful": true, "Data": [{"WebhookId": "WID-1"}]}',
    "envelope refused": b'{"Successful": false, "Data": null, "Message": "not allowed"}',
    "envelope refused 422": b'{"Successful": false, "StatusCode": 422, "Message": "rule"}',
    "envelope of an error": b'{"Successful": true, "Data": {"StatusCode": 400, "Message": "x"}}',
    "lower-case message": b'{"StatusCode": 400, "message": "bad field"}',
    "a list": b"[1, 2]",
    "empty": b"",
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "truncated": b'{"OrderId": "JNUOID-1", "OrderSta',
}


def json_read(content_type: str | None) -> bool:
    """JSON, text/json and text/plain bodies (and untyped ones) are read as JSON."""
    if content_type is None:
        return True
    media = content_type.split(";")[0].strip()
    return media in ("application/json", "text/json", "text/plain") or media.endswith("+json")


def expected(status: int, content_type: str | None, body: bytes) -> tuple[str, object]:
    """("value", the JSON value) | ("error", status it stands for) | ("garbled", None)."""
    try:
        parsed = json.loads(body) if json_read(content_type) else None
        readable = json_read(content_type)
    except ValueError:
        parsed, readable = None, False
    if not 200 <= status < 300:
        return "error", status
    if status == 204:  # No Content: nothing to read, whatever came
        return "value", None
    if not readable:
        return "garbled", None
    if isinstance(parsed, dict):
        status_of = error_status(parsed)
        if status_of is not None:
            return "error", status_of
        if "Data" in parsed and isinstance(parsed.get("Successful"), bool):
            data = parsed["Data"]  # unwrapped, and an error object inside it is that error
            inner = error_status(data) if isinstance(data, dict) else None
            return ("value", data) if inner is None else ("error", inner)
    return "value", parsed


def error_status(body: dict[str, object]) -> int | None:
    """The status an object inside a 2xx stands for, or None when it is no error object:
    StatusCode 400-599 with a Message (either case), or Successful/successful false."""
    code = body.get("StatusCode")
    valid = code if isinstance(code, int) and not isinstance(code, bool) else None
    valid = valid if valid is not None and 400 <= valid <= 599 else None
    if valid is not None and ("Message" in body or "message" in body):
        return valid
    if body.get("Successful") is False or body.get("successful") is False:
        return 400 if valid is None else valid
    return None


def expected_class(status: int, content_type: str | None, body: bytes) -> type[Exception]:
    """A 404 without Telegent's JSON `Message` is no answer about an order but a URL no
    endpoint matches (README: `EndpointNotFoundError`); any other status is its row's."""
    if status == 404:
        try:
            parsed = json.loads(body) if json_read(content_type) else None
        except ValueError:
            parsed = None
        if not (isinstance(parsed, dict) and isinstance(parsed.get("Message"), str)):
            return tg.EndpointNotFoundError
    return CLASS_OF.get(status, tg.APIStatusError)


def observed(result: object) -> tuple[str, object]:
    if isinstance(result, tg.ResponseDecodeError):
        return "garbled", None
    if isinstance(result, tg.APIStatusError):
        return "error", result.status_code
    assert not isinstance(result, BaseException)
    return "value", result


def test_every_status_content_type_and_body_shape() -> None:
    # 1,560 rows in one test (a parametrized test each would cost seconds of collection).
    wrong = []
    for status, content_type, shape in itertools.product(STATUSES, CONTENT_TYPES, BODIES):
        body = BODIES[shape]
        result = read_answer(status, content_type, body)
        want = expected(status, content_type, body)
        if observed(result) != want or (
            isinstance(result, tg.APIStatusError)
            and type(result)
            is not (
                expected_class(status, content_type, body)
                if not 200 <= status < 300
                else CLASS_OF.get(result.status_code, tg.APIStatusError)
            )
        ):
            wrong.append((status, content_type, shape, result, want))
    assert wrong == []


def test_a_few_rows_spelled_out() -> None:
    # The table above, in words, for the cases the issue names.
    update_200 = b'{"StatusCode": 400, "Message": "bad field"}'
    refused = read_answer(200, "application/json", update_200)
    assert isinstance(refused, tg.BadRequestError) and refused.message == "bad field"
    assert read_answer(200, "text/json", BODIES["envelope"]) == ORDER
    unprocessable = read_answer(422, "text/plain", b'{"StatusCode": 422, "Message": "rule"}')
    assert isinstance(unprocessable, tg.UnprocessableEntityError)
    assert isinstance(unprocessable, tg.BadRequestError) and unprocessable.message == "rule"
    html = read_answer(200, "text/html", b'{"OrderId": "JNUOID-1"}')  # typed HTML: not read
    assert isinstance(html, tg.ResponseDecodeError)
    token = read_answer(200, None, BODIES["token refused"], refusal_status=401, private=True)
    assert isinstance(token, tg.AuthenticationError) and token.message == "Invalid key"
    wrapped = read_answer(200, None, BODIES["envelope of an error"])
    assert isinstance(wrapped, tg.BadRequestError) and wrapped.message == "x"
    lower = read_answer(200, "application/json", BODIES["lower-case message"])
    assert isinstance(lower, tg.BadRequestError) and lower.message == "bad field"
    hidden = read_answer(200, None, b'{"token": "abc", "tokenExpiry', private=True)
    assert isinstance(hidden, tg.ResponseDecodeError) and "abc" not in str(hidden)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["StatusCode", "Message", "message", "Successful", "successful", "Data", "OrderId"]
            ),
            inner | st.integers(100, 700),
            max_size=5,
        )
    ),
    max_leaves=10,
)


@given(
    status=st.integers(100, 599),
    content_type=st.sampled_from(CONTENT_TYPES),
    value=json_values,
    garble=st.booleans(),
)
def test_any_answer_is_a_value_or_its_typed_error(
    status: int, content_type: str | None, value: object, garble: bool
) -> None:
    body = json.dumps(value).encode()
    if garble:
        body = body[: len(body) // 2] + b"\x00"
    result = read_answer(status, content_type, body)
    assert observed(result) == expected(status, content_type, body)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_a_json_object_is_read_in_every_encoding_json_loads_detects(encoding: str) -> None:
    # RFC 8259 8.1 and `json.loads`: UTF-8, -16 or -32, with or without a BOM; the UTF-8
    # shortcut must not cost the others.
    body = json.dumps({"OrderId": "JNUOID-é", "N": 1}, ensure_ascii=False).encode(encoding)
    assert read_answer(200, "application/json", body) == {"OrderId": "JNUOID-é", "N": 1}


def test_invalid_utf8_in_an_object_is_a_decode_error() -> None:
    result = read_answer(200, "application/json", b'{"OrderId": "\xff"}')
    assert isinstance(result, tg.ResponseDecodeError)
    assert "utf-8" in str(result)


# -- a call that creates an order: never doubled --------------------------------------------

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
RULES = RetryRules(max_retries=3, policy=PollPolicy.RETRY, max_retry_after=60.0)
URL_ = URL("https://api.example/v1.0/numbers/portin")
LOOKUP = Request("POST", URL_, "scope")
CREATE = Request("POST", URL_, "scope", creates=Creates("submit_port_in", "Check eligibility."))


def _answer(status: int, body: bytes = b'{"Message": "m"}') -> HTTPAnswer:
    return HTTPAnswer(status, {"Content-Type": "application/json"}, body)


#: Each failure, and what a create does after it: "retry" (it cannot have been acted on),
#: "unknown" (SubmitOutcomeUnknownError) or "raise" (refused: raised as is). A lookup
#: retries every "retry" and "unknown" one.
CREATE_RULE = [
    ("connection never made", ConnectionNotMadeError("refused"), "retry"),
    ("reset once sent", tg.TransportError("ServerDisconnectedError"), "unknown"),
    ("attempt timeout", tg.TransportTimeoutError("timed out"), "unknown"),
    ("429", _answer(429), "retry"),
    ("503", _answer(503), "retry"),
    ("503 inside a 200", _answer(200, b'{"StatusCode": 503, "Message": "m"}'), "retry"),
    ("408", _answer(408), "unknown"),
    ("500", _answer(500), "unknown"),
    ("502", _answer(502), "unknown"),
    ("504", _answer(504), "unknown"),
    ("garbled 2xx", _answer(200, b"<html>"), "unknown"),
    ("2xx without OrderId", _answer(200, b"{}"), "unknown"),
    ("400", _answer(400), "raise"),
    ("422", _answer(422), "raise"),
    ("404", _answer(404), "raise"),
]


def _decode(value: object) -> str:
    if not isinstance(value, dict) or "OrderId" not in value:
        raise ValueError("no OrderId")
    return str(value["OrderId"])


@pytest.mark.parametrize(("what", "result", "rule"), CREATE_RULE, ids=[r[0] for r in CREATE_RULE])
def test_a_create_is_sent_again_only_when_it_cannot_have_been_acted_on(
    what: str, result: HTTPAnswer | tg.TelegentError, rule: str
) -> None:
    def verdict(request: Request) -> object:
        return decide_attempt(
            result, request, _decode, attempt=0, rules=RULES, can_reauthenticate=False, now=NOW
        )

    created = verdict(CREATE)
    if rule == "retry":
        assert isinstance(created, Retry)
    elif rule == "unknown":
        assert isinstance(created, Raise)
        error = created.error
        assert isinstance(error, tg.SubmitOutcomeUnknownError)
        assert error.call == "submit_port_in" and error.__cause__ is error.cause
        assert "Check eligibility." in str(error)
    else:
        assert isinstance(created, Raise)
        assert not isinstance(created.error, tg.SubmitOutcomeUnknownError)
    looked_up = verdict(LOOKUP)
    assert isinstance(looked_up, Raise if rule == "raise" else Retry)


def test_a_created_order_is_returned() -> None:
    got = decide_attempt(
        _answer(200, b'{"OrderId": "JNOID-9", "Status": "Pending"}'),
        CREATE,
        _decode,
        attempt=0,
        rules=RULES,
        can_reauthenticate=False,
        now=NOW,
    )
    assert got == Return("JNOID-9")


@given(
    status=st.integers(100, 599),
    content_type=st.sampled_from(CONTENT_TYPES),
    value=json_values,
    attempt=st.integers(0, 5),
)
def test_a_create_is_retried_only_after_429_or_503(
    status: int, content_type: str | None, value: object, attempt: int
) -> None:
    # Whatever the answer: a create is sent again only after a 429 or a 503 (in the status
    # line or in an error body inside a 2xx), and never after an answer a lookup would raise.
    answer = HTTPAnswer(status, {"Content-Type": content_type or ""}, json.dumps(value).encode())
    got = decide_attempt(
        answer, CREATE, _decode, attempt=attempt, rules=RULES, can_reauthenticate=False, now=NOW
    )
    kind, code = expected(status, content_type, answer.body)
    if isinstance(got, Retry):
        assert kind == "error" and code in (429, 503) and attempt < RULES.max_retries
    if kind == "error" and code in (429, 503) and attempt < RULES.max_retries:
        assert isinstance(got, Retry)
