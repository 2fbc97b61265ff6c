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
    "ENV_ALLOW_INSECURE",
    "ENV_BASE_URL",
    "ENV_TOKEN",
    "ConflictingCredentialsError",
    "Credentials",
    "MissingCredentialsError",
    "credentials_from",
    "insecure_allowed",
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
ENV_ALLOW_INSECURE = "TELEGENT_ALLOW_INSECURE"
#: What `TELEGENT_ALLOW_INSECURE` may be set to, and what each value means.
_FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
#: The argument that stands for each credential's environment variable in a message.
_ARGUMENTS = {ENV_ACCOUNT_KEY: "account_key", ENV_ACCOUNT_SECRET: "account_secret"}


class MissingCredentialsError(ValueError):
    """Neither a token nor both halves of an account key were given or set.

    `missing` names the environment variables of the halves that were not found, so that a
    caller with flags of its own (the CLI) can name those instead.
    """

    def __init__(self, missing: tuple[str, ...]) -> None:
        if len(missing) == 1:  # one half was found: say which one is not
            name = missing[0]
            other = ENV_ACCOUNT_SECRET if name == ENV_ACCOUNT_KEY else ENV_ACCOUNT_KEY
            text = (
                f"{_ARGUMENTS[name]} is missing: {_ARGUMENTS[other]} was found, but neither "
                f"{_ARGUMENTS[name]}=... was passed nor {name} set (an empty one counts as unset)"
            )
        else:
            text = (
                "no credentials: pass token=..., or account_key=... and account_secret=..., "
                f"or set {ENV_TOKEN}, or {ENV_ACCOUNT_KEY} and {ENV_ACCOUNT_SECRET}"
            )
        super().__init__(text)
        self.missing = missing


class ConflictingCredentialsError(ValueError):
    """A token and an account key or secret were both passed: which one to use is a guess.

    `given` names the arguments passed besides `token` (`account_key`, `account_secret`).
    """

    def __init__(self, given: tuple[str, ...]) -> None:
        super().__init__(
            f"token= was passed together with {' and '.join(name + '=' for name in given)}: "
            "pass a token, or an account key and secret, not both"
        )
        self.given = given


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
    by hand is not overridden by a token in the environment); an empty credential variable
    counts as unset. Raises `MissingCredentialsError` (a `ValueError`) when nothing usable is
    found, `ConflictingCredentialsError` when `token` is passed with an account key or secret,
    and `ValueError` when `TELEGENT_BASE_URL` is set but empty (it would otherwise mean the
    production API). `env` defaults to `os.environ`.
    """
    env = os.environ if env is None else env
    given = tuple(
        name
        for name, value in (("account_key", account_key), ("account_secret", account_secret))
        if value is not None
    )
    if token is not None and given:
        raise ConflictingCredentialsError(given)
    if base_url is None:
        base_url = env.get(ENV_BASE_URL, DEFAULT_BASE_URL)
        if not base_url.strip():
            raise ValueError(
                f"{ENV_BASE_URL} is set but empty: unset it for the production API "
                f"({DEFAULT_BASE_URL}), or set it to the API root to use"
            )
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


def insecure_allowed(allow_insecure: object, env: Mapping[str, str] | None = None) -> bool:
    """Whether plain http (to a loopback host only) is allowed: the argument, or else
    `TELEGENT_ALLOW_INSECURE=1` (`true`/`yes`; `0`/`false`/`no`/empty: not), for an app
    pointed at a fake server through the environment. Any other value is a `ValueError`.
    """
    if not isinstance(allow_insecure, bool):
        raise TypeError("allow_insecure must be a bool")
    text = (os.environ if env is None else env).get(ENV_ALLOW_INSECURE, "").strip().lower()
    if text and text not in _FLAG_VALUES:
        raise ValueError(
            f"{ENV_ALLOW_INSECURE} must be 1 or 0 (true/false, yes/no), got {text[:20]!r}"
        )
    return allow_insecure or _FLAG_VALUES.get(text, False)
