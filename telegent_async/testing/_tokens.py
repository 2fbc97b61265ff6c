"""Tokens (issue with scope and expiry, revoke, check) and the rate limit's token bucket."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
from aiohttp import web

from ._responses import JSON

_EXPIRY_FORMAT: Final = "%m/%d/%Y %I:%M:%S %p"


@attrs.frozen
class _Token:
    scope: str
    expires_at: float
    generation: int


def scope_of(endpoint: str) -> str:
    """The path part of an ApiEndpoint URL (or of a bare path), which is what a token is for."""
    path = urlsplit(endpoint).path
    return path.rstrip("/") or "/"


def token_request_error(data: object) -> str | None:
    """Why a token request's JSON body is refused with a 400, or None if it is well formed."""
    if not isinstance(data, dict):
        return "The request body must be a JSON object."
    key, secret = data.get("AccountKey"), data.get("AccountSecret")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        return "AccountKey and AccountSecret are required."
    endpoint = data.get("ApiEndpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        return "ApiEndpoint must be a string."
    return None


def credentials_match(data: dict[str, Any], account_key: str, account_secret: str) -> bool:
    return secrets.compare_digest(
        data["AccountKey"].encode(), account_key.encode()
    ) and secrets.compare_digest(data["AccountSecret"].encode(), account_secret.encode())


def refused_answer() -> web.Response:
    """The real API's answer to wrong credentials: a 200 saying `successful: false`."""
    answer = {"token": None, "successful": False, "message": "Invalid AccountKey or AccountSecret"}
    return web.Response(body=json.dumps(answer).encode(), content_type=JSON)


def issued_answer(token: str, lifetime: float, clock_skew: float) -> web.Response:
    """A token's answer; its expiry and `Date` header are on the server's (skewed) clock."""
    server_now = datetime.now(timezone.utc) + timedelta(seconds=clock_skew)
    expiry = server_now + timedelta(seconds=lifetime)
    answer = {"token": token, "successful": True, "tokenExpiry": expiry.strftime(_EXPIRY_FORMAT)}
    headers = {"Date": format_datetime(server_now, usegmt=True)}
    return web.Response(body=json.dumps(answer).encode(), content_type=JSON, headers=headers)


class Tokens:
    """Tokens issued so far; revoking bumps a generation instead of forgetting them."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._generation = 0

    def issue(self, scope: str, expires_at: float) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Token(scope, expires_at, self._generation)
        return token

    def revoke_all(self) -> None:
        self._generation += 1

    def check(
        self, authorization: str | None, path: str, now: float
    ) -> tuple[str | None, str | None, str | None]:
        """(token, its scope, why it is denied or None) for a request's Authorization."""
        token: str | None = None
        if authorization is not None and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip() or None
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
        elif info.scope != path:
            denied = "Token is not valid for this endpoint."
        return token, scope, denied


class TokenBucket:
    """The rate limit: `rate` requests a second, bursts of up to max(1, rate)."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._at = now

    def take(self, now: float) -> bool:
        """Spend one request's token if there is one; False means answer 429."""
        tokens = min(self._burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True
