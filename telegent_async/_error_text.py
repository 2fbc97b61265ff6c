"""The words of an error: what an exception's text may quote of an answer (pure, no I/O).

Only these builders turn an answer into exception text, so the limits that keep a large or
secret-bearing body out of an error live in one place: the first `BODY_EXCERPT_CHARS` of a
body or `Message`, markup dropped, a failed connection's own reason.
"""

from __future__ import annotations

import http
import re
from collections.abc import Mapping
from typing import Final

import aiohttp

__all__ = [
    "BODY_EXCERPT_CHARS",
    "HOLDS_ANSWER",
    "body_excerpt",
    "broken_answer",
    "cannot_connect",
    "is_routing_miss",
    "message_excerpt",
    "unreadable_body",
]

#: How much of an answer's body (or of its `Message`) an error keeps.
BODY_EXCERPT_CHARS = 500


def body_excerpt(body: bytes) -> str:
    """The start of an answer's body as text, for an error: never the whole of a large body."""
    return body[:BODY_EXCERPT_CHARS].decode("utf-8", "replace")


#: How much of an error body without a JSON `Message` its error's text quotes.
SHORT_EXCERPT_CHARS = 100
_TAG = re.compile(r"<[^<>]{0,200}>")
#: How ASP.NET Web API (Telegent's framework) answers a URL that no endpoint matches.
ROUTING_MISS = "No HTTP resource was found"


def unreadable_body(status: int, excerpt: str) -> str:
    """What an error answer without a JSON `Message` says: its status's reason phrase and
    the start of its text, markup dropped (`Bad Gateway (non-JSON error body: '502 Bad
    Gateway nginx')`), so that a proxy's HTML page still tells what happened."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = f"status {status}"
    text = " ".join(_TAG.sub(" ", excerpt).split())
    if not text:
        return f"{phrase} (no error message)"
    return f"{phrase} (non-JSON error body: {text[:SHORT_EXCERPT_CHARS]!r})"


def is_routing_miss(status: int, body: object) -> bool:
    """True for a 404 that is no answer about an order but a URL no endpoint matches: the
    web framework's "No HTTP resource was found that matches the request URI", or a 404
    without Telegent's JSON `{StatusCode, Message}` (a web server's page for the host root).
    `body` is the JSON error object, or the body as text when it had no JSON `Message`."""
    if status != 404:
        return False
    if isinstance(body, Mapping):
        message = body.get("Message")
        return isinstance(message, str) and message.startswith(ROUTING_MISS)
    return isinstance(body, str)


#: Where an HTTP client error's text starts quoting what it read: aiohttp's parsers append the
#: raw status line, header line or chunk of body they choked on (any secret an answer echoed)
#: after a colon, on the next lines, or in quotes (`Bad status line 'HTTP/1.1 ...'`).
_QUOTING = re.compile(r":|\n|\s+b?['\"]")
#: How aiohttp's parser errors begin their text: `400, message:` and the reason below it.
_PARSER_PREFIX = re.compile(r"\A[0-9]{3}, message:\s*")


#: aiohttp's errors that carry what was sent or answered: the request's headers (the bearer
#: token among them, in `request_info`), the answer's head, or the bytes a parser choked on.
#: One is never chained to an SDK error: it would be in every traceback of that error.
HOLDS_ANSWER: Final = (
    aiohttp.ClientResponseError,
    aiohttp.ClientPayloadError,
    aiohttp.ServerDisconnectedError,
)


def broken_answer(method: str, error: BaseException) -> str:
    """An attempt that got no usable answer, in words: the error's class and the reason its
    text gives, never what it quotes (`_QUOTING`) nor, for a disconnection, the answer's
    head that aiohttp keeps as its message."""
    text = getattr(error, "message", None)
    if not isinstance(text, str):
        disconnected = isinstance(error, aiohttp.ServerDisconnectedError)
        text = "Server disconnected mid-answer" if disconnected else str(error)
    reason = _QUOTING.split(_PARSER_PREFIX.sub("", text, count=1), maxsplit=1)[0].strip()
    return f"{method} failed: {type(error).__name__}" + (f": {reason}" if reason else "")


def cannot_connect(method: str, host: str, port: int | None, reason: OSError) -> str:
    """A failed connection in words, without aiohttp's `ssl:default` (said even over http)."""
    return f"{method} failed: cannot connect to {host}:{port}: {reason.strerror or reason}"


def message_excerpt(answer: object) -> str | None:
    """The start of an error answer's `Message`, if the parsed answer has a text one."""
    message = answer.get("Message") if isinstance(answer, Mapping) else None
    return message[:BODY_EXCERPT_CHARS] if isinstance(message, str) else None
