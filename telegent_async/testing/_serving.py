"""The serving half of `FakeTelegent`: its state, lifecycle and the checks on each request."""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from ._connections import ConnectionCounter
from ._create_endpoints import ALL_PATHS, CreatedOrders
from ._faults import BEFORE_ACTION, STATUS_FAULTS, ApiFaults, FaultKind, TokenFaults
from ._lifecycle import Order, Step, iso, order_dict
from ._log import RecordedBody, RequestLog, read_body
from ._portin_endpoints import API_PREFIX, PORTIN_PATHS, Continuation, port_in_answer
from ._responses import (
    HTML_502,
    JSON,
    Fixed,
    embedded_error,
    enveloped,
    error_response,
    method_not_allowed,
    no_route,
)
from ._tokens import (
    TokenBucket,
    Tokens,
    credentials_match,
    issued_answer,
    refused_answer,
    scope_of,
    token_request_error,
)
from ._webhook_endpoints import WEBHOOK_METHODS, FakeWebhooks

ORDER_PATH: Final = API_PREFIX + "/numbers/order"
TOKEN_PATH: Final = API_PREFIX + "/oauth2/tokens"

_HUGE_PADDING_CHARS: Final = 2 * 1024 * 1024


class ServingCore:
    """State and request handling; `FakeTelegent` adds the scripting and inspection API."""

    port_in_delay: float = 0.05
    """Seconds an updated port-in stays `Submitted` before its next status (set per fake)."""

    def __init__(
        self,
        *,
        account_key: str = "DID-fake-key",
        account_secret: str = "fake-secret",
        token_lifetime: float = 300.0,
        rate_limit: float | None = None,
        retry_after: str = "1",
        fault_rate: Mapping[FaultKind, float] | None = None,
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
        self._faults = ApiFaults(fault_rate, seed)

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
        self._host = host
        self._port = port

        self._orders: dict[str, Order] = {}
        self._update_scripts: dict[str, collections.deque[Continuation]] = {}
        self._fixed: dict[str, Fixed] = {}
        self._created = CreatedOrders()
        self._static_steps: dict[str, tuple[Step, ...]] = {}
        self._webhooks = FakeWebhooks()
        self._tokens = Tokens()
        self._token_faults = TokenFaults()
        self._bucket = None if rate_limit is None else TokenBucket(rate_limit, time.monotonic())
        self._huge_padding = ""
        self._started_wall = time.time()
        self._log = RequestLog(record)
        self._connections = ConnectionCounter()

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
        self._connections.attach(server)
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

    # -- request handling ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        path = request.path
        if path == ORDER_PATH:
            return await self._handle_order(request, now)
        if path == TOKEN_PATH:
            return await self._handle_token(request, now)
        if path in PORTIN_PATHS:
            return await self._handle_port_in(request, now)
        if path in ALL_PATHS:
            return await self._handle_create(request, now)
        if path in WEBHOOK_METHODS:
            return await self._handle_webhook(request, now)
        self._log.add(request, now, 404)
        return no_route(str(request.url))

    async def _handle_token(self, request: web.Request, now: float) -> web.StreamResponse:
        if request.method != "POST":
            self._log.add(request, now, 405)
            return method_not_allowed(request.method)
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        refused = token_request_error(data)
        if refused is not None:
            self._log.add(request, now, 400)
            return error_response(400, refused)
        endpoint = data.get("ApiEndpoint")
        scope = ORDER_PATH if endpoint is None else scope_of(endpoint)
        fault = self._token_faults.next(now)
        if fault is not None and fault not in ("refused", "envelope"):
            return self._fault_response(request, now, fault, None, None, scope)
        self._log.add(request, now, 200, scope=scope, fault=fault)
        if fault == "refused" or not credentials_match(data, self.account_key, self.account_secret):
            return refused_answer()
        token = self._tokens.issue(scope, now + self.token_lifetime)
        issued = issued_answer(token, self.token_lifetime, self.clock_skew)
        return enveloped(issued) if fault == "envelope" else issued

    async def _handle_order(self, request: web.Request, now: float) -> web.StreamResponse:
        gate = self._gate(request, now, "GET")
        if isinstance(gate, web.Response):
            return gate
        token, scope = gate
        fault, retry_after = self._faults.next(request.path)
        if fault is None:
            response = self._answer(request, time.monotonic())
            self._log.add(request, now, response.status, token, scope)
            return response
        if fault == "stall":
            answer = functools.partial(self._answer, request)
            return await self._stall(request, now, token, scope, answer)
        answered = self._answer(request, now) if fault == "envelope" else None
        return self._fault_response(request, now, fault, retry_after, token, scope, None, answered)

    async def _handle_create(self, request: web.Request, now: float) -> web.StreamResponse:
        """Eligibility or a create: a `BEFORE_ACTION` fault is answered before anything is made."""
        body = await read_body(request)
        gate = self._gate(request, now, "POST", body)
        if isinstance(gate, web.Response):
            return gate
        drawn = self._draw_before_change(request, now, gate, body)
        if isinstance(drawn, web.StreamResponse):
            return drawn
        response = self._created.answer(request.path, body, self._orders, self.port_in_delay, now)
        return await self._after_change(request, now, gate, response, body, drawn)

    async def _handle_port_in(self, request: web.Request, now: float) -> web.StreamResponse:
        body = await read_body(request)
        gate = self._gate(request, now, "POST", body)
        if isinstance(gate, web.Response):
            return gate
        response = port_in_answer(
            request.path,
            body,
            self._orders,
            self._fixed,
            self._update_scripts,
            self.port_in_delay,
            now,
        )
        return await self._after_change(request, now, gate, response, body)

    async def _handle_webhook(self, request: web.Request, now: float) -> web.StreamResponse:
        """A subscription call: as a create, a `BEFORE_ACTION` fault changes nothing."""
        method = WEBHOOK_METHODS[request.path]
        body = await read_body(request) if method == "POST" else None
        gate = self._gate(request, now, method, body)
        if isinstance(gate, web.Response):
            return gate
        drawn = self._draw_before_change(request, now, gate, body)
        if isinstance(drawn, web.StreamResponse):
            return drawn
        response = self._webhooks.answer(request.path, request.query, body)
        return await self._after_change(request, now, gate, response, body, drawn)

    def _draw_before_change(
        self, request: web.Request, now: float, gate: tuple[str, str], body: RecordedBody | None
    ) -> web.StreamResponse | tuple[str | None, str | None]:
        """The fault of a call that makes something, drawn before it is made: a
        `BEFORE_ACTION` one is the answer now (nothing made); any other comes after."""
        drawn = self._faults.next(request.path)
        if drawn[0] in BEFORE_ACTION:
            return self._fault_response(request, now, drawn[0], drawn[1], *gate, body)
        return drawn

    async def _after_change(
        self,
        request: web.Request,
        now: float,
        gate: tuple[str, str],
        response: web.Response,
        body: RecordedBody | None,
        drawn: tuple[str | None, str | None] | None = None,
    ) -> web.StreamResponse:
        """The answer, or the fault drawn after the change was made in its place (the worst
        case for a client's retry); `drawn`: the fault a create drew before acting."""
        token, scope = gate
        fault, retry_after = self._faults.next(request.path) if drawn is None else drawn
        if fault is None:
            self._log.add(request, now, response.status, token, scope, body=body)
            return response
        if fault == "stall":
            return await self._stall(request, now, token, scope, lambda _now: response, body)
        return self._fault_response(request, now, fault, retry_after, token, scope, body, response)

    def _gate(
        self, request: web.Request, now: float, method: str, body: RecordedBody | None = None
    ) -> web.Response | tuple[str, str]:
        """Method, a live token of this path's scope, rate limit: a refusal or (token, scope)."""
        if request.method != method:
            self._log.add(request, now, 405, body=body)
            return method_not_allowed(request.method)
        authorization = request.headers.get("Authorization")
        token, scope, denied = self._tokens.check(authorization, request.path, now)
        if denied is not None or token is None or scope is None:
            self._log.add(request, now, 401, token, scope, body=body)
            return error_response(401, denied)
        if self._bucket is not None and not self._bucket.take(now):
            self._log.add(request, now, 429, token, scope, body=body)
            response = error_response(
                429, f"Rate limit exceeded. Retry after {self.retry_after} seconds."
            )
            response.headers["Retry-After"] = self.retry_after
            return response
        return token, scope

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
        index = self._log.add(request, now, 0, token, scope, "stall", body)
        closing = self._closing
        assert closing is not None
        await asyncio.wait((closing,), timeout=self.stall_seconds)
        transport = request.transport
        if closing.done() or transport is None or transport.is_closing():
            if transport is not None:
                transport.abort()
            return web.Response()  # never written: the transport is gone
        response = answer(time.monotonic())
        self._log.answered_late(index, response.status)
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
        answer: web.Response | None = None,
    ) -> web.StreamResponse:
        """The answer of `fault`; `answer` (the right one, if made) is what "envelope" wraps."""
        status = STATUS_FAULTS.get(fault)
        if status is not None:
            response = error_response(status)
            if status == 429 or retry_after is not None:
                response.headers["Retry-After"] = retry_after or self.retry_after
        elif fault == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            self._log.add(request, now, 0, token, scope, fault, body)
            # aiohttp sees the closed transport when writing this and drops it silently.
            return web.Response()
        elif fault == "malformed":
            order_id = request.query.get("OrderId", "")
            cut = ('{"OrderId": ' + json.dumps(order_id) + ', "OrderSta').encode()
            response = web.Response(body=cut, content_type=JSON)
        elif fault == "envelope":
            if answer is None:  # not an endpoint with an answer to wrap
                answer = error_response(400)
            response = enveloped(answer) if answer.status == 200 else answer
        elif fault == "embedded_error":
            response = embedded_error()
        elif fault == "html":
            response = web.Response(status=502, body=HTML_502, content_type="text/html")
        elif fault == "empty":
            response = web.Response(body=b"", content_type=JSON)
        elif fault == "redirect":
            response = web.Response(
                status=302,
                headers={"Location": f"http://127.0.0.1:{self.port}/elsewhere"},
            )
        else:  # "huge"
            response = web.Response(body=self._huge_body(request), content_type=JSON)
        self._log.add(request, now, response.status, token, scope, fault, body)
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
        return order_dict(order_id, iso(self._started_wall), status, None, "Provision", ())

    def _answer(self, request: web.Request, now: float) -> web.Response:
        ids = request.query.getall("OrderId", [])
        if not ids or not ids[0]:
            return error_response(400, "The OrderId field is required.")
        if len(ids) > 1:
            return error_response(400, "Exactly one OrderId must be given.")
        order_id = ids[0]
        fixed = self._fixed.get(order_id)
        if fixed is not None:
            return fixed.response()
        order = self._orders.get(order_id)
        if order is not None:
            return web.Response(body=order.body(now), content_type=JSON)
        if self.default_status is not None:
            body = json.dumps(self._default_dict(order_id, self.default_status)).encode()
            return web.Response(body=body, content_type=JSON)
        return error_response(404)
