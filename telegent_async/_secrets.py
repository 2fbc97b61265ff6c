"""Which JSON keys hold a secret: the one rule for every answer kept (stores, `raw`) (pure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["MASK", "SECRET_FIELDS", "WEBHOOK_SECRET_FIELDS", "is_secret_key", "scrub"]

#: What a secret is shown as.
MASK: Final = "***"
#: JSON fields whose values are never shown: not in repr, logs, errors or the CLI's output.
#: (Every call's: the port-in update's, and the creates' `PortOutPIN`.)
SECRET_FIELDS: Final = frozenset({"CurrentAccountNumber", "CurrentAccountPassword", "PortOutPIN"})
#: The webhook credentials Telegent takes (and may echo back).
WEBHOOK_SECRET_FIELDS: Final = frozenset({"AuthenticationPassword", "AuthenticationToken"})
#: Every call's secret fields and credential-like names, compared case-insensitively.
_NAMES: Final = frozenset(
    key.casefold()
    for key in (
        *SECRET_FIELDS,
        *WEBHOOK_SECRET_FIELDS,
        "AccountKey",
        "access_token",
        "Authorization",
        "Pin",
        "token",
    )
)


def is_secret_key(key: object) -> bool:
    """True for a key that names a secret, in any case or spelling: one of the known fields,
    or any key naming a password or a secret (`authenticationToken`, `Password`)."""
    if not isinstance(key, str):
        return False
    folded = key.casefold()
    return folded in _NAMES or "password" in folded or "secret" in folded


def scrub(value: Any, shown: Callable[[object, Any], Any] | None = None) -> Any:
    """`value` with the value of every key `is_secret_key` names masked (`MASK`), at every
    depth of its dicts and lists: an answer as its `raw` keeps it (a secret the request did
    not carry, say one on file that an answer echoes, is not found by value). `shown(key,
    value)`: what another key's value is shown as (a webhook URL's secret segment masked)."""
    if isinstance(value, dict):
        return {
            key: MASK
            if is_secret_key(key)
            else scrub(item if shown is None else shown(key, item), shown)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item, shown) for item in value]
    return value
