"""`TelegentClient`: the one async session manager that every lookup and wait goes through.

A request passes, in order: argument check -> auth -> account budget -> connection slot ->
HTTP attempt -> decode. Failures the API calls transient are retried here, with Telegent's
advised backoff; everything else becomes a typed error at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import aiohttp
import attrs
from yarl import URL

from . import _portin, _validate
from ._auth import CredentialsAuth, StaticTokenAuth, TokenAuth
from ._budget import Budget, LocalBudget
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TIMEOUT,
    Credentials,
    credentials_from,
)
from ._errors import (
    BadRequestError,
    ClientClosedError,
    ResponseDecodeError,
    TelegentError,
    TransportError,
)
from ._models import Order, OrderOutcome, OrderStatus, decode_order
from ._poller import OrderStream, run_workers, watch_order
from ._portin import BillingAddress, PortInCancel, PortInUpdate
from ._retry import (
    Answer,
    Raise,
    Reauthenticate,
    Retry,
    RetryRules,
    Return,
    Verdict,
    decide_attempt,
)
from ._timing import PollPolicy
from ._watchdog import AttemptWatchdog

__all__ = ["DEFAULT_BASE_URL", "MAX_RESPONSE_BYTES", "TelegentClient"]

logger = logging.getLogger("telegent_async")

#: A body larger than this is refused unread: an order is a few hundred bytes.
MAX_RESPONSE_BYTES = 1 << 20
ORDER_PATH = "/numbers/order"
# The attempt timeout is the client's `AttemptWatchdog`, not aiohttp's (see `_watchdog`).
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None)
TOKEN_PATH = "/oauth2/tokens"

_T = TypeVar("_T")

OnUpdate = Callable[[Order], "Awaitable[object] | object"]


class TelegentClient:
    """An async client for Telegent's order API. Use it as `async with TelegentClient(...)`.

    Credentials: a bearer `token`, or `account_key` + `account_secret` (the client fetches,
    caches and renews scoped tokens). Missing arguments fall back to the environment variables
    `TELEGENT_TOKEN`, `TELEGENT_ACCOUNT_KEY`, `TELEGENT_ACCOUNT_SECRET`, `TELEGENT_BASE_URL`.

    Defaults follow Telegent's documentation: 50 requests in any rolling minute (the standard
    tier; `requests_per_minute=` builds a `LocalBudget`, `budget=` takes a `LocalBudget` or a
    `RedisBudget` shared by every worker of the account),
    5 retries of transient failures with 1 s doubling to 30 s (`retry_policy`), a Retry-After
    honoured up to `max_retry_after` seconds, and 30 s per HTTP attempt. Waits that pass no
    `policy` poll at `poll_policy` (`PollPolicy.PROVISION`: 1 s doubling to 15 s).

    Args:
        token: A bearer token (used as is, never renewed).
        account_key: The account key: with `account_secret`, the client fetches, caches and
            renews a token per endpoint.
        account_secret: The account secret.
        base_url: The API root (`https://api.telegent.com/v1.0`).
        timeout: Seconds for one HTTP attempt.
        max_retries: Retries of a transient failure (408, 429, 5xx, connection errors and
            attempt timeouts), per request.
        requests_per_minute: The client-wide budget shared by every call; None: unlimited
            (429 pauses still apply).
        max_connections: Requests in flight at once.
        session: Your own `aiohttp.ClientSession`, which the client uses but does not close.
            Its connector's pool caps the client's concurrency: `max_connections` becomes at
            most the connector's `limit` and `limit_per_host`, because an attempt's `timeout`
            starts before aiohttp hands out a pooled connection. Traffic of your own on that
            session can still make the client's attempts wait for a connection: give the
            client a session of its own.
        allow_insecure: Allow an `http://` base URL, and then only for a loopback host.
        retry_policy: The cadence between retries.
        max_retry_after: The longest Retry-After honoured, in seconds.
        budget: A `LocalBudget` or a `RedisBudget` (shared by every worker of the account)
            instead of the one `requests_per_minute` builds; not with `requests_per_minute`.
        poll_policy: The poll cadence of waits that pass no `policy`.

    Raises:
        ValueError: A bad argument, or no credentials at all (`TypeError` for a wrong type).
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        account_key: str | None = None,
        account_secret: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: aiohttp.ClientSession | None = None,
        allow_insecure: bool = False,
        retry_policy: PollPolicy = PollPolicy.RETRY,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        budget: Budget | None = None,
        poll_policy: PollPolicy = PollPolicy.PROVISION,
    ) -> None:
        self.timeout = _validate.positive_number("timeout", timeout)
        self.max_retries = _validate.int_at_least("max_retries", max_retries, 0)
        self.max_connections = _validate.int_at_least("max_connections", max_connections, 1)
        self.max_retry_after = _validate.positive_number("max_retry_after", max_retry_after)
        if not isinstance(retry_policy, PollPolicy):
            raise TypeError("retry_policy must be a PollPolicy")
        if not isinstance(poll_policy, PollPolicy):
            raise TypeError("poll_policy must be a PollPolicy")
        self.poll_policy = poll_policy
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError("session must be an aiohttp.ClientSession or None")
        self.retry_policy = retry_policy
        self.max_connections = _connections_allowed(session, self.max_connections)
        settings = credentials_from(token, account_key, account_secret, base_url)
        self.base_url = _validate.api_base_url(settings.base_url, allow_insecure)
        self._order_url = self._endpoint(ORDER_PATH)
        self._order_scope = str(self._order_url)
        self._auth = self._make_auth(settings)
        self._budget = _budget_of(budget, requests_per_minute)
        self._slots = asyncio.Semaphore(self.max_connections)
        self._watchdog = AttemptWatchdog()
        self._own_session = session is None
        self._session = session
        self._closed = False

    def _make_auth(self, settings: Credentials) -> TokenAuth:
        if settings.token is not None:
            return StaticTokenAuth(_validate.credential("token", settings.token))
        token_url = str(self._endpoint(TOKEN_PATH))
        return CredentialsAuth(
            _validate.credential("account_key", settings.account_key),
            _validate.credential("account_secret", settings.account_secret),
            token_url,
            self._post_json,
            retry_policy=self.retry_policy,
            max_retries=self.max_retries,
        )

    def _endpoint(self, path: str) -> URL:
        # A root URL's path is "/": joined naively it would send `//numbers/order`.
        return self.base_url.with_path(self.base_url.path.rstrip("/") + path)

    def __repr__(self) -> str:
        mode = "credentials" if isinstance(self._auth, CredentialsAuth) else "token"
        return f"<TelegentClient base_url={str(self.base_url)!r} auth={mode}>"

    @property
    def budget(self) -> Budget:
        """The account budget (read its `rate` and `paused_until` for monitoring)."""
        return self._budget

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> TelegentClient:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                headers={"User-Agent": "telegent-async", "Accept": "application/json"},
            )
        return self._session

    async def aclose(self) -> None:
        """Stop token requests under way and close the session (unless it was given to us)."""
        if self._closed:
            return
        self._closed = True
        self._watchdog.close()
        await self._auth.aclose()
        try:
            await self._budget.aclose()
        finally:
            if self._own_session and self._session is not None:
                await self._session.close()

    # -- lookups ---------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> Order:
        """Look an order up once. Raises a `TelegentError` subclass if that fails.

        Args:
            order_id: The order's ID (`JNUOID-...`).
        """
        order_id = _validate.order_id(order_id)

        def decode(status: int, body: bytes) -> Order:
            return decode_order(status, body, order_id)

        return await self._send(
            "GET", self._order_url, decode, params={"OrderId": order_id}, scope=self._order_scope
        )

    async def get_orders(self, order_ids: Iterable[str]) -> list[OrderOutcome]:
        """Look many orders up concurrently: one outcome per input, in input order.

        Every ID is checked before any request; each distinct ID is looked up once; one
        order's failure is its outcome's `error` and does not stop the others.

        Args:
            order_ids: The orders' IDs (not a single string).
        """
        ids = _checked_ids(order_ids)
        distinct = list(dict.fromkeys(ids))
        outcomes: dict[str, OrderOutcome] = {}

        async def look_up(order_id: str) -> None:
            try:
                outcomes[order_id] = OrderOutcome(order_id, await self.get_order(order_id))
            except TelegentError as exc:
                outcomes[order_id] = OrderOutcome(order_id, None, exc)

        await run_workers(look_up, distinct, self.max_connections)
        return [outcomes[order_id] for order_id in ids]

    # -- waiting ---------------------------------------------------------------------------

    async def wait_for_order(
        self,
        order_id: str,
        *,
        timeout: float | None = 600.0,
        policy: PollPolicy | None = None,
        on_update: OnUpdate | None = None,
    ) -> Order:
        """Poll until the order settles and return it, whatever the outcome.

        Transient failures do not end the wait; 400/401/403/404/405 do.

        Args:
            order_id: The order's ID.
            timeout: A total deadline in seconds (None: wait until settled); past it,
                `OrderWaitTimeout` carries the last order seen.
            policy: The poll cadence (None: the client's `poll_policy`).
            on_update: Called (sync or async) with the order once per status change.
        """
        last: Order | None = None
        changes = watch_order(self, order_id, timeout=timeout, policy=self._policy(policy))
        async with contextlib.aclosing(changes):
            async for order in changes:
                last = order
                if on_update is not None:
                    result = on_update(order)
                    if inspect.isawaitable(result):  # a plain callback may return anything
                        await result
        assert last is not None  # watch_order ends only after yielding the settled order
        return last

    def watch_order(
        self, order_id: str, *, timeout: float | None = 600.0, policy: PollPolicy | None = None
    ) -> AsyncGenerator[Order, None]:
        """Yield the first observation of an order and then each status change, until settled.

        Args:
            order_id: The order's ID.
            timeout: As in `wait_for_order`.
            policy: As in `wait_for_order`.
        """
        return watch_order(self, order_id, timeout=timeout, policy=self._policy(policy))

    def wait_for_orders(
        self,
        order_ids: Iterable[str],
        *,
        timeout: float | None = 3600.0,
        policy: PollPolicy | None = None,
    ) -> OrderStream:
        """Wait for many orders; yield one `OrderOutcome` per distinct ID as each settles.

        Scales to 100,000 IDs: a scheduler polls at most `max_connections` orders at once and
        keeps about 30 to 530 bytes per pending order (README: 31 B before its first answer,
        525 B once it holds one). A 404 or the deadline becomes that order's outcome `error`.
        Leaving the `async for` early (or `async with ... as stream`) stops every poll.

        Args:
            order_ids: The orders' IDs (not a single string); each distinct one is polled.
            timeout: Seconds until every order still pending times out (its outcome's
                `error` is `OrderWaitTimeout`), or None.
            policy: The poll cadence (None: the client's `poll_policy`).
        """
        ids = _checked_ids(order_ids)
        return OrderStream(self, ids, timeout=timeout, policy=self._policy(policy))

    def _policy(self, policy: PollPolicy | None) -> PollPolicy | None:
        """A wait's own policy, else the client's `poll_policy` (checked by the poller)."""
        return self.poll_policy if policy is None else policy

    # -- the port-in lifecycle -------------------------------------------------------------

    async def update_port_in(
        self,
        order_id: str,
        *,
        current_account_number: str | None = None,
        current_account_password: str | None = None,
        current_carrier_name: str | None = None,
        subscriber_name: str | None = None,
        port_in_date: date | str | None = None,
        current_billing_address: BillingAddress | None = None,
        iccid: str | None = None,
        target_portin_classification: str | None = None,
    ) -> PortInUpdate:
        """Correct a port-in in place (`POST /numbers/portin/update`), e.g. after a rejection.

        Sends the order ID and only the fields given, under Telegent's JSON names; at least one
        is required. `port_in_date` is a `datetime.date` or `"YYYY-MM-DD"`. Which fields fix a
        rejection: `order.carrier_error.update_fields`. The order goes back to `Submitted`:
        wait for it again.

        Retried like a lookup (408, 429, 5xx, connection errors and attempt timeouts, with the
        same backoff): an update resends the same data, so repeating it is safe. The account
        number and password never appear in logs, `repr` or exception text, even when an error
        answer quotes them back.

        Args:
            order_id: The port-in's ID.
            current_account_number: The account number at the losing carrier.
            current_account_password: The account PIN or password at the losing carrier.
            current_carrier_name: The losing carrier's name.
            subscriber_name: The name on the losing carrier's account.
            port_in_date: The requested port date: a `datetime.date` or `"YYYY-MM-DD"`.
            current_billing_address: A `BillingAddress` with the lines being corrected.
            iccid: The SIM's ICCID.
            target_portin_classification: Telegent's `TargetPortinClassification`.
        """
        body = _portin.update_body(
            order_id,
            {
                "current_account_number": current_account_number,
                "current_account_password": current_account_password,
                "current_carrier_name": current_carrier_name,
                "subscriber_name": subscriber_name,
                "port_in_date": port_in_date,
                "current_billing_address": current_billing_address,
                "iccid": iccid,
                "target_portin_classification": target_portin_classification,
            },
        )
        fields = [name for name in body if name != "OrderId"]
        logger.debug("updating port-in %r: %s", body["OrderId"], ", ".join(fields))
        status, answer = await self._post_port_in(_portin.UPDATE_PATH, body)
        return _portin.decode_answer(PortInUpdate, status, answer, body["OrderId"])

    async def cancel_port_in(self, order_id: str) -> PortInCancel:
        """Cancel a port-in (`POST /numbers/portin/cancel`). Final: it cannot be reopened.

        Retried like a lookup: a cancel is final, so repeating it is safe. Idempotent: when
        Telegent refuses with 400 because the order is already cancelled (say a retry after
        the first try went through unanswered), a lookup confirms `Cancelled` and that counts
        as success. Any other 400 (a completed order) is raised as `BadRequestError`.

        Args:
            order_id: The port-in's ID.
        """
        body = _portin.cancel_body(order_id)
        order_id = body["OrderId"]
        try:
            status, answer = await self._post_port_in(_portin.CANCEL_PATH, body)
        except BadRequestError as refused:
            order = await self.get_order(order_id)
            if order.status is not OrderStatus.CANCELLED:
                raise
            logger.info("port-in %r was already cancelled (%s)", order_id, refused.message)
            return PortInCancel(order_id, order.raw_status, refused.message, order.raw)
        return _portin.decode_answer(PortInCancel, status, answer, order_id)

    async def _post_port_in(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """POST to a port-in endpoint with a token of its own scope; secrets masked in answers."""
        url = self._endpoint(path)
        secrets = _portin.secrets_of(body)
        return await self._send(
            "POST", url, _status_and_body, json_body=body, scope=str(url), secrets=secrets
        )

    # -- transport -------------------------------------------------------------------------

    async def _post_json(self, url: str, body: dict[str, str]) -> tuple[int, bytes, str | None]:
        # Token requests take the budget's first free slot: the queued calls wait for the token.
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
    ) -> _T:
        """One logical request: auth, budget, attempts, decoding and retries.

        Returns what `decode` makes of a 2xx answer. A `ResponseDecodeError` from `decode` (a
        garbled answer: a proxy's HTML, truncated JSON) is retried like a 5xx, so `decode` may
        raise it only for requests that are safe to repeat; an `APIStatusError` from `decode`
        (an error body inside a 2xx) is handled as an answer with that status. `secrets`
        (values the request carries) are masked in every answer before it is read. `on_headers`
        sees the headers of each 2xx answer (the token's `Date`).
        """
        session = self._open()
        loop = asyncio.get_running_loop()
        auth, budget, rules = self._auth, self._budget, self._retry_rules()
        attempt = 0
        reauthenticated = not auth.renews_on_401  # a static token gets no second chance
        headers: dict[str, str] | None = None

        def judge(result: Answer | TelegentError) -> Verdict[_T]:
            return decide_attempt(
                result,
                decode,
                attempt=attempt,
                rules=rules,
                can_reauthenticate=bool(scope and headers and not reauthenticated),
                now=datetime.now(timezone.utc),
            )

        while True:
            headers = None
            if scope is not None:
                headers = auth.headers_now(scope) or await auth.headers(scope)
            try:
                # A connection of ours first, then the budget's start: a request starts when
                # the budget says, never later waiting for a connection, so the server counts
                # it in the window the budget counted it in. Token requests (rare) take no
                # connection of ours: callers holding one may be waiting for that very token.
                async with contextlib.nullcontext() if priority else self._slots:
                    if not budget.open_now(loop.time()):
                        await budget.acquire(priority=priority)
                        if scope is not None:  # the wait may have outlived the token
                            headers = await auth.headers(scope)
                    if self._closed:  # while this call waited
                        raise ClientClosedError()
                    started = loop.time()
                    with self._watchdog.watch(self.timeout):
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
                            answer = Answer(response.status, response.headers, body)
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
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                verdict = judge(_transport_error(method, exc, self.timeout))
            if isinstance(verdict, Return):
                return verdict.value
            if isinstance(verdict, Reauthenticate):
                assert scope is not None and headers is not None  # or it could not re-authenticate
                logger.debug("401 on %s: fetching a new token once", method)
                auth.discard(scope, headers)
                reauthenticated = True
                continue
            if isinstance(verdict, Raise):
                raise verdict.error
            attempt += 1
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "retry %d/%d of %s %s in %.2f s after: %s",
                    attempt, rules.max_retries, method, _describe(url, params), verdict.delay,
                    verdict.failure,
                )  # fmt: skip
            await asyncio.sleep(verdict.delay)

    def _retry_rules(self) -> RetryRules:
        """The retry rules of a call (the client's own)."""
        return RetryRules(self.max_retries, self.retry_policy, self.max_retry_after)


