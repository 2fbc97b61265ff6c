"""Telegent's `Order_Update` webhook: a delivery wakes the watched orders it names.

    from telegent_async import webhooks

    app.mount("/hooks/telegent", webhooks.asgi_app(watcher, bearer_token=TOKEN))  # FastAPI
    handler = webhooks.aiohttp_handler(watcher, basic_auth=("telegent", PASSWORD))  # aiohttp
    app.router.add_route("*", "/hooks/telegent", handler)

Telegent authenticates a delivery with a static Bearer token (`AuthenticationType` Token) or
HTTP Basic (Basic), as the subscription says (`TelegentClient.create_webhook(...,
auth=WebhookAuth.bearer(TOKEN))`); or give a `secret` and configure
`https://<host>/hooks/telegent/<secret>` (a secret last path segment). Exactly one of the three.
It calls with POST or PUT and a JSON or XML body. The payload is unpublished, so a delivery is
a hint, never the truth: it only moves the named orders' next poll to now
(`OrderWatcher.wake`, durable), and the poll, within the client's budget, says what the order's
status is. Answers:

- 401: the `Authorization` header is missing or wrong (compared in constant time);
- 404: the last path segment is not the secret (path-secret mode, constant time);
- 405: not a POST or PUT; 413: a body over 64 KiB (refused without reading more of it);
- 400: a body that is not JSON or XML (XML with a DTD or entities is refused unexpanded);
- 202: a body that names no order (nothing is done);
- 200: `{"woken": [...], "unknown": [...]}`, answered at once, before any poll: the named
  orders that are watched (woken) and those that are not (never reported woken);
- 503: the watcher's store could not record a wake-up within `WAKE_TIMEOUT` (Telegent may
  deliver again).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import attrs
from aiohttp import web

from ._delivery import data_format_of, order_ids
from ._webhook import MIN_SECRET_CHARS, WebhookAuth

__all__ = ["MAX_BODY_BYTES", "Wakeable", "aiohttp_handler", "asgi_app", "order_ids"]

logger = logging.getLogger("telegent_async")

#: A delivery names an order or a few: anything larger is refused unread.
MAX_BODY_BYTES = 64 * 1024
#: The longest a delivery waits for its wake-ups to be recorded before it is answered 503 (a
#: running watcher waits out a store outage: Telegent must not be left hanging meanwhile).
WAKE_TIMEOUT = 5.0
METHODS = ("POST", "PUT")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Answer = tuple[int, dict[str, Any]]


class Wakeable(Protocol):
    """What a webhook needs of an `OrderWatcher`: `wake` answers whether it watches the order."""

    async def wake(self, order_id: str) -> bool: ...


def _path_secret(secret: object) -> bytes:
    if not isinstance(secret, str):
        raise TypeError(f"secret must be a str, not {type(secret).__name__}")
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(
            f"secret must be at least {MIN_SECRET_CHARS} characters (use secrets.token_urlsafe(32))"
        )
    if "/" in secret or not secret.isprintable() or secret != secret.strip():
        raise ValueError("secret must be one path segment: no '/', spaces or control characters")
    return secret.encode()


@attrs.frozen
class _Gate:
    """Who may deliver: a path secret or the `Authorization` header's credentials (pure)."""

    path_secret: bytes | None
    credentials: WebhookAuth | None

    def refusal(self, path: str, authorization: str | None) -> Answer | None:
        """404 for a wrong path secret, 401 for missing or wrong credentials, else None."""
        if self.path_secret is not None:
            segment = path.rstrip("/").rpartition("/")[2]
            if not hmac.compare_digest(segment.encode("utf-8", "replace"), self.path_secret):
                return _NOT_FOUND
        elif self.credentials is not None and not self.credentials.accepts(authorization):
            return _UNAUTHORIZED
        return None

    def headers(self, status: int) -> dict[str, str]:
        """The answer's extra headers: the challenge of a 401, the methods of a 405."""
        if status == 401 and self.credentials is not None:
            return {"WWW-Authenticate": self.credentials.challenge}
        if status == 405:
            return {"Allow": ", ".join(METHODS)}
        return {}


def _gate(secret: object, bearer_token: object, basic_auth: object) -> _Gate:
    """The gate of exactly one auth mode, every value checked."""
    given = [
        name
        for name, value in (
            ("secret", secret),
            ("bearer_token", bearer_token),
            ("basic_auth", basic_auth),
        )
        if value is not None
    ]
    if len(given) != 1:
        got = " and ".join(given) if given else "none"
        raise TypeError(
            "give exactly one of secret= (a secret last path segment), bearer_token= "
            f"(AuthenticationType Token) or basic_auth=(user, password) (Basic); got {got}"
        )
    if secret is not None:
        return _Gate(_path_secret(secret), None)
    if bearer_token is not None:
        if not isinstance(bearer_token, str):
            raise TypeError(f"bearer_token must be a str, not {type(bearer_token).__name__}")
        return _Gate(None, WebhookAuth.bearer(bearer_token))
    if not (isinstance(basic_auth, tuple) and len(basic_auth) == 2):
        raise TypeError("basic_auth must be a (user, password) tuple")
    user, password = basic_auth
    if not isinstance(user, str) or not isinstance(password, str):
        raise TypeError("basic_auth must be a (user, password) tuple of str")
    return _Gate(None, WebhookAuth.basic(user, password))


