"""Redis connections shared by `RedisStore` and `RedisBudget`: URL schemes, client, hash tags."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["REDIS_SCHEMES", "connect", "hash_tag"]

#: What a Redis URL starts with (anything else names an SQLite file, where a store is meant).
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def connect(url: str) -> redis.asyncio.Redis:
    """A redis-py asyncio client for `url` (a clear error when the `redis` extra is missing)."""
    if not isinstance(url, str):
        raise TypeError(f"the Redis URL must be a str, not {type(url).__name__}")
    if not url.startswith(REDIS_SCHEMES):
        raise ValueError(f"not a Redis URL (redis://, rediss:// or unix://): {url!r}")
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Redis support needs redis-py: pip install 'telegent-async[redis]'"
        ) from exc
    return redis.asyncio.Redis.from_url(url)


def hash_tag(what: str, name: object) -> str:
    """`{name}`: keys sharing it share a Cluster slot. Refuses names that would break it."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name or not name.isprintable() or "{" in name or "}" in name:
        raise ValueError(f"{what} must be printable, non-empty, without braces: {name!r}")
    return f"{{{name}}}"
