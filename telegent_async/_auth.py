"""Bearer tokens: a fixed token, or scoped tokens fetched, cached and renewed from credentials.

Telegent scopes a token to one endpoint (`ApiEndpoint`) and has no refresh token, so the
provider keeps one token per scope and fetches it again before `tokenExpiry`. However many
calls need a token at the same moment, one token request is made (single flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import attrs

from ._errors import AuthenticationError, ResponseDecodeError
from ._timing import token_lifetime, token_renewal_delay
from ._validate import credential

__all__ = ["CredentialsAuth", "StaticTokenAuth", "TokenAuth"]

logger = logging.getLogger("telegent_async")

#: Sends the token request: (url, JSON body) -> (HTTP status, body bytes). The client's
#: transport, with its retries and budget.
PostJson = Callable[[str, dict[str, str]], Awaitable[tuple[int, bytes]]]


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


class CredentialsAuth(TokenAuth):
    """Tokens from `POST {base_url}/oauth2/tokens`, one per scope, renewed before expiry."""

    renews_on_401 = True

    def __init__(self, account_key: str, account_secret: str, token_url: str, post: PostJson):
        self._account_key = account_key
        self._account_secret = account_secret
        self._token_url = token_url
        self._post = post
        self._tokens: dict[str, _Token] = {}
        self._flights: dict[str, _Flight] = {}

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
        flight = self._flights.get(scope)
        if flight is None:
            flight = _Flight(asyncio.get_running_loop().create_task(self._fetch(scope)))
            self._flights[scope] = flight
            flight.task.add_done_callback(lambda task: self._landed(scope, task))
        flight.waiters += 1
        try:
            return (await asyncio.shield(flight.task)).headers
        except asyncio.CancelledError:
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
        if not task.cancelled() and task.exception() is None:
            self._tokens[scope] = task.result()

    def discard(self, scope: str, headers: dict[str, str]) -> None:
        cached = self._tokens.get(scope)
        if cached is not None and cached.headers is headers:
            del self._tokens[scope]

    async def aclose(self) -> None:
        flights = [flight.task for flight in self._flights.values()]
        for task in flights:
            task.cancel()
        for task in flights:
            with contextlib.suppress(BaseException):
                await task
        self._tokens.clear()

    async def _fetch(self, scope: str) -> _Token:
        logger.debug("requesting a token for %s", scope)
        body = {
            "AccountKey": self._account_key,
            "AccountSecret": self._account_secret,
            "ApiEndpoint": scope,
        }
        status, raw = await self._post(self._token_url, body)
        answer = _token_answer(status, raw)
        value = answer.get("token")
        if answer.get("successful") is not True or not isinstance(value, str) or not value:
            message = answer.get("message") or answer.get("Message") or "token request refused"
            raise AuthenticationError(401, str(message)[:200], None)
        try:
            credential("token", value)
        except ValueError:  # a newline in it would forge a header: refuse, never echo it
            raise ResponseDecodeError(
                "the token endpoint answered an unusable token", status_code=status, body=""
            ) from None
        loop_now = asyncio.get_running_loop().time()
        lifetime = token_lifetime(answer.get("tokenExpiry"), datetime.now(timezone.utc))
        return _Token(_bearer(value), loop_now + token_renewal_delay(lifetime))


def _token_answer(status: int, raw: bytes) -> dict[str, object]:
    """The token answer as a dict; never echoes the body back (it may hold a token)."""
    try:
        answer = json.loads(raw)
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict):
        raise ResponseDecodeError(
            "the token endpoint did not answer a JSON object", status_code=status, body=""
        )
    return answer
