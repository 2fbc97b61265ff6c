"""A fake Telegent server for tests: a real aiohttp app on 127.0.0.1, driven from your test.

Mocking the HTTP layer hides the bugs that matter to a poller (keep-alive reuse, resets, stalls,
429 pauses, expired tokens), so this fake serves real sockets and lets a test script the rest:
order lifecycles that advance with time, token issue with scope and expiry, a rate limit that
answers 429 with `Retry-After`, and injected faults.

Usage in your own tests (pytest-asyncio)::

    from telegent_async.testing import FakeTelegent, Step

    async def test_port_in_rejected() -> None:
        async with FakeTelegent() as fake:
            fake.add_order(
                "JNOID-1",
                [Step("Submitted", 0.0), Step("Rejected", 0.1)],
                message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
            )
            fake.inject("503", count=2)  # the next two API requests fail, then it recovers
            async with fake.client(requests_per_minute=None) as client:
                order = await client.wait_for_order("JNOID-1", timeout=5.0)
            assert order.needs_action
            assert len(fake.order_requests("JNOID-1")) >= 3

Check order on `GET /v1.0/numbers/order`: method (405), bearer token (401), rate limit (429),
injected faults, then `random` faults from `fault_rate`, then the answer. Token requests
(`POST /v1.0/oauth2/tokens`) are never rate-limited, and faulted only by `fail_tokens`.

The port-in lifecycle endpoints (`POST /v1.0/numbers/portin/update` and `.../cancel`) check
method, token (of their own scope) and rate limit the same way, then make the change, and only
then draw a fault: an injected fault replaces the answer of a change already made, the worst
case for a client's retry. See `script_update` for what an update does to a rejected order.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import attrs
from aiohttp import web
from multidict import CIMultiDict

from . import _portin
from ._carrier import decode_carrier_messages
from ._models import OrderStatus, parse_status
from ._redis_server import RedisServer

if TYPE_CHECKING:
    from ._client import TelegentClient

__all__ = [
    "FAULT_KINDS",
    "FakeTelegent",
    "RecordedBody",
    "RecordedRequest",
    "RedisServer",
    "Step",
]

API_PREFIX: Final = "/v1.0"
ORDER_PATH: Final = "/v1.0/numbers/order"
TOKEN_PATH: Final = "/v1.0/oauth2/tokens"
PORTIN_UPDATE_PATH: Final = API_PREFIX + _portin.UPDATE_PATH
PORTIN_CANCEL_PATH: Final = API_PREFIX + _portin.CANCEL_PATH
_PORTIN_PATHS: Final = frozenset({PORTIN_UPDATE_PATH, PORTIN_CANCEL_PATH})

_STATUS_FAULTS: Final[dict[str, int]] = {
    "400": 400,
    "401": 401,
    "403": 403,
    "404": 404,
    "405": 405,
    "408": 408,
    "429": 429,
    "500": 500,
    "502": 502,
    "503": 503,
    "504": 504,
}

FAULT_KINDS: Final[frozenset[str]] = frozenset(
    [*_STATUS_FAULTS, "reset", "stall", "malformed", "html", "empty", "redirect", "huge"]
)
"""Every fault name accepted by `FakeTelegent.inject` and `fault_rate`."""

# Messages modelled on the real API's error bodies (an ASP.NET Web API behind a gateway).
_MESSAGES: Final[dict[int, str]] = {
    400: "The request is invalid.",
    401: "Authorization has been denied for this request.",
    403: "Access to this resource is forbidden for this token.",
    404: "Order not found",
    405: "The requested resource does not support http method 'GET'.",
    408: "The request timed out before the server could complete it.",
    429: "Too many requests. Rate limit exceeded.",
    500: "An error has occurred.",
    502: "Bad gateway: the upstream service returned an invalid response.",
    503: "The service is temporarily unavailable. Please try again later.",
    504: "The gateway timed out waiting for the upstream service.",
}

_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HUGE_PADDING_CHARS: Final = 2 * 1024 * 1024
_JSON: Final = "application/json"
_EXPIRY_FORMAT: Final = "%m/%d/%Y %I:%M:%S %p"


@attrs.frozen
class Step:
    """One point of a scripted lifecycle: `status` becomes visible `at` seconds after add_order."""

    status: str
    at: float = 0.0


class RecordedBody(dict[str, Any]):
    """A recorded JSON request body: the values as sent, secrets masked in any repr of it."""

    def __repr__(self) -> str:
        return repr(_portin.mask_secrets(self))

    __str__ = __repr__


@attrs.frozen
class RecordedRequest:
    """What the fake saw and answered; kept small because benchmarks record thousands.

    `status` is 0 when no answer was sent (a reset, or a stall abandoned by the client or by
    close()). For token requests `token` is None and `token_scope` is the scope asked for.
    `body` is the JSON object a port-in request sent (None elsewhere); its repr masks secrets.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    token: str | None
    token_scope: str | None
    at: float
    status: int
    fault: str | None
    body: RecordedBody | None = None


