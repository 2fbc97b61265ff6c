"""`TelegentClient`: the one async session manager that every lookup and wait goes through.

A request passes, in order: argument check -> auth -> connection slot -> account budget ->
HTTP attempt -> decode (the send path: the `_transport.Transport` the client holds, which every
call uses). Failures the API calls transient are retried there, with Telegent's advised backoff
(`_retry`); everything else becomes a typed error at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeAlias

import aiohttp

from . import _validate
from ._auth import CredentialsAuth, StaticTokenAuth, TokenAuth
from ._budgets import budget_of
from ._budgets.base import Budget, rate_and_pause
from ._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TIMEOUT,
    Credentials,
    credentials_from,
    insecure_allowed,
)
from ._create_calls import CreateCalls
from ._errors import TelegentError
from ._models import Order, OrderOutcome, order_from_json
from ._poller import OrderStream, run_workers, watch_order
from ._portin_calls import PortInCalls
from ._request import Request, lookup_url
from ._stats import ClientStats
from ._telemetry import telemetry
from ._timing import PollPolicy, checked_policy
from ._transport import Transport
from ._webhook_calls import WebhookCalls

__all__ = ["OnUpdate", "TelegentClient"]


ORDER_PATH = "/numbers/order"
TOKEN_PATH = "/oauth2/tokens"


OnUpdate: TypeAlias = Callable[[Order], "Awaitable[object] | object"]
"""The type of `wait_for_order(on_update=...)`: called with each new `Order` (once per status
change); a plain function or a coroutine function (its awaitable is awaited)."""


class TelegentClient(PortInCalls, CreateCalls, WebhookCalls):
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
        allow_insecure: Allow an `http://` base URL, and then only for a loopback host
            (`TELEGENT_ALLOW_INSECURE=1` in the environment does the same).
        retry_policy: The cadence between retries.
        max_retry_after: The longest Retry-After honoured, in seconds.
        trace_configs: aiohttp trace configs for the session the client creates (HTTP spans
            from aiohttp's OpenTelemetry instrumentation); not with `session`.
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
        trace_configs: Iterable[aiohttp.TraceConfig] | None = None,
        budget: Budget | None = None,
        poll_policy: PollPolicy = PollPolicy.PROVISION,
    ) -> None:
        self.timeout = _validate.positive_number("timeout", timeout)
        self.max_retries = _validate.int_at_least("max_retries", max_retries, 0)
        self.max_connections = _validate.int_at_least("max_connections", max_connections, 1)
        self.max_retry_after = _validate.positive_number("max_retry_after", max_retry_after)
        self.retry_policy = checked_policy("retry_policy", retry_policy)
        self.poll_policy = checked_policy("poll_policy", poll_policy)
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError("session must be an aiohttp.ClientSession or None")
        configs = _trace_configs(trace_configs, session)
        self.max_connections = _connections_allowed(session, self.max_connections)
        settings = credentials_from(token, account_key, account_secret, base_url)
        self.base_url = _validate.api_base_url(settings.base_url, insecure_allowed(allow_insecure))
        self._telemetry = telemetry()
        self._transport = transport = Transport(
            self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            max_connections=self.max_connections,
            max_retry_after=self.max_retry_after,
            retry_policy=self.retry_policy,
            budget=budget_of(budget, requests_per_minute),
            session=session,
            trace_configs=configs,
            telemetry=self._telemetry,
        )
        transport.auth = self._make_auth(settings)
        self._order_scope = str(transport.endpoint(ORDER_PATH))
        if self._telemetry is not None:
            self._telemetry.register(self, transport.counters)

    def _make_auth(self, settings: Credentials) -> TokenAuth:
        if settings.token is not None:
            return StaticTokenAuth(_validate.credential("token", settings.token))
        return CredentialsAuth(
            _validate.credential("account_key", settings.account_key),
            _validate.credential("account_secret", settings.account_secret),
            str(self._transport.endpoint(TOKEN_PATH)),
            self._transport.post_token,
            retry_policy=self.retry_policy,
        )

    def __repr__(self) -> str:
        mode = "credentials" if isinstance(self._transport.auth, CredentialsAuth) else "token"
        return f"<TelegentClient base_url={str(self.base_url)!r} auth={mode}>"

    @property
    def budget(self) -> Budget:
        """The account budget (`stats` shows its current rate and pause)."""
        return self._transport.budget

    def has_requested(self, task: object) -> bool:
        """True once `task` has sent a request through this client (its poll reached the
        server), for `wait_for_orders` to tell a timed-out order it never polled.

        Args:
            task: an asyncio task that called this client.
        """
        return task in self._transport.requesters

    @property
    def stats(self) -> ClientStats:
        """Live counters (requests, answers by status class, retries by reason, tokens, 429
        pauses) and the budget's current rate and pause, as a snapshot: read it for a health
        endpoint or a progress line, inside the event loop. Costs nothing until read."""
        now = asyncio.get_running_loop().time()
        transport = self._transport
        return transport.counters.snapshot(*rate_and_pause(transport.budget, now))

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> TelegentClient:
        self._transport.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop token requests under way and close the session (unless it was given to us)."""
        await self._transport.aclose()

    # -- lookups ---------------------------------------------------------------------------

    async def get_order(
        self, order_id: str, *, timeout: float | None = None, max_retries: int | None = None
    ) -> Order:
        """Look an order up once. Raises a `TelegentError` subclass if that fails.

        Args:
            order_id: The order's ID (`JNUOID-...`).
            timeout: Seconds for the whole call (token, budget and backoff waits and every
                retry included), for a caller with a deadline of its own such as a web
                request; past it, `TransportTimeoutError`, or the last failure when the next
                retry could not start in time. None: no bound but the client's.
            max_retries: Replaces the client's `max_retries` for this call (None: the
                client's).
        """
        order_id = _validate.order_id(order_id)
        deadline, retries = None, None
        if timeout is not None or max_retries is not None:
            deadline, retries = self._transport.call_bounds(timeout, max_retries)

        lookup = self._lookup(order_id, deadline, retries)
        traces = self._telemetry
        if traces is not None and traces.tracing():
            return await traces.traced_lookup(order_id, lookup)
        return await lookup

    async def get_orders(self, order_ids: Iterable[str]) -> list[OrderOutcome]:
        """Look many orders up concurrently: one outcome per input, in input order.

        Every ID is checked before any request; each distinct ID is looked up once; one
        order's failure is its outcome's `error` and does not stop the others.

        Args:
            order_ids: The orders' IDs (not a single string).
        """
        ids = _validate.order_ids(order_ids)
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
        changes = self.watch_order(order_id, timeout=timeout, policy=policy)
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
        changes = watch_order(self, order_id, timeout=timeout, policy=self._policy(policy))
        return changes if self._telemetry is None else self._telemetry.observed_wait(changes)

    def wait_for_orders(
        self,
        order_ids: Iterable[str],
        *,
        timeout: float | None = 3600.0,
        policy: PollPolicy | None = None,
    ) -> OrderStream:
        """Wait for many orders; yield one `OrderOutcome` per distinct ID as each settles.

        Scales to 100,000 IDs: a scheduler polls at most `max_connections` orders at once and
        keeps about 30 to 530 bytes per pending order (README: 30 B before its first answer,
        529 B once it holds one). A 404 or the deadline becomes that order's outcome `error`.
        Leaving the `async for` early (or `async with ... as stream`) stops every poll.

        Args:
            order_ids: The orders' IDs (not a single string); each distinct one is polled.
            timeout: Seconds until every order still pending times out (its outcome's
                `error` is `OrderWaitTimeout`), or None.
            policy: The poll cadence (None: the client's `poll_policy`).
        """
        return OrderStream(
            self,
            _validate.order_ids(order_ids),
            timeout=timeout,
            policy=self._policy(policy),
            telemetry=self._telemetry,
        )

    def _lookup(
        self, order_id: str, deadline: float | None, retries: int | None
    ) -> Coroutine[Any, Any, Order]:
        # A plain function handing back `send`'s coroutine: no extra frame per lookup.
        def decode(value: object) -> Order:
            return order_from_json(value, order_id)

        scope = self._order_scope
        request = Request("GET", lookup_url(scope, order_id), scope)
        return self._transport.send(request, decode, deadline=deadline, max_retries=retries)

    def _policy(self, policy: PollPolicy | None) -> PollPolicy:
        """A wait's own policy (checked), else the client's `poll_policy`."""
        return self.poll_policy if policy is None else checked_policy("policy", policy)


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
