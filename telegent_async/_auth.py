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

__all__ = ["CredentialsAuth", "StaticTokenAuth", "TokenAuth"]

logger = logging.getLogger("telegent_async")

#: Sends the token request: (url, JSON body) -> (HTTP status, body bytes). The client's
#: transport, with its retries and budget.
PostJson = Callable[[str, dict[str, str]], Awaitable[tuple[int, bytes]]]


class TokenAuth:
    """The interface: a token for a scope, and what to do when the API refused one."""

    renews_on_401 = False

    async def token(self, scope: str) -> str:
        raise NotImplementedError

    def discard(self, scope: str, token: str) -> None:
        """The API answered 401 to `token`: forget it, so the next `token()` fetches anew."""

    async def aclose(self) -> None:
        """Stop any token request under way."""


class StaticTokenAuth(TokenAuth):
    """A bearer token given by the caller; a 401 is final."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self, scope: str) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=<hidden>)"


@attrs.frozen
class _Token:
    value: str = attrs.field(repr=False)
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

    async def token(self, scope: str) -> str:
        cached = self._tokens.get(scope)
        if cached is not None and asyncio.get_running_loop().time() < cached.renew_at:
            return cached.value
        flight = self._flights.get(scope)
        if flight is None:
            flight = _Flight(asyncio.get_running_loop().create_task(self._fetch(scope)))
            self._flights[scope] = flight
            flight.task.add_done_callback(lambda task: self._landed(scope, task))
        flight.waiters += 1
        try:
            return (await asyncio.shield(flight.task)).value
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

    def discard(self, scope: str, token: str) -> None:
        cached = self._tokens.get(scope)
        if cached is not None and cached.value == token:
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
        loop_now = asyncio.get_running_loop().time()
        lifetime = token_lifetime(answer.get("tokenExpiry"), datetime.now(timezone.utc))
        return _Token(value, loop_now + token_renewal_delay(lifetime))


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
