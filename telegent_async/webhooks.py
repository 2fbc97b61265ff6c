"""Telegent's `Order_Update` webhook: a delivery wakes the watched orders it names.

    from telegent_async import webhooks

    app.mount("/hooks/telegent", webhooks.asgi_app(watcher, secret=SECRET))  # FastAPI
    handler = webhooks.aiohttp_handler(watcher, secret=SECRET)  # aiohttp.web
    app.router.add_route("*", "/hooks/telegent/{secret}", handler)

Configure `https://<host>/hooks/telegent/<SECRET>` as the webhook URL at Telegent. The payload
is unpublished and unsigned, so a delivery is a hint, never the truth: it only moves the
named orders' next poll to now (`OrderWatcher.wake`, durable), and the poll, within the
client's budget, says what the order's status is. Answers:

- 404: the last path segment is not the secret (compared in constant time);
- 405: not a POST; 413: a body over 64 KiB (refused without reading more of it);
- 400: a body that is not JSON; 202: JSON that names no order (nothing is done);
- 200: every named order was woken, answered at once, before any poll;
- 503: the watcher's store could not record a wake-up (Telegent may deliver again).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from aiohttp import web

from . import _validate

__all__ = ["MAX_BODY_BYTES", "Wakeable", "aiohttp_handler", "asgi_app", "order_ids"]

logger = logging.getLogger("telegent_async")

#: A delivery names an order or a few: anything larger is refused unread.
MAX_BODY_BYTES = 64 * 1024
#: How deep in the JSON an order ID is still looked for (wrappers and event lists nest a few).
MAX_DEPTH = 16
MIN_SECRET_CHARS = 16

_ID_KEY = "orderid"  # OrderId, orderId, order_id, ORDER-ID ...
_IDS_KEY = "orderids"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Wakeable(Protocol):
    """What a webhook needs of an `OrderWatcher`."""

    async def wake(self, order_id: str) -> object: ...


def order_ids(body: bytes | bytearray | memoryview) -> list[str]:
    """Every order ID an `Order_Update` delivery names, once each (an object's own before
    those of the objects inside it).

    Looks for an `OrderId` key (any case, `_` or `-` ignored) holding a string, or
    `OrderIds` holding a list of strings, at the top level, inside wrappers (`data`,
    `payload`, `Order`, `event` ... any object) and in lists of events, down to 16 levels.
    Strings that are not plausible order IDs (empty, blank, control characters, over 200
    characters) are skipped. Pure and total: it raises only `ValueError` for a body that is
    not JSON (not UTF-8/16/32 text, malformed, or nested too deep to parse) and `TypeError`
    for an argument that is not bytes.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    try:
        document = json.loads(bytes(body))
    except RecursionError:
        raise ValueError("the body is JSON nested too deeply to read") from None
    found: dict[str, None] = {}
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        if isinstance(node, dict):
            children = []
            for key, value in node.items():
                name = key.lower().replace("_", "").replace("-", "")
                if name == _ID_KEY:
                    _keep(found, value)
                elif name == _IDS_KEY and isinstance(value, list):
                    for item in value:
                        _keep(found, item)
                else:
                    children.append(value)
            stack.extend((child, depth + 1) for child in reversed(children))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in reversed(node))
    return list(found)


def _keep(found: dict[str, None], value: object) -> None:
    # Not an order ID (a number, an object, a blank or absurd string): skipped.
    with contextlib.suppress(TypeError, ValueError):
        found[_validate.order_id(value)] = None


def _secret(secret: object) -> bytes:
    if not isinstance(secret, str):
        raise TypeError(f"secret must be a str, not {type(secret).__name__}")
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(
            f"secret must be at least {MIN_SECRET_CHARS} characters (use secrets.token_urlsafe(32))"
        )
    if "/" in secret or not secret.isprintable() or secret != secret.strip():
        raise ValueError("secret must be one path segment: no '/', spaces or control characters")
    return secret.encode()


def _path_holds(path: str, secret: bytes) -> bool:
    """True when the path's last segment (a trailing '/' ignored) is the secret."""
    segment = path.rstrip("/").rpartition("/")[2]
    return hmac.compare_digest(segment.encode("utf-8", "replace"), secret)


async def _wake_all(watcher: Wakeable, body: bytes) -> tuple[int, dict[str, Any]]:
    """The answer to a delivery's body: parse, then wake each named order (durably)."""
    try:
        named = order_ids(body)
    except ValueError:
        return 400, {"error": "the body is not JSON"}
    if not named:
        return 202, {"woken": []}
    try:
        for order_id in named:
            await watcher.wake(order_id)
    except Exception:  # the store is down: say so, and the partner may deliver again
        logger.exception("webhook: could not record the wake-up of %d orders", len(named))
        return 503, {"error": "could not record the delivery; try again"}
    logger.debug("webhook woke %d orders", len(named))
    return 200, {"woken": named}


def _too_long(declared: str | None) -> bool:
    """A Content-Length over the limit (a malformed one is left to the capped read)."""
    return (
        declared is not None
        and declared.isdigit()
        and (len(declared) > 9 or int(declared) > MAX_BODY_BYTES)
    )


_NOT_FOUND = (404, {"error": "not found"})
_NOT_POST = (405, {"error": "only POST"})
_TOO_LARGE = (413, {"error": f"a delivery is at most {MAX_BODY_BYTES} bytes"})


def asgi_app(watcher: Wakeable, *, secret: str) -> ASGIApp:
    """A plain ASGI app that takes deliveries for `watcher` (mount it anywhere)."""
    key = _secret(secret)

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
        if status == 405:
            headers.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _asgi_answer(scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        if not _path_holds(scope["path"], key):
            return _NOT_FOUND
        if scope["method"] != "POST":
            return _NOT_POST
        headers = dict(scope["headers"])
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
        return await _wake_all(watcher, b"".join(chunks))

    return app


def _latin1(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def aiohttp_handler(
    watcher: Wakeable, *, secret: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An `aiohttp.web` handler that takes deliveries for `watcher`; route it as
    `app.router.add_route("*", "/hooks/telegent/{secret}", handler)` (any path ending in the
    secret)."""
    key = _secret(secret)

    async def handler(request: web.Request) -> web.StreamResponse:
        status, answer = await _aiohttp_answer(request)
        headers = {"Allow": "POST"} if status == 405 else None
        return web.json_response(answer, status=status, headers=headers)

    async def _aiohttp_answer(request: web.Request) -> tuple[int, dict[str, Any]]:
        if not _path_holds(request.path, key):
            return _NOT_FOUND
        if request.method != "POST":
            return _NOT_POST
        if _too_long(request.headers.get("Content-Length")):
            return _TOO_LARGE
        body = bytearray()
        async for chunk in request.content.iter_chunked(16 * 1024):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _TOO_LARGE
        return await _wake_all(watcher, bytes(body))

    return handler
