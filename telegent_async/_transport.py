"""The send path of `TelegentClient`: auth, budget, connection slot, attempt, verdict.

Every call of the client ends in `_Transport._send`, which only does I/O: what an attempt's
result means (return, re-authenticate, retry after a delay, pause the client, raise) is
decided by `_retry.decide_attempt`, a pure function. `TelegentClient` (its public methods)
derives from `_Transport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import aiohttp
import attrs
from yarl import URL

from . import _portin, _validate
from ._auth import TokenAuth
from ._budgets.base import Budget
from ._errors import (
    BudgetUnavailableError,
    ClientClosedError,
    ResponseDecodeError,
    TelegentError,
    TransportError,
    TransportTimeoutError,
)
from ._models import Order, decode_order
from ._retry import (
    AttemptVerdict,
    HTTPAnswer,
    Raise,
    Reauthenticate,
    Retry,
    RetryRules,
    Return,
    decide_attempt,
)
from ._stats import Counters, retry_reason
from ._telemetry import Telemetry
from ._timing import PollPolicy
from ._watchdog import AttemptWatchdog

__all__ = ["MAX_RESPONSE_BYTES", "_Transport"]

logger = logging.getLogger("telegent_async")

#: A body larger than this is refused unread: an order is a few hundred bytes.
MAX_RESPONSE_BYTES = 1 << 20
# The attempt timeout is the client's `AttemptWatchdog`, not aiohttp's (see `_watchdog`).
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None)
CALL_TIMED_OUT = "the call's timeout passed before an answer"

_T = TypeVar("_T")


class _Transport:
    """What a client needs to send requests; `TelegentClient.__init__` sets it all."""

    timeout: float
    max_retries: int
    max_connections: int
    max_retry_after: float
    retry_policy: PollPolicy
    _auth: TokenAuth
    _budget: Budget
    _slots: asyncio.Semaphore
    _watchdog: AttemptWatchdog
    _requesters: weakref.WeakSet[asyncio.Task[Any]]
    _counters: Counters
    _telemetry: Telemetry | None
    _trace_configs: list[aiohttp.TraceConfig] | None
    _own_session: bool
    _session: aiohttp.ClientSession | None
    _closed: bool
    base_url: URL
    _order_url: URL
    _order_scope: str

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                headers={"User-Agent": "telegent-async", "Accept": "application/json"},
                trace_configs=self._trace_configs,
            )
        return self._session

    async def _post_json(self, url: str, body: dict[str, str]) -> tuple[int, bytes, str | None]:
        # Token requests take the budget's first free slot: the queued calls wait for the token.
        self._counters.token_requests += 1
        dates: list[str | None] = []
        status, answer = await self._send(
            "POST",
            url,
            _status_and_body,
            json_body=body,
            priority=True,
            on_headers=lambda headers: dates.append(headers.get("Date")),
        )
        return status, answer, dates[-1] if dates else None

    async def _send(
        self,
        method: str,
        url: Any,
        decode: Callable[[int, bytes], _T],
        *,
        params: dict[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        scope: str | None = None,
        priority: bool = False,
        secrets: tuple[str, ...] = (),
        on_headers: Callable[[Mapping[str, str]], None] | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> _T:
        """One logical request: auth, budget, attempts, decoding and retries.

        Returns what `decode` makes of a 2xx answer. A `ResponseDecodeError` from `decode` (a
        garbled answer: a proxy's HTML, truncated JSON) is retried like a 5xx, so `decode` may
        raise it only for requests that are safe to repeat; an `APIStatusError` from `decode`
        (an error body inside a 2xx) is handled as an answer with that status. `secrets`
        (values the request carries) are masked in every answer before it is read. `on_headers`
        sees the headers of each 2xx answer (the token's `Date`). `deadline` (loop time) bounds
        every wait of the call: token, budget, attempts, backoff.
        """
        session = self._open()
        loop = asyncio.get_running_loop()
        auth, budget, counters = self._auth, self._budget, self._counters
        rules = self._retry_rules(max_retries)
        attempt = 0
        reauthenticated = not auth.renews_on_401  # a static token gets no second chance
        previous: TelegentError | None = None  # the last attempt's failure, if any
        headers: dict[str, str] | None = None
        requester = asyncio.current_task()

        def judge(result: HTTPAnswer | TelegentError) -> AttemptVerdict[_T]:
            return decide_attempt(
                result,
                decode,
                attempt=attempt,
                rules=rules,
                can_reauthenticate=bool(scope and headers and not reauthenticated),
                now=datetime.now(timezone.utc),
                time_left=None if deadline is None else deadline - loop.time(),
            )

        while True:
            headers = None
            if scope is not None:
                headers = auth.headers_now(scope) or await _by(
                    deadline, auth.headers(scope), previous, budget
                )
            attempt_timeout = self.timeout
            try:
                # A connection of ours first, then the budget's start: a request starts when
                # the budget says, never later waiting for a connection, so the server counts
                # it in the window the budget counted it in. Token requests (rare) take no
                # connection of ours: callers holding one may be waiting for that very token.
                async with (
                    contextlib.nullcontext() if priority else _slot(self._slots, deadline, previous)
                ):
                    if not budget.open_now(loop.time()):
                        await _by(deadline, budget.acquire(priority=priority), previous, budget)
                        if scope is not None:  # the wait may have outlived the token
                            headers = await _by(deadline, auth.headers(scope), previous, budget)
                    if self._closed:  # while this call waited
                        raise ClientClosedError()
                    if deadline is not None:  # what is left of the call, the waits taken
                        attempt_timeout = min(attempt_timeout, deadline - loop.time())
                        if attempt_timeout <= 0:
                            raise TransportTimeoutError(CALL_TIMED_OUT) from previous
                    counters.requests += 1
                    if requester is not None:
                        self._requesters.add(requester)
                    started = loop.time()
                    with counters.cancellable(), self._watchdog.watch(attempt_timeout):
                        async with session.request(
                            method,
                            url,
                            params=params,
                            json=json_body,
                            headers=headers,
                            allow_redirects=False,
                            raise_for_status=False,  # a caller's session may set it: we classify
                            timeout=_NO_AIOHTTP_TIMEOUT,
                        ) as response:
                            if _plain_and_small(response):
                                body = await response.read()
                            else:
                                body = await _read_capped(response)
                            answer = HTTPAnswer(response.status, response.headers, body)
                    counters.by_class[answer.status // 100] += 1
                    if secrets:
                        answer = attrs.evolve(answer, body=_portin.redact(answer.body, secrets))
                    if on_headers is not None and 200 <= answer.status < 300:
                        on_headers(answer.headers)
                    verdict = judge(answer)
                    # Paused before the connection is free for the next request.
                    if isinstance(verdict, (Retry, Raise)) and verdict.pause is not None:
                        logger.info(
                            "429 rate limited: pausing the client for %.2f s", verdict.pause
                        )
                        await budget.pause(verdict.pause, started=started)
                        counters.rate_limit_pauses += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                counters.by_class[0] += 1
                failure = _transport_error(method, exc, attempt_timeout)
                verdict = judge(failure)
            if isinstance(verdict, Return):
                return verdict.value
            if isinstance(verdict, Reauthenticate):
                assert scope is not None and headers is not None  # or it could not re-authenticate
                logger.debug("401 on %s: fetching a new token once", method)
                auth.discard(scope, headers)
                reauthenticated = True
                counters.retried("401")
                continue
            if isinstance(verdict, Raise):
                raise verdict.error
            attempt += 1
            previous = verdict.failure
            reason = retry_reason(verdict.failure)
            counters.retried(reason)
            if self._telemetry is not None and scope is not None:  # not a token request's
                self._telemetry.retrying(attempt, reason, verdict.delay)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "retry %d/%d of %s %s in %.2f s after: %s",
                    attempt, rules.max_retries, method, _describe(url, params), verdict.delay,
                    verdict.failure,
                )  # fmt: skip
            await asyncio.sleep(verdict.delay)

    def _endpoint(self, path: str) -> URL:
        # A root URL's path is "/": joined naively it would send `//numbers/order`.
        return self.base_url.with_path(self.base_url.path.rstrip("/") + path)

    def _lookup(
        self, order_id: str, deadline: float | None, retries: int | None
    ) -> Coroutine[Any, Any, Order]:
        # A plain function handing back `_send`'s coroutine: no extra frame per lookup.
        def decode(status: int, body: bytes) -> Order:
            return decode_order(status, body, order_id)

        return self._send(
            "GET",
            self._order_url,
            decode,
            params={"OrderId": order_id},
            scope=self._order_scope,
            deadline=deadline,
            max_retries=retries,
        )

    def _call_bounds(
        self, timeout: float | None, max_retries: int | None
    ) -> tuple[float | None, int | None]:
        """A call's `timeout=` as a loop-time deadline, and its `max_retries=`, both checked."""
        if max_retries is not None:
            max_retries = _validate.int_at_least("max_retries", max_retries, 0)
        if timeout is None:
            return None, max_retries
        timeout = _validate.positive_number("timeout", timeout)
        return asyncio.get_running_loop().time() + timeout, max_retries

    def _retry_rules(self, max_retries: int | None) -> RetryRules:
        """This call's retry rules: the client's, with its own `max_retries` if it has one."""
        retries = self.max_retries if max_retries is None else max_retries
        return RetryRules(retries, self.retry_policy, self.max_retry_after)


def _slot(
    slots: asyncio.Semaphore, deadline: float | None, failure: TelegentError | None
) -> contextlib.AbstractAsyncContextManager[object]:
    """A pooled connection's slot; a call with a deadline waits for it only until then."""
    return slots if deadline is None else _slot_by(slots, deadline, failure)


@contextlib.asynccontextmanager
async def _slot_by(
    slots: asyncio.Semaphore, deadline: float, failure: TelegentError | None
) -> AsyncIterator[None]:
    await _by(deadline, slots.acquire(), failure)
    try:
        yield
    finally:
        slots.release()


async def _by(
    deadline: float | None,
    step: Awaitable[_T],
    failure: TelegentError | None = None,
    budget: Budget | None = None,
) -> _T:
    """Await one wait of a call (a token, a budget slot) within the call's deadline. A
    deadline that passes while `budget`'s Redis is away (a token request waits for the
    budget too) is `BudgetUnavailableError`: nothing was sent."""
    if deadline is None:
        return await step
    try:
        return await asyncio.wait_for(step, deadline - asyncio.get_running_loop().time())
    except asyncio.TimeoutError:
        outage = None if budget is None else budget.outage
        if outage is not None and outage.error is not None:
            raise BudgetUnavailableError(
                "the budget's Redis could not be reached before the call's timeout"
            ) from outage.error
        raise TransportTimeoutError(CALL_TIMED_OUT) from failure


def _status_and_body(status: int, body: bytes) -> tuple[int, bytes]:
    """The `decode` of a request whose caller reads the answer itself (a token request)."""
    return status, body


def _plain_and_small(response: aiohttp.ClientResponse) -> bool:
    """True when the body can be read whole: its exact size is known and within the cap.

    A compressed body's Content-Length counts compressed bytes, so it goes through
    `_read_capped`, which counts the inflated ones.
    """
    length = response.content_length
    return (
        length is not None
        and length <= MAX_RESPONSE_BYTES
        and "Content-Encoding" not in response.headers
    )


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The body, refused once it grows past MAX_RESPONSE_BYTES, without reading the rest."""
    size = response.content_length or 0
    chunks: list[bytes] = []
    if size <= MAX_RESPONSE_BYTES:
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                break
            chunks.append(chunk)
    if size > MAX_RESPONSE_BYTES:
        raise ResponseDecodeError(
            f"response larger than {MAX_RESPONSE_BYTES} bytes refused",
            status_code=response.status,
            body="",
        )
    return b"".join(chunks)


def _transport_error(method: str, exc: BaseException, timeout: float) -> TransportError:
    if isinstance(exc, asyncio.TimeoutError):
        error: TransportError = TransportTimeoutError(
            f"{method} attempt timed out after {timeout:g} s"
        )
    else:
        error = TransportError(f"{method} failed: {type(exc).__name__}: {exc}")
    # aiohttp's response errors hold the request's headers (the bearer token among them) in
    # `request_info`: chaining one would put the token in every traceback of this error.
    if not isinstance(exc, aiohttp.ClientResponseError):
        error.__cause__ = exc
    return error


def _describe(url: Any, params: dict[str, str] | None) -> str:
    path = str(getattr(url, "path", url))
    return f"{path} {params['OrderId']!r}" if params and "OrderId" in params else path


def _connections_allowed(session: aiohttp.ClientSession | None, wanted: int) -> int:
    """`wanted`, capped at the pool of a caller's session (0 is aiohttp's "no limit")."""
    connector = session.connector if session is not None else None
    if connector is None:
        return wanted
    return min([wanted, *(n for n in (connector.limit, connector.limit_per_host) if n > 0)])


def _trace_configs(
    configs: Iterable[aiohttp.TraceConfig] | None, session: aiohttp.ClientSession | None
) -> list[aiohttp.TraceConfig] | None:
    """The aiohttp trace configs for the session the client creates (none with a caller's)."""
    if configs is None:
        return None
    if session is not None:
        raise TypeError(
            "trace_configs only applies to a session the client creates: "
            "give them to your own session instead"
        )
    configs = list(configs)
    for config in configs:
        if not isinstance(config, aiohttp.TraceConfig):
            raise TypeError(f"trace_configs must hold aiohttp.TraceConfig, not {type(config)}")
    return configs
