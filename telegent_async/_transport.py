"""The send path of `TelegentClient`: auth, budget, connection slot, attempt, verdict.

The client holds one `Transport`; every call (order lookups, token requests, port-in updates
and cancels, creates, webhooks) goes through its one method, `send(request, decode)`: a call
only says how to build its request and whether it may be repeated (`_request.Request`) and
how to decode its body. `send` only does I/O: what an attempt's result means (return,
re-authenticate, retry after a delay, pause the client, raise) is decided by
`_retry.decide_attempt`, and what an answer says by `_answers.read_answer`, both pure.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn, TypeVar

import aiohttp
import attrs
from yarl import URL

from . import _portin, _validate
from ._auth import TokenAuth, token_of
from ._budgets.base import Budget
from ._deadline import CALL_TIMED_OUT, by
from ._error_text import HOLDS_ANSWER, broken_answer, cannot_connect
from ._errors import (
    ClientClosedError,
    ConnectionNotMadeError,
    ResponseDecodeError,
    TelegentError,
    TransportError,
    TransportTimeoutError,
)
from ._request import Request
from ._retry import (
    AttemptVerdict,
    HTTPAnswer,
    Raise,
    Reauthenticate,
    Retry,
    RetryRules,
    Return,
    decide_attempt,
    reads_clock,
)
from ._stats import Counters, retry_reason
from ._telemetry import Telemetry
from ._timing import PollPolicy
from ._watchdog import AttemptWatchdog

__all__ = ["MAX_RESPONSE_BYTES", "Transport"]

logger = logging.getLogger("telegent_async")

#: A body larger than this is refused unread: an order is a few hundred bytes.
MAX_RESPONSE_BYTES = 1 << 20
# The attempt timeout is the client's `AttemptWatchdog`, not aiohttp's (see `_watchdog`).
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None)

_T = TypeVar("_T")


class Transport:
    """The connection pool, budget, tokens and retry rules every call of a client shares.

    Args:
        base_url: The API root; `endpoint` joins paths to it.
        timeout: Seconds for one HTTP attempt.
        max_retries: Retries of a transient failure, per request (a call may pass its own).
        max_connections: Requests in flight at once.
        max_retry_after: The longest Retry-After honoured, in seconds.
        retry_policy: The cadence between retries.
        budget: The account budget every request passes.
        session: A caller's session (not closed here), or None to create one.
        trace_configs: aiohttp trace configs for the session created here.
        telemetry: The process's instruments, or None.

    `auth` (the token provider) is set by the client once it is built, since a credentials
    provider sends its token requests through this very transport.
    """

    auth: TokenAuth

    def __init__(
        self,
        base_url: URL,
        *,
        timeout: float,
        max_retries: int,
        max_connections: int,
        max_retry_after: float,
        retry_policy: PollPolicy,
        budget: Budget,
        session: aiohttp.ClientSession | None,
        trace_configs: list[aiohttp.TraceConfig] | None,
        telemetry: Telemetry | None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_connections = max_connections
        self.max_retry_after = max_retry_after
        self.retry_policy = retry_policy
        # Built once: a call without its own `max_retries` (nearly all) reuses it (0.8 us).
        self._rules = RetryRules(max_retries, retry_policy, max_retry_after)
        self.budget = budget
        self.counters = Counters()
        self.telemetry = telemetry
        self._slots = asyncio.Semaphore(max_connections)
        self._watchdog = AttemptWatchdog(self.counters)
        # Tasks whose request reached the wire: a fan-out's deadline tells an order it polled
        # from one that waited all along (for a connection or the budget) and was never polled.
        self.requesters: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._trace_configs = trace_configs
        self._own_session = session is None
        self._session = session
        self.closed = False

    def open(self) -> aiohttp.ClientSession:
        """The session, created on first use; `ClientClosedError` once closed."""
        if self.closed:
            raise ClientClosedError()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                headers={"User-Agent": "telegent-async", "Accept": "application/json"},
                trace_configs=self._trace_configs,
            )
        return self._session

    async def aclose(self) -> None:
        """Stop token requests under way, close the budget and our own session."""
        if self.closed:
            return
        self.closed = True
        self._watchdog.close()
        await self.auth.aclose()
        try:
            await self.budget.aclose()
        finally:
            if self._own_session and self._session is not None:
                await self._session.close()

    def endpoint(self, path: str) -> URL:
        """The URL of an API path (`/numbers/order`) under `base_url`."""
        # A root URL's path is "/": joined naively it would send `//numbers/order`.
        return self.base_url.with_path(self.base_url.path.rstrip("/") + path)

    async def post_token(
        self, url: str, body: dict[str, str], decode: Callable[[Any], _T]
    ) -> tuple[_T, str | None]:
        """A token request: what `decode` makes of it, and its `Date` header (for the expiry)."""
        # Token requests take the budget's first free slot: the queued calls wait for the token.
        self.counters.token_requests += 1
        dates: list[str | None] = []
        answer = await self.send(
            Request("POST", URL(url), None, json=body, secrets=(body["AccountSecret"],)),
            decode,
            on_headers=lambda headers: dates.append(headers.get("Date")),
        )
        return answer, dates[-1] if dates else None

    async def send(
        self,
        request: Request,
        decode: Callable[[Any], _T],
        *,
        deadline: float | None = None,
        max_retries: int | None = None,
        on_headers: Callable[[Mapping[str, str]], None] | None = None,
    ) -> _T:
        """One logical request: auth, budget, attempts, decoding and retries.

        Returns what `decode` makes of the JSON value of a 2xx answer (see `_request`).
        `deadline` (loop time) bounds every wait of the call: token, budget, attempts,
        backoff. `max_retries` replaces the client's for this call. `on_headers` sees the
        headers of each 2xx answer (the token's `Date`).
        """
        session = self.open()
        loop = asyncio.get_running_loop()
        auth, budget, counters = self.auth, self.budget, self.counters
        rules = (  # a call without its own `max_retries` (nearly all) shares the client's
            self._rules
            if max_retries is None
            else RetryRules(max_retries, self.retry_policy, self.max_retry_after)
        )
        scope, method, secrets = request.scope, request.method, request.secrets
        priority = scope is None  # a token request: the calls queued behind it wait for it
        attempt = 0
        reauthenticated = not auth.renews_on_401  # a static token gets no second chance
        previous: TelegentError | None = None  # the last attempt's failure, if any
        headers: dict[str, str] | None = None
        requester = asyncio.current_task()
        if requester is None:
            raise RuntimeError("a request must be sent from inside an asyncio task")

        while True:
            headers = None
            attempt_timeout = self.timeout
            try:
                # A connection of ours first, then the token, then the budget's start: a
                # request starts when the budget says, never later waiting for a connection,
                # so the server counts it in the window the budget counted it in; and the
                # token is taken after the wait for a connection, which may outlive it (taken
                # before, it was sent stale: tests/test_auth.py). Token requests (rare) take
                # no connection of ours: callers holding one may be waiting for that token.
                # (`acquire` and `release` rather than `async with`: two coroutines less per
                # request, 0.3 us with the context that chose one, timeit 2026-12-06.)
                if not priority:
                    acquiring = self._slots.acquire()
                    await (acquiring if deadline is None else by(deadline, acquiring, previous))
                try:
                    if scope is not None:
                        headers = auth.headers_now(scope) or await by(
                            deadline, auth.headers(scope), previous, budget
                        )
                    if not budget.start_now(loop.time()):
                        await by(deadline, budget.acquire(priority=priority), previous, budget)
                        if scope is not None:  # the wait may have outlived the token
                            headers = await by(deadline, auth.headers(scope), previous, budget)
                    if self.closed:  # while this call waited
                        raise ClientClosedError()
                    if deadline is not None:  # what is left of the call, the waits taken
                        attempt_timeout = min(attempt_timeout, deadline - loop.time())
                        if attempt_timeout <= 0:
                            raise TransportTimeoutError(CALL_TIMED_OUT) from previous
                    counters.requests += 1
                    self.requesters.add(requester)
                    started = loop.time()
                    with self._watchdog.watch(requester, started + attempt_timeout):
                        async with session.request(
                            method,
                            request.url,
                            params=request.params,
                            json=request.json,
                            headers=headers,
                            allow_redirects=False,
                            raise_for_status=False,  # a caller's session may set it: we classify
                            timeout=_NO_AIOHTTP_TIMEOUT,
                        ) as response:
                            if _plain_and_small(response):
                                body = await response.read()
                            elif request.creates is None:
                                body = await _read_capped(response)
                            else:  # refused unread: the order may exist all the same
                                try:
                                    body = await _read_capped(response)
                                except ResponseDecodeError as exc:
                                    raise request.creates.outcome_unknown(exc) from exc
                            answer = HTTPAnswer(response.status, response.headers, body)
                    counters.by_class[answer.status // 100] += 1
                    if secrets:
                        answer = attrs.evolve(answer, body=_portin.redact(answer.body, secrets))
                    if on_headers is not None and 200 <= answer.status < 300:
                        on_headers(answer.headers)
                    verdict = _judge(
                        answer, request, decode, attempt, rules,
                        bool(headers and not reauthenticated), deadline, loop,
                        None if headers is None else token_of(headers),
                    )  # fmt: skip
                    # Paused before the connection is free for the next request.
                    if isinstance(verdict, (Retry, Raise)) and verdict.pause is not None:
                        logger.info(
                            "429 rate limited: pausing the client for %.2f s", verdict.pause
                        )
                        await budget.pause(verdict.pause, started=started)
                        counters.rate_limit_pauses += 1
                finally:
                    if not priority:
                        self._slots.release()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                counters.by_class[0] += 1
                failure = _transport_error(method, exc, attempt_timeout)
                verdict = _judge(
                    failure, request, decode, attempt, rules,
                    bool(headers and not reauthenticated), deadline, loop,
                )  # fmt: skip
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
                _raise_alone(verdict.error)
            attempt += 1
            previous = verdict.failure
            reason = retry_reason(verdict.failure)
            counters.retried(reason)
            if self.telemetry is not None and scope is not None:  # not a token request's
                self.telemetry.retrying(attempt, reason, verdict.delay)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "retry %d/%d of %s %s in %.2f s after: %s",
                    attempt, rules.max_retries, method, _describe(request), verdict.delay,
                    verdict.failure,
                )  # fmt: skip
            await asyncio.sleep(verdict.delay)

    def call_bounds(
        self, timeout: float | None, max_retries: int | None
    ) -> tuple[float | None, int | None]:
        """A call's `timeout=` as a loop-time deadline, and its `max_retries=`, both checked."""
        if max_retries is not None:
            max_retries = _validate.int_at_least("max_retries", max_retries, 0)
        if timeout is None:
            return None, max_retries
        timeout = _validate.positive_number("timeout", timeout)
        return asyncio.get_running_loop().time() + timeout, max_retries


def _judge(
    result: HTTPAnswer | TelegentError,
    request: Request,
    decode: Callable[[Any], _T],
    attempt: int,
    rules: RetryRules,
    can_reauthenticate: bool,
    deadline: float | None,
    loop: asyncio.AbstractEventLoop,
    token: str | None = None,
) -> AttemptVerdict[_T]:
    """`decide_attempt` with the clock read now, if it needs it (a function, not a closure in
    `send`: no closure and cells allocated per request). An answer that may quote the bearer
    `token` sent (`_may_quote`) is judged again with the token masked (on failures only:
    masking every answer would cost ~30 us a lookup)."""
    verdict = decide_attempt(
        result,
        request,
        decode,
        attempt=attempt,
        rules=rules,
        can_reauthenticate=can_reauthenticate,
        now=datetime.now(timezone.utc) if reads_clock(result) else None,
        time_left=None if deadline is None else deadline - loop.time(),
    )
    if token is not None and type(result) is HTTPAnswer and _may_quote(verdict, result, token):
        masked = _portin.redact(result.body, (token,))
        if masked is not result.body:
            result = attrs.evolve(result, body=masked)
            return _judge(
                result, request, decode, attempt, rules, can_reauthenticate, deadline, loop
            )
    return verdict


def _may_quote(verdict: AttemptVerdict[Any], answer: HTTPAnswer, token: str) -> bool:
    """Whether an answer is read again with the bearer `token` masked: a failure (its error
    may quote the answer), or a success that holds the token as it was sent (`raw`)."""
    if isinstance(verdict, Return):
        return token.encode() in answer.body
    return not isinstance(verdict, Reauthenticate)  # that answer is dropped unread


def _raise_alone(error: TelegentError) -> NoReturn:
    """Raise `error` with no implicit `__context__` (its `__cause__`, if any, is kept).

    On Python 3.10 a coroutine resumed after aiohttp handled a parser error can still hold that
    error as "being handled", and a plain `raise` chains it: aiohttp's `HttpProcessingError`
    and `ServerDisconnectedError` quote the bytes and headers they read, a token among them
    (tests/test_secret_echoes.py, found failing on 3.10 only)."""
    try:
        raise error
    except TelegentError:
        error.__context__ = None
        raise  # a re-raise chains nothing


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
    error: TransportError
    if isinstance(exc, asyncio.TimeoutError):
        error = TransportTimeoutError(f"{method} attempt timed out after {timeout:g} s")
    elif isinstance(exc, aiohttp.ClientSSLError):  # before a byte of the request left
        error = ConnectionNotMadeError(f"{method} failed: {type(exc).__name__}: {exc}")
    elif isinstance(exc, aiohttp.ClientConnectorError):  # likewise; no `ssl:default` noise
        error = ConnectionNotMadeError(cannot_connect(method, exc.host, exc.port, exc.os_error))
    else:
        error = TransportError(broken_answer(method, exc))
    if not isinstance(exc, HOLDS_ANSWER):  # it would put the token in every traceback
        error.__cause__ = exc
    return error


def _describe(request: Request) -> str:
    path, params = request.url.path, request.params or request.url.query
    return f"{path} {params['OrderId']!r}" if "OrderId" in params else path