@attrs.frozen
class _Token:
    scope: str
    expires_at: float
    generation: int


class _Order:
    """A scripted order; slotted because benchmarks add 100,000 of them."""

    __slots__ = (
        "added_at",
        "added_wall",
        "extra",
        "message",
        "order_id",
        "order_type",
        "phone_numbers",
        "settled_body",
        "steps",
    )

    def __init__(
        self,
        order_id: str,
        steps: tuple[Step, ...],
        message: str | None,
        order_type: str | None,
        phone_numbers: tuple[str, ...],
        extra: Mapping[str, Any] | None,
        added_at: float,
        added_wall: float,
    ) -> None:
        self.order_id = order_id
        self.steps = steps
        self.message = message
        self.order_type = order_type
        self.phone_numbers = phone_numbers
        self.extra = extra
        self.added_at = added_at
        self.added_wall = added_wall
        self.settled_body: bytes | None = None

    def status_at(self, now: float) -> str:
        elapsed = now - self.added_at
        status = self.steps[0].status
        for step in self.steps:
            if step.at <= elapsed:
                status = step.status
            else:
                break
        return status

    def as_dict(self, now: float) -> dict[str, Any]:
        status = self.status_at(now)
        settled = self.steps[-1].at <= now - self.added_at
        body = _order_dict(
            self.order_id,
            _iso(self.added_wall),
            status,
            self.message if settled else None,
            self.order_type,
            self.phone_numbers,
        )
        if self.extra:
            body.update(self.extra)
        return body

    def restart(self, steps: tuple[Step, ...], message: str | None, now: float) -> None:
        """Go through a new lifecycle from `now` (after an update or a cancel)."""
        self.steps, self.message, self.added_at = steps, message, now
        self.settled_body = None

    def body(self, now: float) -> bytes:
        """Encode the order as seen at `now`; cached once settled since it no longer changes."""
        if self.settled_body is not None:
            return self.settled_body
        encoded = json.dumps(self.as_dict(now)).encode()
        if self.steps[-1].at <= now - self.added_at:
            self.settled_body = encoded
        return encoded


@attrs.frozen
class _Fixed:
    status: int
    body: bytes
    headers: CIMultiDict[str]


class _Injection:
    __slots__ = ("kind", "remaining", "retry_after")

    def __init__(self, kind: str, remaining: int, retry_after: str | None) -> None:
        self.kind = kind
        self.remaining = remaining
        self.retry_after = retry_after


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat()


def _order_dict(
    order_id: str,
    order_date: str,
    status: str,
    message: str | None,
    order_type: str | None,
    phone_numbers: Sequence[str],
) -> dict[str, Any]:
    return {
        "OrderId": order_id,
        "OrderDate": order_date,
        "OrderStatus": status,
        "OrderStatusMessage": message,
        "OrderType": order_type,
        "PhoneNumbersOrdered": [{"Number": n} for n in phone_numbers],
        "ErrorMessage": None,
    }


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")


