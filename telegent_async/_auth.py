"""Bearer tokens: a fixed token, or scoped tokens fetched, cached and renewed from credentials.

Telegent scopes a token to one endpoint (`ApiEndpoint`) and has no refresh token, so the
provider keeps one token per scope and fetches it again before `tokenExpiry`. However many
calls need a token at the same moment, one token request is made (single flight), through the
client's one send path (its retries, budget and answer rules). A `successful: false` answer (a
wrong key or secret) is an `AuthenticationError` at once, never asked again: the same secret
would be refused again. A flight that fails is remembered for a backoff shared by every
caller: a failing token endpoint is not asked again once per batch of polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import attrs

from ._errors import AuthenticationError, ClientClosedError, TelegentError
from ._timing import PollPolicy, token_lifetime, token_renewal_delay
from ._validate import credential

__all__ = ["CredentialsAuth", "StaticTokenAuth", "TokenAuth", "token_of"]

logger = logging.getLogger("telegent_async")

#: Sends the token request: (url, JSON body, decode) -> (the token, the answer's `Date` header
#: or None). The client's send path (`Transport.post_token`), with its retries and budget.
PostJson = Callable[
    [str, dict[str, str], Callable[[Any], tuple[str, object]]],
    Awaitable[tuple[tuple[str, object], "str | None"]],
]


class TokenAuth:
    """The interface: the Authorization header for a scope, and what to do after a 401.

    Headers are handed out as one dict per token, built once: the hot path does no string
    work, and `discard` recognises the refused token by identity.
    """

    renews_on_401 = False

    def headers_now(self, scope: str) -> dict[str, str] | None:
        """The header of a fresh token already at hand (no await), else None."""
        raise NotImplementedError

    async def headers(self, scope: str) -> dict[str, str]:
        """The header of a fresh token, fetching one if needed."""
        raise NotImplementedError

    def discard(self, scope: str, headers: dict[str, str]) -> None:
        """The API answered 401 to `headers`: forget that token, so the next call fetches anew."""

    async def aclose(self) -> None:
        """Stop any token request under way."""


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def token_of(headers: dict[str, str]) -> str:
    """The token a header of `TokenAuth.headers` carries."""
    return headers["Authorization"].partition(" ")[2]


class StaticTokenAuth(TokenAuth):
    """A bearer token given by the caller; a 401 is final."""

    def __init__(self, token: str) -> None:
        self._headers = _bearer(token)

    def headers_now(self, scope: str) -> dict[str, str]:
        return self._headers

    async def headers(self, scope: str) -> dict[str, str]:
        return self._headers

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=<hidden>)"


@attrs.frozen(eq=False)
class _Token:
    headers: dict[str, str] = attrs.field(repr=False)
    renew_at: float


@attrs.define(eq=False)
class _Flight:
    task: asyncio.Task[_Token]
    waiters: int = 0


@attrs.frozen(eq=False)
class _Failure:
    """The last token flight of a scope failed: callers get `error` until `retry_at`."""

    error: TelegentError
    retry_at: float
    count: int  # consecutive failed flights, for the backoff


class CredentialsAuth(TokenAuth):
    """Tokens from `POST {base_url}/oauth2/tokens`, one per scope, renewed before expiry."""

    renews_on_401 = True

    def __init__(
        self,
        account_key: str,
        account_secret: str,
        token_url: str,
        post: PostJson,
        *,
        retry_policy: PollPolicy = PollPolicy.RETRY,
    ):
        self._account_key = account_key
        self._account_secret = account_secret
        self._token_url = token_url
        self._post = post
        self._retry_policy = retry_policy
        self._tokens: dict[str, _Token] = {}
        self._flights: dict[str, _Flight] = {}
        self._failures: dict[str, _Failure] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"CredentialsAuth(account_key={self._account_key[:4]!r}..., secret=<hidden>)"

    def headers_now(self, scope: str) -> dict[str, str] | None:
        cached = self._tokens.get(scope)
        if cached is not None and asyncio.get_running_loop().time() < cached.renew_at:
            return cached.headers
        return None

    async def headers(self, scope: str) -> dict[str, str]:
        cached = self.headers_now(scope)
        if cached is not None:
            return cached
        if self._closed:
            raise ClientClosedError()
        flight = self._flights.get(scope)
        failure = self._failures.get(scope)
        if (
            flight is None
            and failure is not None
            and asyncio.get_running_loop().time() < failure.retry_at
        ):
            raise failure.error.with_traceback(None)  # one failure, not one per caller
        if flight is None:
            flight = _Flight(asyncio.get_running_loop().create_task(self._fetch(scope)))
            self._flights[scope] = flight
            flight.task.add_done_callback(lambda task: self._landed(scope, task))
        flight.waiters += 1
        try:
            return (await asyncio.shield(flight.task)).headers
        except asyncio.CancelledError:
            if self._closed and flight.task.cancelled() and not _cancelling():
                # The client closed under us: say so, rather than a cancellation of a task
                # nobody cancelled (which a TaskGroup would swallow).
                raise ClientClosedError() from None
            # The last caller to give up stops the request: nothing is left running.
            if flight.waiters == 1:
                if self._flights.get(scope) is flight:
                    del self._flights[scope]
                flight.task.cancel()
            raise
        finally:
            flight.waiters -= 1

    def _landed(self, scope: str, task: asyncio.Task[_Token]) -> None:
        if self._flights.get(scope) is not None and self._flights[scope].task is task:
            del self._flights[scope]
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._tokens[scope] = task.result()
            self._failures.pop(scope, None)
        elif isinstance(error, TelegentError):
            previous = self._failures.get(scope)
            count = 1 if previous is None else previous.count + 1
            backoff = self._retry_policy.delay(count - 1, jitter=_none)
            now = asyncio.get_running_loop().time()
            self._failures[scope] = _Failure(error, now + backoff, count)

    def discard(self, scope: str, headers: dict[str, str]) -> None:
        cached = self._tokens.get(scope)
        if cached is not None and cached.headers is headers:
            del self._tokens[scope]

    async def aclose(self) -> None:
        self._closed = True
        flights = [flight.task for flight in self._flights.values()]
        for task in flights:
            task.cancel()
        for task in flights:
            with contextlib.suppress(BaseException):
                await task
        self._tokens.clear()

    async def _fetch(self, scope: str) -> _Token:
        """One flight: one token request (the send path retries what is transient)."""
        logger.debug("requesting a token for %s", scope)
        body = {
            "AccountKey": self._account_key,
            "AccountSecret": self._account_secret,
            "ApiEndpoint": scope,
        }
        try:
            (value, expiry), server_date = await self._post(self._token_url, body, _token_of)
        except AuthenticationError as exc:
            raise AuthenticationError(
                exc.status_code,
                f"the token request was refused ({exc.message}): check the account key and "
                "secret; not retried, the same ones would be refused again",
                None,
            ) from None
        loop_now = asyncio.get_running_loop().time()
        lifetime = token_lifetime(expiry, datetime.now(timezone.utc), server_date)
        return _Token(_bearer(value), loop_now + token_renewal_delay(lifetime))


def _none(delay: float) -> float:
    """No jitter: a backoff shared by every caller needs no spreading."""
    return delay


def _cancelling() -> bool:
    """True when the current task was asked to cancel (known on 3.11+ only)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and bool(cancelling())


def _token_of(answer: Any) -> tuple[str, object]:
    """A token answer's token and `tokenExpiry`; a `ValueError` that never quotes the token
    when it is unusable (the send path asks again)."""
    value = answer.get("token") if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError("the token endpoint answered no token")
    try:
        credential("token", value)
    except ValueError:  # a newline in it would forge a header: refuse, never echo it
        raise ValueError("the token endpoint answered an unusable token") from None
    return value, answer.get("tokenExpiry")
