"""Argument checks, run before anything is sent: a bad value is a clear ValueError/TypeError.

Pure functions; the same checks serve the client, the poll policy and the budget.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable

from yarl import URL

__all__ = [
    "MAX_ORDER_ID_LENGTH",
    "InsecureURLError",
    "api_base_url",
    "credential",
    "int_at_least",
    "order_id",
    "order_ids",
    "positive_number",
    "shown_url",
    "tag",
]

#: The longest `tag` a watch carries.
MAX_TAG_CHARS = 1000
#: Telegent's IDs are about 43 characters (`JNUOID-<uuid>`); anything far longer is a mistake.
MAX_ORDER_ID_LENGTH = 200


def positive_number(name: str, value: object) -> float:
    """A finite number > 0 (bool is refused: `timeout=True` is a bug, not one second)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def int_at_least(name: str, value: object, minimum: int) -> int:
    """An int (not a bool) no smaller than `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def order_id(value: object) -> str:
    """An order ID as sent: a non-blank printable string of sane length, not trimmed for you."""
    if not isinstance(value, str):
        raise TypeError(f"order_id must be a str, not {type(value).__name__}")
    if not value or value.isspace():
        raise ValueError("order_id must not be empty or blank")
    if len(value) > MAX_ORDER_ID_LENGTH:
        raise ValueError(
            f"order_id is {len(value)} characters long; Telegent IDs are about 43 "
            f"(limit {MAX_ORDER_ID_LENGTH})"
        )
    if not value.isprintable():
        raise ValueError(f"order_id contains control or non-printable characters: {value[:60]!r}")
    if value != value.strip():
        raise ValueError(f"order_id has leading or trailing whitespace: {value!r}")
    return value


def order_ids(values: Iterable[object]) -> list[str]:
    """Many order IDs, each checked (a lone string is refused: it would be one ID per letter)."""
    if isinstance(values, (str, bytes)):
        raise TypeError("order_ids must be an iterable of IDs, not a single string")
    return [order_id(value) for value in values]


def credential(name: str, value: object) -> str:
    """A token, key or secret: a non-empty printable string without spaces (it goes in a header
    or a JSON body; a newline in it could forge a header). The value never appears in errors.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value or not value.isprintable() or any(ch.isspace() for ch in value):
        raise ValueError(f"{name} must be a non-empty string without spaces or control characters")
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def shown_url(url: str) -> str:
    """`url` as a message may show it: its password (`user:***@`), or the whole user part when
    it has no `:` (a lone token: `***@`), masked, even in a string that does not parse as a
    URL. The one rule for every message naming a base URL, a Redis URL or a store."""
    userinfo, at, rest = url.rpartition("@")
    if not at:
        return url
    scheme, sep, user = userinfo.rpartition("://")
    name, colon, _password = user.partition(":")
    return f"{scheme}{sep}{name + ':' if colon else ''}***@{rest}"


def _shown(url: str) -> str:
    """`shown_url`, quoted and cut at 100 characters."""
    return repr(shown_url(url)[:100])


class InsecureURLError(ValueError):
    """A plain http base URL without leave to use it. `switch` names what gives that leave
    where the error is read: `allow_insecure=True` for the library, a flag for a command."""

    def __init__(self, shown: str, switch: str = "allow_insecure=True") -> None:
        super().__init__(
            f"base_url {shown} is plain http: tokens would travel unencrypted. "
            f"Use https://, or {switch} (or TELEGENT_ALLOW_INSECURE=1) for a loopback test server"
        )
        self.shown = shown


def api_base_url(value: object, allow_insecure: bool) -> URL:
    """The API root as a URL: https only, unless `allow_insecure` and the host is loopback."""
    if not isinstance(value, str):
        raise TypeError(f"base_url must be a str, not {type(value).__name__}")
    if not isinstance(allow_insecure, bool):
        raise TypeError("allow_insecure must be a bool")
    try:
        url = URL(value.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"base_url is not a URL: {_shown(value)} ({exc})") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"base_url must be an absolute https:// URL, got {_shown(value)}")
    if url.user is not None or url.password is not None:
        raise ValueError("base_url must not carry credentials; pass token= or account_key=")
    if url.query_string or url.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {_shown(value)}")
    if url.scheme == "http":
        if not allow_insecure:
            raise InsecureURLError(_shown(value))
        if not _is_loopback(url.host):
            raise ValueError(
                f"allow_insecure only permits loopback hosts (127.0.0.0/8, ::1, localhost), "
                f"not {url.host!r}"
            )
    return url.with_path(url.path.rstrip("/"))


def tag(value: object) -> str | None:
    """A watch's `tag`: None, or valid text of at most MAX_TAG_CHARS characters."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"tag must be a str or None, not {type(value).__name__}")
    if value is not None and len(value) > MAX_TAG_CHARS:
        raise ValueError(f"tag must be at most {MAX_TAG_CHARS} characters")
    if value is not None and not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("tag must be valid Unicode text (no lone surrogates)") from None
    return value
