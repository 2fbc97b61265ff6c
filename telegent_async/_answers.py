"""What an HTTP answer says, whatever call it answers: a JSON value, or the error it stands for.

One rule for every call (orders, tokens, port-in, creates, webhooks), pure and tested without
a socket (`tests/test_answers.py`), from Telegent's documentation (REFERENCE.md, "Answers, as
the documentation describes them"):

- bodies typed `application/json`, `text/json`, `text/plain` (or `+json`, or untyped) are read
  as JSON; any other type (a proxy's `text/html`) is not;
- a 2xx whose body is an error object (`StatusCode` >= 400 with `Message`, or `successful` /
  `Successful` false) is that error, whichever call made it;
- the documented wrapper `{"Successful": true, "Data": ...}` is unwrapped;
- any other status is the typed error of its `_status.STATUS_RULES` row, with the server's
  `Message` when it sent one;
- an error's `body` keeps no credential-named field (`_secrets.scrub`): an answer may hold
  secrets its request did not carry (a webhook's stored credentials, a token).
"""

from __future__ import annotations

import contextlib
import functools
import json
import json.scanner
from collections.abc import Callable, Mapping
from typing import Any, Final

from . import _secrets, _webhook
from ._error_text import body_excerpt, message_excerpt, unreadable_body
from ._errors import APIStatusError, ResponseDecodeError
from ._status import error_for_status

__all__ = ["JSON_TYPES", "embedded_error", "is_json_type", "read_answer", "status_error"]

#: The media types whose bodies are read as JSON (Telegent sends error bodies in all three).
JSON_TYPES: Final = frozenset({"application/json", "text/json", "text/plain"})


@functools.lru_cache(maxsize=64)  # asked on every answer; servers send a handful of types
def is_json_type(content_type: str | None) -> bool:
    """True for a body to read as JSON: one of `JSON_TYPES`, a `+json` type, or no type."""
    media = _media(content_type)
    return not media or media in JSON_TYPES or media.endswith("+json")


#: The C scanner `json.loads` ends in (`json.scanner.c_make_scanner`), for `_json_body`
#: (typeshed types its argument as a scanner; it is the decoder whose settings it takes).
_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)


def _json_body(body: bytes) -> Any:
    """`json.loads(body)`, faster for the common answer: one JSON object, nothing around it.

    `json.loads` of bytes first guesses the encoding in Python (`json.detect_encoding`: UTF-8
    unless a BOM or a NUL among the first bytes says UTF-16/32); an object whose second byte
    is not NUL is UTF-8 by that rule, so it is decoded here without the guess, and scanned by
    the C scanner `json.loads` ends in, without its two Python layers and two whitespace
    matches (1.6 us less per lookup, timeit 2026-12-06). Anything else (whitespace around
    the value, trailing data, another encoding, a bad first character) goes to `json.loads`
    itself, so the value or the error is always its own.
    """
    if body[:1] == b"{" and body[1:2] != b"\x00":
        text = body.decode("utf-8", "surrogatepass")
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end == len(text):
            return value
    return json.loads(body)


def _media(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def read_answer(
    status: int,
    content_type: str | None,
    body: bytes,
    *,
    retry_after: float | None = None,
    refusal_status: int = 400,
    private: bool = False,
) -> object:
    """The JSON value a 2xx answer carries (unwrapped), or the error the answer stands for.

    Returns an `APIStatusError` for an error status or an error body inside a 2xx, a
    `ResponseDecodeError` for a 2xx that is not JSON, None for a 204, else the parsed JSON
    value (never an exception instance). `refusal_status`: the status a bare
    `successful: false` stands for (a token answer's is 401). `private`: the body may hold a
    secret (a token answer, a webhook's stored credentials or URL), so no error quotes it
    but its `Message` (or an error page's first words), with any URL in it masked
    (`_webhook.masked_urls`).
    `retry_after`: seconds an error status asked to wait.
    """
    if not 200 <= status < 300:
        return status_error(status, body, retry_after, content_type, private=private)
    if status == 204:  # No Content (a delete may answer so): nothing to read, nothing wrong
        return None
    try:
        if not is_json_type(content_type):
            raise ValueError(f"a {_media(content_type)} body")
        value = _json_body(body)
    except (ValueError, RecursionError) as exc:
        reason = "an empty body" if not body.strip() else str(exc).partition(":")[0]
        return ResponseDecodeError(
            f"expected a JSON answer, got {reason}",
            status_code=status,
            body="" if private else body_excerpt(body),
        )
    if type(value) is not dict:
        return value
    error = embedded_error(value, refusal_status, private=private)
    if error is not None:
        return error
    if "Data" in value and type(value.get("Successful")) is bool:
        data = value["Data"]  # Successful is true: a false one is an embedded error
        inner = (
            embedded_error(data, refusal_status, private=private) if type(data) is dict else None
        )
        return data if inner is None else inner
    return value


def embedded_error(
    data: Mapping[str, Any], refusal_status: int = 400, *, private: bool = False
) -> APIStatusError | None:
    """The error an object inside a 2xx stands for, or None when it is not an error object.

    `{"StatusCode": n, "Message": ...}` (or `message`) with n in 400..599 is that status's
    error; an object whose `successful` or `Successful` is false is the error of its
    `StatusCode` if it has one, else of `refusal_status`. `private`: as in `read_answer`.
    """
    code = data.get("StatusCode")
    status = code if type(code) is int and 400 <= code <= 599 else None
    if status is not None and ("Message" in data or "message" in data):
        pass
    elif data.get("Successful") is False or data.get("successful") is False:
        status = refusal_status if status is None else status
    else:
        return None
    message = message_excerpt(data) or message_excerpt({"Message": data.get("message")})
    if message is None:
        message = "error body inside a 2xx answer"
    shown = _webhook.masked_urls(message) if private else message
    return error_for_status(status, shown, _kept(data, private))


def _kept(body: object, private: bool) -> object:
    """An error object as its error keeps it: credential-named fields masked, and in a
    `private` answer every URL (`_webhook.scrub`); None for one too deeply nested to walk."""
    try:
        return _webhook.scrub(body) if private else _secrets.scrub(body)
    except RecursionError:
        return None


def status_error(
    status: int,
    body: bytes,
    retry_after: float | None,
    content_type: str | None = None,
    *,
    private: bool = False,
) -> APIStatusError:
    """The typed error for a non-2xx answer, with the server's `Message` when it sent one
    (`private`: as in `read_answer`)."""
    if 300 <= status < 400:
        return APIStatusError(
            status, "redirect not followed (a bearer token never leaves the API host)", None
        )
    excerpt = body_excerpt(body)
    parsed = None
    if is_json_type(content_type) and body:
        with contextlib.suppress(ValueError, RecursionError):
            parsed = json.loads(body)
    message = message_excerpt(parsed)
    if message is not None:
        shown = _webhook.masked_urls(message) if private else message
        return error_for_status(status, shown, _kept(parsed, private), retry_after)
    shown = unreadable_body(status, _webhook.masked_urls(excerpt) if private else excerpt)
    return error_for_status(status, shown, "" if private else excerpt, retry_after)