class FakeTelegent:
    """A Telegent order API on 127.0.0.1 with scripted orders, tokens, rate limit and faults.

    Use `async with FakeTelegent() as fake:` or `await fake.start()` / `await fake.close()`.
    All state changes (add_order, inject, revoke_tokens...) take effect on the next request.
    """

    def __init__(
        self,
        *,
        account_key: str = "DID-fake-key",
        account_secret: str = "fake-secret",
        token_lifetime: float = 300.0,
        rate_limit: float | None = None,
        retry_after: str = "1",
        fault_rate: Mapping[str, float] | None = None,
        stall_seconds: float = 5.0,
        default_status: str | None = None,
        seed: int | None = None,
        record: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        clock_skew: float = 0.0,
    ) -> None:
        if not token_lifetime > 0:
            raise ValueError("token_lifetime must be > 0")
        if rate_limit is not None and not (rate_limit > 0 and math.isfinite(rate_limit)):
            raise ValueError("rate_limit must be a positive number or None")
        if not stall_seconds >= 0:
            raise ValueError("stall_seconds must be >= 0")
        table: list[tuple[str, float]] = []
        total = 0.0
        for kind, probability in (fault_rate or {}).items():
            _check_kind(kind)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"fault_rate[{kind!r}] must be within [0, 1]")
            if probability > 0:
                total += probability
                table.append((kind, total))
        if total > 1.0 + 1e-9:
            raise ValueError("fault_rate probabilities must sum to at most 1")

        self.account_key = account_key
        self.account_secret = account_secret
        self.token_lifetime = float(token_lifetime)
        self.rate_limit = rate_limit
        self.retry_after = retry_after
        self.stall_seconds = float(stall_seconds)
        self.default_status = default_status
        self.clock_skew = float(clock_skew)
        """Seconds the server's clock is ahead (negative: behind), seen in the token answer's
        `tokenExpiry` and `Date` header; tokens still live `token_lifetime` real seconds."""
        self.record = record
        self._host = host
        self._port = port
        self._fault_table = tuple(table)
        self._rng = random.Random(seed)

        self._orders: dict[str, _Order] = {}
        self._update_scripts: dict[str, collections.deque[tuple[tuple[Step, ...], str | None]]] = {}
        self._fixed: dict[str, _Fixed] = {}
        self._static_steps: dict[str, tuple[Step, ...]] = {}
        self._tokens: dict[str, _Token] = {}
        self._generation = 0
        self._injected: collections.deque[_Injection] = collections.deque()
        self._token_faults: collections.deque[_Injection] = collections.deque()
        self._token_outage: tuple[str, float] | None = None  # (kind, until monotonic)
        self._burst = max(1.0, rate_limit) if rate_limit is not None else 0.0
        self._bucket = self._burst
        self._bucket_at = time.monotonic()
        self._error_bodies: dict[tuple[int, str], bytes] = {}
        self._huge_padding = ""
        self._started_wall = time.time()

        self._requests: list[RecordedRequest] = []
        self.request_count = 0
        """Requests answered (or abandoned) so far, counted even when `record=False`."""
        self.status_counts: dict[int, int] = {}
        """How many requests got each status (0 = no answer), counted even when `record=False`."""
        self._open = 0
        self._peak = 0

        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Future[None] | None = None
        self._bound_port: int | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; the port is read back so that port=0 lets tests run in parallel."""
        if self._runner is not None or self._closed:
            raise RuntimeError("a FakeTelegent can be started only once")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        self._runner = runner
        self._closing = asyncio.get_running_loop().create_future()
        server = runner.server
        assert server is not None
        self._track_connections(server)
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await self.close()
            raise
        self._bound_port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving; stalled handlers are released at once so close() never waits them out."""
        if self._closed:
            return
        self._closed = True
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTelegent:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _track_connections(self, server: web.Server) -> None:
        # aiohttp's Server is the protocol factory's manager: wrapping its hooks is the only
        # way to see connections open and close without a private subclass of AppRunner.
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._open += 1
            self._peak = max(self._peak, self._open)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._open -= 1

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    # -- properties ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on (chosen by the OS unless given)."""
        if self._bound_port is None:
            raise RuntimeError("FakeTelegent is not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. "http://127.0.0.1:8123/v1.0"."""
        return f"http://{self._host}:{self.port}{API_PREFIX}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every recorded request in arrival order (the live list: do not mutate it)."""
        return self._requests

    @property
    def token_requests(self) -> list[RecordedRequest]:
        """The recorded token requests (`POST /v1.0/oauth2/tokens`)."""
        return [r for r in self._requests if r.path == TOKEN_PATH and r.method == "POST"]

    def order_requests(self, order_id: str | None = None) -> list[RecordedRequest]:
        """The recorded GETs on /numbers/order, optionally only those asking for `order_id`."""
        found = [r for r in self._requests if r.path == ORDER_PATH and r.method == "GET"]
        if order_id is None:
            return found
        return [r for r in found if ("OrderId", order_id) in r.query]

    def clear_requests(self) -> None:
        """Forget the request log and counters (e.g. between benchmark phases)."""
        self._requests = []
        self.request_count = 0
        self.status_counts = {}

    def port_in_requests(self, order_id: str | None = None) -> list[RecordedRequest]:
        """The recorded port-in updates and cancels, optionally only those naming `order_id`."""
        found = [r for r in self._requests if r.path in _PORTIN_PATHS]
        if order_id is None:
            return found
        return [r for r in found if r.body is not None and r.body.get("OrderId") == order_id]

    @property
    def open_connections(self) -> int:
        """Client connections open now."""
        return self._open

    @property
    def peak_connections(self) -> int:
        """The most client connections open at once so far."""
        return self._peak

    # -- scripting -----------------------------------------------------------------------------

    def add_order(
        self,
        order_id: str,
        status: str | Sequence[Step],
        *,
        message: str | None = None,
        order_type: str | None = "Provision",
        phone_numbers: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve `order_id`: a fixed status, or Steps whose times count from now.

        `message` becomes OrderStatusMessage once the last step is visible (null before), as a
        port-in's carrier code only appears when it is rejected. `extra` is merged last, so it
        can add provision fields or override any field (e.g. an odd OrderDate format).
        """
        if isinstance(status, str):
            steps = self._static_steps.get(status)
            if steps is None:
                steps = self._static_steps[status] = (Step(status, 0.0),)
        else:
            steps = tuple(sorted(status, key=lambda s: s.at))
            if not steps:
                raise ValueError("a lifecycle needs at least one Step")
            for step in steps:
                if not isinstance(step, Step):
                    raise TypeError(f"expected Step, got {type(step).__name__}")
                if not (step.at >= 0 and math.isfinite(step.at)):
                    raise ValueError(f"Step.at must be a finite number >= 0, got {step.at!r}")
        if isinstance(phone_numbers, str):
            phone_numbers = (phone_numbers,)
        self._orders[order_id] = _Order(
            order_id,
            steps,
            message,
            order_type,
            tuple(phone_numbers),
            dict(extra) if extra else None,
            time.monotonic(),
            time.time(),
        )

    port_in_delay: float = 0.05
    """Seconds an updated port-in stays `Submitted` before its next status (set per fake)."""

    def script_update(
        self, order_id: str, steps: Sequence[Step], *, message: str | None = None
    ) -> None:
        """What the next update of a rejected `order_id` leads to, whatever it sends.

        Each call queues one continuation (Steps counted from the update; `message` is shown
        once the last is visible). Without one, an update of a `Rejected`/`ResolutionRequired`
        order goes to `Submitted`, then after `port_in_delay` to `Complete` if it sent every
        field that fixes the order's carrier codes (`CarrierError.update_fields`), else back
        to the same rejection. An update of a pending order changes nothing; an update or
        cancel of a `Complete`, `Error` or `Cancelled` one answers 400.
        """
        if order_id not in self._orders:
            raise KeyError(f"add_order({order_id!r}, ...) first")
        lifecycle = tuple(sorted(steps, key=lambda step: step.at))
        if not lifecycle:
            raise ValueError("a continuation needs at least one Step")
        self._update_scripts.setdefault(order_id, collections.deque()).append((lifecycle, message))

    def settled_at(self, order_id: str) -> float:
        """The time.monotonic() at which the order's last step becomes visible."""
        order = self._orders[order_id]
        return order.added_at + order.steps[-1].at

    def set_response(
        self,
        order_id: str,
        *,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str | None = _JSON,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `order_id` with exactly these bytes (after auth, rate limit and faults).

        Lookups, updates and cancels naming the order all get this answer.
        """
        raw = body.encode() if isinstance(body, str) else bytes(body)
        hdrs: CIMultiDict[str] = CIMultiDict(headers or {})
        if content_type is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = content_type
        self._fixed[order_id] = _Fixed(status, raw, hdrs)

    def inject(self, kind: str, count: int = 1, *, retry_after: str | None = None) -> None:
        """Give the next `count` API requests fault `kind` (FIFO, before `fault_rate`).

        `retry_after` adds a Retry-After header to a status fault (429 always sends one).
        """
        _check_kind(kind)
        if count < 0:
            raise ValueError("count must be >= 0")
        if count:
            self._injected.append(_Injection(kind, count, retry_after))

    def fail_tokens(self, kind: str, count: int = 1, *, seconds: float | None = None) -> None:
        """Give token requests fault `kind`: the next `count` of them, or, with `seconds`, all
        of them for that long from now. `kind` is any of `FAULT_KINDS` but "stall", or
        "refused": a 200 with `successful: false`, as for a wrong secret."""
        if kind != "refused":
            _check_kind(kind)
        if kind == "stall":
            raise ValueError("token requests cannot stall; use a short client timeout instead")
        if seconds is not None:
            self._token_outage = (kind, time.monotonic() + seconds)
        elif count > 0:
            self._token_faults.append(_Injection(kind, count, None))

    def _next_token_fault(self, now: float) -> str | None:
        outage = self._token_outage
        if outage is not None and now < outage[1]:
            return outage[0]
        faults = self._token_faults
        if not faults:
            return None
        head = faults[0]
        head.remaining -= 1
        if head.remaining <= 0:
            faults.popleft()
        return head.kind

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as if the account secret were rotated)."""
        self._generation += 1

    def client(self, **overrides: Any) -> TelegentClient:
        """A TelegentClient bound to this fake; `token=...` replaces the account credentials."""
        from ._client import TelegentClient

        kwargs: dict[str, Any] = {"base_url": self.base_url, "allow_insecure": True}
        if "token" not in overrides:
            kwargs["account_key"] = self.account_key
            kwargs["account_secret"] = self.account_secret
        kwargs.update(overrides)
        return TelegentClient(**kwargs)

    # -- request handling ----------------------------------------------------------------------

    def _log(
        self,
        request: web.BaseRequest,
        at: float,
        status: int,
        token: str | None = None,
        scope: str | None = None,
        fault: str | None = None,
        body: RecordedBody | None = None,
    ) -> int:
        """Count the answer and, if recording, append it; returns its index in the log."""
        self.request_count += 1
        counts = self.status_counts
        counts[status] = counts.get(status, 0) + 1
        if not self.record:
            return -1
        self._requests.append(
            RecordedRequest(
                request.method,
                request.path,
                tuple(request.query.items()),
                token,
                scope,
                at,
                status,
                fault,
                body,
            )
        )
        return len(self._requests) - 1

    def _error(self, status: int, message: str | None = None) -> web.Response:
        text = message if message is not None else _MESSAGES.get(status, "Error")
        key = (status, text)
        body = self._error_bodies.get(key)
        if body is None:
            body = json.dumps({"StatusCode": status, "Message": text}).encode()
            if len(self._error_bodies) < 256:
                self._error_bodies[key] = body
        return web.Response(status=status, body=body, content_type=_JSON)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        path = request.path
        if path == ORDER_PATH:
            return await self._handle_order(request, now)
        if path == TOKEN_PATH:
            return await self._handle_token(request, now)
        if path in _PORTIN_PATHS:
            return await self._handle_port_in(request, now)
        self._log(request, now, 404)
        return self._error(404, "No HTTP resource was found that matches the request URI.")

    async def _handle_token(self, request: web.Request, now: float) -> web.StreamResponse:
        if request.method != "POST":
            self._log(request, now, 405)
            return self._error(
                405, f"The requested resource does not support http method '{request.method}'."
            )
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._log(request, now, 400)
            return self._error(400, "The request body must be a JSON object.")
        key, secret = data.get("AccountKey"), data.get("AccountSecret")
        endpoint = data.get("ApiEndpoint")
        if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
            self._log(request, now, 400)
            return self._error(400, "AccountKey and AccountSecret are required.")
        if endpoint is not None and not isinstance(endpoint, str):
            self._log(request, now, 400)
            return self._error(400, "ApiEndpoint must be a string.")
        scope = ORDER_PATH if endpoint is None else _scope_of(endpoint)
        fault = self._next_token_fault(now)
        if fault is not None and fault != "refused":
            return self._fault_response(request, now, fault, None, None, scope)
        if fault == "refused" or not (
            secrets.compare_digest(key.encode(), self.account_key.encode())
            and secrets.compare_digest(secret.encode(), self.account_secret.encode())
        ):
            self._log(request, now, 200, scope=scope)
            answer: dict[str, Any] = {
                "token": None,
                "successful": False,
                "message": "Invalid AccountKey or AccountSecret",
            }
            return web.Response(body=json.dumps(answer).encode(), content_type=_JSON)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Token(scope, now + self.token_lifetime, self._generation)
        server_now = datetime.now(timezone.utc) + timedelta(seconds=self.clock_skew)
        expiry = server_now + timedelta(seconds=self.token_lifetime)
        self._log(request, now, 200, scope=scope)
        answer = {
            "token": token,
            "successful": True,
            "tokenExpiry": expiry.strftime(_EXPIRY_FORMAT),
        }
        headers = {"Date": format_datetime(server_now, usegmt=True)}
        return web.Response(body=json.dumps(answer).encode(), content_type=_JSON, headers=headers)

    async def _handle_order(self, request: web.Request, now: float) -> web.StreamResponse:
        gate = self._gate(request, now, "GET")
        if isinstance(gate, web.Response):
            return gate
        token, scope = gate
        fault, retry_after = self._next_fault()
        if fault is None:
            response = self._answer(request, time.monotonic())
            self._log(request, now, response.status, token, scope)
            return response
        if fault == "stall":
            answer = functools.partial(self._answer, request)
            return await self._stall(request, now, token, scope, answer)
        return self._fault_response(request, now, fault, retry_after, token, scope)

    async def _handle_port_in(self, request: web.Request, now: float) -> web.StreamResponse:
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        body = RecordedBody(data) if isinstance(data, dict) else None
        gate = self._gate(request, now, "POST", body)
        if isinstance(gate, web.Response):
            return gate
        token, scope = gate
        response = self._port_in_answer(request.path, body, now)
        fault, retry_after = self._next_fault()
        if fault is None:
            self._log(request, now, response.status, token, scope, body=body)
            return response
        if fault == "stall":
            return await self._stall(request, now, token, scope, lambda _now: response, body)
        return self._fault_response(request, now, fault, retry_after, token, scope, body)

    def _port_in_answer(self, path: str, body: RecordedBody | None, now: float) -> web.Response:
        if body is None:
            return self._error(400, "The request body must be a JSON object.")
        order_id = body.get("OrderId")
        if not isinstance(order_id, str) or not order_id:
            return self._error(400, "The OrderId field is required.")
        fixed = self._fixed.get(order_id)
        if fixed is not None:
            return web.Response(status=fixed.status, body=fixed.body, headers=fixed.headers)
        order = self._orders.get(order_id)
        if order is None:
            return self._error(404, "GENS-0041-No Port-In request found")
        raw_status = order.status_at(now)
        status = parse_status(raw_status)
        if path == PORTIN_CANCEL_PATH:
            if status is OrderStatus.CANCELLED:
                return self._error(400, f"Order {order_id} is already cancelled.")
            if status.is_settled and status not in _FIXABLE:
                return self._error(
                    400, f"Order {order_id} is {raw_status} and cannot be cancelled."
                )
            order.restart((Step("Cancelled"),), None, now)
            return _json_answer(order_id, "Cancelled", "Port-in order cancelled successfully")
        if status.is_settled and status not in _FIXABLE:
            return self._error(400, f"Order {order_id} is {raw_status} and cannot be updated.")
        if len(body) == 1:
            return self._error(400, "At least one field to update is required.")
        if status in _FIXABLE:
            steps, message = self._continuation(order, body, raw_status)
            order.restart(steps, message, now)
        return _json_answer(order_id, "Updated", "Port-in order updated successfully")

    def _continuation(
        self, order: _Order, body: RecordedBody, raw_status: str
    ) -> tuple[tuple[Step, ...], str | None]:
        scripted = self._update_scripts.get(order.order_id)
        if scripted:
            return scripted.popleft()
        needed = {
            _portin.JSON_NAMES[field]
            for error in decode_carrier_messages(order.message)
            for field in error.update_fields
        }
        if needed and needed <= body.keys():
            return (Step("Submitted"), Step("Complete", self.port_in_delay)), None
        return (Step("Submitted"), Step(raw_status, self.port_in_delay)), order.message

    def _gate(
        self, request: web.Request, now: float, method: str, body: RecordedBody | None = None
    ) -> web.Response | tuple[str, str]:
        """Method, a live token of this path's scope, rate limit: a refusal or (token, scope)."""
        if request.method != method:
            self._log(request, now, 405, body=body)
            return self._error(
                405, f"The requested resource does not support http method '{request.method}'."
            )
        token: str | None = None
        auth = request.headers.get("Authorization")
        if auth is not None and auth[:7].lower() == "bearer ":
            token = auth[7:].strip() or None
        info = self._tokens.get(token) if token is not None else None
        scope = info.scope if info is not None else None
        denied: str | None = None
        if token is None:
            denied = "Authorization has been denied for this request."
        elif info is None:
            denied = "Invalid token."
        elif info.generation < self._generation:
            denied = "Token has been revoked."
        elif now >= info.expires_at:
            denied = "Token has expired."
        elif info.scope != request.path:
            denied = "Token is not valid for this endpoint."
        if denied is not None or token is None or scope is None:
            self._log(request, now, 401, token, scope, body=body)
            return self._error(401, denied)

        if self.rate_limit is not None:
            tokens = min(self._burst, self._bucket + (now - self._bucket_at) * self.rate_limit)
            self._bucket_at = now
            if tokens < 1.0:
                self._bucket = tokens
                self._log(request, now, 429, token, scope, body=body)
                response = self._error(
                    429, f"Rate limit exceeded. Retry after {self.retry_after} seconds."
                )
                response.headers["Retry-After"] = self.retry_after
                return response
            self._bucket = tokens - 1.0
        return token, scope

    def _next_fault(self) -> tuple[str | None, str | None]:
        injected = self._injected
        if injected:
            head = injected[0]
            head.remaining -= 1
            if head.remaining <= 0:
                injected.popleft()
            return head.kind, head.retry_after
        if self._fault_table:
            draw = self._rng.random()
            for kind, cumulative in self._fault_table:
                if draw < cumulative:
                    return kind, None
        return None, None

    async def _stall(
        self,
        request: web.Request,
        now: float,
        token: str | None,
        scope: str | None,
        answer: Callable[[float], web.Response],
        body: RecordedBody | None = None,
    ) -> web.StreamResponse:
        # Log at arrival (status 0) so the log keeps arrival order; fixed up if we answer.
        index = self._log(request, now, 0, token, scope, "stall", body)
        closing = self._closing
        assert closing is not None
        await asyncio.wait((closing,), timeout=self.stall_seconds)
        transport = request.transport
        if closing.done() or transport is None or transport.is_closing():
            if transport is not None:
                transport.abort()
            return web.Response()  # never written: the transport is gone
        response = answer(time.monotonic())
        counts = self.status_counts
        counts[0] = max(0, counts.get(0, 0) - 1)
        counts[response.status] = counts.get(response.status, 0) + 1
        if 0 <= index < len(self._requests) and self._requests[index].fault == "stall":
            self._requests[index] = attrs.evolve(self._requests[index], status=response.status)
        return response

    def _fault_response(
        self,
        request: web.Request,
        now: float,
        fault: str,
        retry_after: str | None,
        token: str | None,
        scope: str | None,
        body: RecordedBody | None = None,
    ) -> web.StreamResponse:
        status = _STATUS_FAULTS.get(fault)
        if status is not None:
            response = self._error(status)
            if status == 429 or retry_after is not None:
                response.headers["Retry-After"] = retry_after or self.retry_after
        elif fault == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            self._log(request, now, 0, token, scope, fault, body)
            # aiohttp sees the closed transport when writing this and drops it silently.
            return web.Response()
        elif fault == "malformed":
            order_id = request.query.get("OrderId", "")
            cut = ('{"OrderId": ' + json.dumps(order_id) + ', "OrderSta').encode()
            response = web.Response(body=cut, content_type=_JSON)
        elif fault == "html":
            response = web.Response(status=502, body=_HTML_502, content_type="text/html")
        elif fault == "empty":
            response = web.Response(body=b"", content_type=_JSON)
        elif fault == "redirect":
            response = web.Response(
                status=302,
                headers={"Location": f"http://127.0.0.1:{self.port}/elsewhere"},
            )
        else:  # "huge"
            response = web.Response(body=self._huge_body(request), content_type=_JSON)
        self._log(request, now, response.status, token, scope, fault, body)
        return response

    def _huge_body(self, request: web.Request) -> bytes:
        if not self._huge_padding:
            self._huge_padding = "x" * _HUGE_PADDING_CHARS
        order_id = request.query.get("OrderId", "")
        order = self._orders.get(order_id)
        if order is not None:
            data = order.as_dict(time.monotonic())
        else:
            data = self._default_dict(order_id, self.default_status or "Complete")
        data["Padding"] = self._huge_padding
        return json.dumps(data).encode()

    def _default_dict(self, order_id: str, status: str) -> dict[str, Any]:
        return _order_dict(order_id, _iso(self._started_wall), status, None, "Provision", ())

    def _answer(self, request: web.Request, now: float) -> web.Response:
        ids = request.query.getall("OrderId", [])
        if not ids or not ids[0]:
            return self._error(400, "The OrderId field is required.")
        if len(ids) > 1:
            return self._error(400, "Exactly one OrderId must be given.")
        order_id = ids[0]
        fixed = self._fixed.get(order_id)
        if fixed is not None:
            return web.Response(status=fixed.status, body=fixed.body, headers=fixed.headers)
        order = self._orders.get(order_id)
        if order is not None:
            return web.Response(body=order.body(now), content_type=_JSON)
        if self.default_status is not None:
            body = json.dumps(self._default_dict(order_id, self.default_status)).encode()
            return web.Response(body=body, content_type=_JSON)
        return self._error(404)


_FIXABLE: Final = frozenset({OrderStatus.REJECTED, OrderStatus.RESOLUTION_REQUIRED})


def _json_answer(order_id: str, status: str, message: str) -> web.Response:
    body = {"OrderId": order_id, "Status": status, "Message": message}
    return web.Response(body=json.dumps(body).encode(), content_type=_JSON)


def _scope_of(endpoint: str) -> str:
    """The path part of an ApiEndpoint URL (or of a bare path), which is what a token is for."""
    path = urlsplit(endpoint).path
    return path.rstrip("/") or "/"
