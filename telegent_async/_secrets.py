"""Which JSON keys hold a secret: the one rule for every answer kept (stores, `raw`) (pure)."""

from __future__ import annotations

from typing import Final

from . import _portin

__all__ = ["WEBHOOK_SECRET_FIELDS", "is_secret_key"]

#: The webhook credentials Telegent takes (and may echo back).
WEBHOOK_SECRET_FIELDS: Final = frozenset({"AuthenticationPassword", "AuthenticationToken"})
#: Every call's secret fields and credential-like names, compared case-insensitively.
_NAMES: Final = frozenset(
    key.casefold()
    for key in (
        *_portin.SECRET_FIELDS,
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
