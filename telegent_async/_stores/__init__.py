"""The stores wing: where watches live.

`base` holds the contract (`WatchStore`) and its records and imports no backend; `records` is
the JSON every store keeps; `memory`, `sqlite` (over `sqlite_file`) and `redis` (over
`redis_scripts`) are the backends. `open_store` is the one place a path or URL becomes a store.
"""

from __future__ import annotations

import os
import re
from typing import TypeAlias

from .._redis_connection import REDIS_SCHEMES
from .._validate import shown_url
from .base import WatchStore
from .memory import MemoryStore
from .redis import DEFAULT_NAMESPACE, RedisStore
from .sqlite import SQLiteStore

__all__ = ["StoreLike", "open_store", "store_of"]

#: What `OrderWatcher` accepts as its store: a store, a path (SQLite), a URL, or None (memory).
StoreLike: TypeAlias = "WatchStore | str | os.PathLike[str] | None"


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(location: str | os.PathLike[str], *, namespace: str | None = None) -> WatchStore:
    """The store at `location`: a Redis URL (a `RedisStore` in `namespace`) or an SQLite path.

    A location no store can use (an unknown URL scheme, a missing directory, a file that is
    not a store or is of a newer version, no permission) is a `ValueError` naming it (never a
    password), now rather than at first use.
    """
    if not isinstance(location, (str, os.PathLike)):
        raise TypeError(f"a store location is a path or a URL, not {type(location).__name__}")
    where = os.fspath(location)
    if where.startswith(REDIS_SCHEMES):
        try:
            return RedisStore(where, namespace=namespace or DEFAULT_NAMESPACE)
        except ValueError as exc:  # its message shows no password (`connect`)
            raise ValueError(f"not a usable Redis store: {exc}") from None
    scheme = _SCHEME.match(where)
    if scheme is not None:
        raise ValueError(
            f"{shown_url(where)}: unknown store scheme {scheme.group(1)!r} (a store is an SQLite "
            "file path, or a redis://, rediss:// or unix:// URL)"
        )
    return SQLiteStore(where)


def store_of(store: object) -> tuple[WatchStore, bool]:
    """The store for `store` (a store, a path, a URL, or None for memory) and whether we own it."""
    if store is None:
        return MemoryStore(), True
    if isinstance(store, (str, os.PathLike)):
        return open_store(store), True
    if isinstance(store, MemoryStore) or all(
        callable(getattr(store, name, None)) for name in ("claim", "record", "settle", "now")
    ):
        return store, False  # type: ignore[return-value]
    raise TypeError(f"store must be a WatchStore, a path or a URL, not {type(store).__name__}")
