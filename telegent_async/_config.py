"""The library's defaults and where missing settings come from (the environment), written once.

`TelegentClient` and the `telegent-orders` command both read them from here, so the command
cannot drift from the library it drives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "DEFAULT_TIMEOUT",
    "ENV_ACCOUNT_KEY",
    "ENV_ACCOUNT_SECRET",
    "ENV_BASE_URL",
    "ENV_TOKEN",
    "Credentials",
    "MissingCredentialsError",
    "credentials_from",
]

DEFAULT_BASE_URL = "https://api.telegent.com/v1.0"
#: Seconds for one HTTP attempt.
DEFAULT_TIMEOUT = 30.0
#: Retries of a transient failure, per request.
DEFAULT_MAX_RETRIES = 5
#: Telegent's standard tier.
DEFAULT_REQUESTS_PER_MINUTE = 50.0
DEFAULT_MAX_CONNECTIONS = 20
#: The longest Retry-After honoured, in seconds.
DEFAULT_MAX_RETRY_AFTER = 60.0

ENV_TOKEN = "TELEGENT_TOKEN"
ENV_ACCOUNT_KEY = "TELEGENT_ACCOUNT_KEY"
ENV_ACCOUNT_SECRET = "TELEGENT_ACCOUNT_SECRET"
ENV_BASE_URL = "TELEGENT_BASE_URL"


class MissingCredentialsError(ValueError):
    """Neither a token nor both halves of an account key were given or set.

    `missing` names the environment variables of the halves that were not found, so that a
    caller with flags of its own (the CLI) can name those instead.
    """

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(
            "no credentials: pass token=..., or account_key=... and account_secret=..., "
            f"or set {ENV_TOKEN}, or {ENV_ACCOUNT_KEY} and {ENV_ACCOUNT_SECRET}"
        )
        self.missing = missing


@attrs.frozen
class Credentials:
    """What a client authenticates with: a `token`, or an `account_key` and `account_secret`
    (the other field(s) None), and the API's `base_url`. Never shown by `repr`."""

    token: str | None = attrs.field(repr=False)
    account_key: str | None = attrs.field(repr=False)
    account_secret: str | None = attrs.field(repr=False)
    base_url: str


def credentials_from(
    token: str | None = None,
    account_key: str | None = None,
    account_secret: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """The credentials to use: the arguments, with each missing one taken from the environment.

    `TELEGENT_TOKEN` is used only when no credential at all was passed (an account key passed
    by hand is not overridden by a token in the environment); an empty variable counts as
    unset. Raises `MissingCredentialsError` (a `ValueError`) when nothing usable is found.
    `env` defaults to `os.environ`.
    """
    env = os.environ if env is None else env
    base_url = base_url if base_url is not None else env.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if token is None and account_key is None and account_secret is None:
        token = env.get(ENV_TOKEN) or None
    if token is not None:
        return Credentials(token, None, None, base_url)
    account_key = account_key if account_key is not None else env.get(ENV_ACCOUNT_KEY)
    account_secret = account_secret if account_secret is not None else env.get(ENV_ACCOUNT_SECRET)
    if not account_key or not account_secret:
        missing = (ENV_ACCOUNT_KEY,) if not account_key else ()
        raise MissingCredentialsError(
            missing + ((ENV_ACCOUNT_SECRET,) if not account_secret else ())
        )
    return Credentials(None, account_key, account_secret, base_url)