async def _wake_all(watcher: Wakeable, body: bytes, content_type: str | None) -> Answer:
    """The answer to a delivery's body: parse, then wake each named order (durably)."""
    data_format = data_format_of(content_type, body)
    try:
        named = order_ids(body, data_format)
    except ValueError as exc:
        logger.debug("webhook: unreadable %s body: %s", data_format, exc)
        return 400, {"error": f"the body is not readable {data_format.upper()}"}
    if not named:
        return 202, {"woken": [], "unknown": []}
    woken: list[str] = []
    unknown: list[str] = []

    async def wake_each() -> None:
        for order_id in named:
            (woken if await watcher.wake(order_id) else unknown).append(order_id)

    try:
        await asyncio.wait_for(wake_each(), WAKE_TIMEOUT)
    except Exception:  # the store is down: say so, and the partner may deliver again
        logger.exception("webhook: could not record the wake-up of %d orders", len(named))
        return 503, {"error": "could not record the delivery; try again"}
    logger.debug("webhook woke %d orders (%d not watched)", len(woken), len(unknown))
    return 200, {"woken": woken, "unknown": unknown}


def _too_long(declared: str | None) -> bool:
    """A Content-Length over the limit (a malformed one is left to the capped read)."""
    return (
        declared is not None
        and declared.isdigit()
        and (len(declared) > 9 or int(declared) > MAX_BODY_BYTES)
    )


_NOT_FOUND: Answer = (404, {"error": "not found"})
_UNAUTHORIZED: Answer = (401, {"error": "missing or wrong credentials"})
_WRONG_METHOD: Answer = (405, {"error": "only POST or PUT"})
_TOO_LARGE: Answer = (413, {"error": f"a delivery is at most {MAX_BODY_BYTES} bytes"})


def asgi_app(
    watcher: Wakeable,
    *,
    secret: str | None = None,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> ASGIApp:
    """A plain ASGI app that takes deliveries for `watcher` (mount it anywhere).

    Args:
        watcher: The `OrderWatcher` (anything with `async wake(order_id) -> bool`).
        secret: The secret last path segment of the configured URL, or:
        bearer_token: The token Telegent sends as `Authorization: Bearer ...`, or:
        basic_auth: The `(user, password)` Telegent sends with HTTP Basic.
    """
    gate = _gate(secret, bearer_token, basic_auth)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own: nothing to start or stop
            while True:
                event = (await receive())["type"].rpartition(".")[2]  # startup or shutdown
                await send({"type": f"lifespan.{event}.complete"})
                if event == "shutdown":
                    return
        if scope["type"] != "http":
            raise RuntimeError(f"the webhook app serves HTTP, not {scope['type']!r}")
        status, answer = await _asgi_answer(scope, receive)
        payload = json.dumps(answer).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in gate.headers(status).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _asgi_answer(scope: Scope, receive: Receive) -> Answer:
        headers = dict(scope["headers"])
        refused = gate.refusal(scope["path"], _latin1(headers.get(b"authorization")))
        if refused is not None:
            return refused
        if scope["method"] not in METHODS:
            return _WRONG_METHOD
        if _too_long(_latin1(headers.get(b"content-length"))):
            return _TOO_LARGE
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, {"error": "the client went away"}
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _TOO_LARGE
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        return await _wake_all(watcher, body, _latin1(headers.get(b"content-type")))

    return app


def _latin1(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def aiohttp_handler(
    watcher: Wakeable,
    *,
    secret: str | None = None,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An `aiohttp.web` handler that takes deliveries for `watcher`. Route it for any method
    (`app.router.add_route("*", "/hooks/telegent", handler)`; with `secret=`, a path ending in
    the secret: `"/hooks/telegent/{secret}"`).

    Args:
        watcher: The `OrderWatcher` (anything with `async wake(order_id) -> bool`).
        secret: The secret last path segment of the configured URL, or:
        bearer_token: The token Telegent sends as `Authorization: Bearer ...`, or:
        basic_auth: The `(user, password)` Telegent sends with HTTP Basic.
    """
    gate = _gate(secret, bearer_token, basic_auth)

    async def handler(request: web.Request) -> web.StreamResponse:
        status, answer = await _aiohttp_answer(request)
        return web.json_response(answer, status=status, headers=gate.headers(status))

    async def _aiohttp_answer(request: web.Request) -> Answer:
        refused = gate.refusal(request.path, request.headers.get("Authorization"))
        if refused is not None:
            return refused
        if request.method not in METHODS:
            return _WRONG_METHOD
        if _too_long(request.headers.get("Content-Length")):
            return _TOO_LARGE
        body = bytearray()
        async for chunk in request.content.iter_chunked(16 * 1024):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _TOO_LARGE
        return await _wake_all(watcher, bytes(body), request.headers.get("Content-Type"))

    return handler