def _budget_of(budget: object, requests_per_minute: float | None) -> Budget:
    """`budget=` as given, else a `LocalBudget` of `requests_per_minute` (50 by default)."""
    if budget is None:
        return LocalBudget(requests_per_minute)
    if not callable(getattr(budget, "acquire", None)) or not callable(
        getattr(budget, "pause", None)
    ):
        raise TypeError(
            f"budget must be a LocalBudget or a RedisBudget, not {type(budget).__name__}"
        )
    if requests_per_minute != DEFAULT_REQUESTS_PER_MINUTE:
        raise ValueError("give budget= or requests_per_minute=, not both (the budget has its rate)")
    return budget  # type: ignore[return-value]


def _connections_allowed(session: aiohttp.ClientSession | None, wanted: int) -> int:
    """`wanted`, capped at the pool of a caller's session (0 is aiohttp's "no limit")."""
    connector = session.connector if session is not None else None
    if connector is None:
        return wanted
    return min([wanted, *(n for n in (connector.limit, connector.limit_per_host) if n > 0)])


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


def _checked_ids(order_ids: Iterable[str]) -> list[str]:
    if isinstance(order_ids, (str, bytes)):
        raise TypeError("order_ids must be an iterable of IDs, not a single string")
    return [_validate.order_id(order_id) for order_id in order_ids]


def _transport_error(method: str, exc: BaseException, timeout: float) -> TransportError:
    if isinstance(exc, asyncio.TimeoutError):
        error = TransportError(f"{method} attempt timed out after {timeout:g} s")
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
