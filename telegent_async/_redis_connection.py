"""Redis connections shared by `RedisStore` and `RedisBudget`: URL schemes, client, hash tags."""

from __future__ import annotations

import asyncio
import inspect
import sys
import urllib.parse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ._validate import shown_url

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["REDIS_SCHEMES", "TIMEOUTS", "cancellable", "connect", "hash_tag"]

_T = TypeVar("_T")

#: What a Redis URL starts with (anything else names an SQLite file, where a store is meant).
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: Seconds a connection attempt, and a command's answer, may take before it fails as a
#: `redis.exceptions.TimeoutError` (transient: the store's or budget's outage policy takes it
#: from there). Without them a frozen server (SIGSTOP, a full disk, a half-open connection)
#: held a call, and with it every poll, forever. The URL's own `socket_timeout` and
#: `socket_connect_timeout` options win. Blocking reads of the nudge channel are not cut.
TIMEOUTS: Final = {"socket_timeout": 10.0, "socket_connect_timeout": 10.0}


def connect(url: str) -> redis.asyncio.Redis:
    """A redis-py asyncio client for `url`, with `TIMEOUTS`, connecting at first use.

    Anything wrong with the URL itself (an unknown scheme or option, a bad port or database)
    is a `ValueError` now, naming the URL without its password; a missing `redis` extra, a
    clear `ImportError`.
    """
    if not isinstance(url, str):
        raise TypeError(f"the Redis URL must be a str, not {type(url).__name__}")
    if not url.startswith(REDIS_SCHEMES):
        raise ValueError(f"not a Redis URL (redis://, rediss:// or unix://): {shown_url(url)!r}")
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Redis support needs redis-py: pip install 'telegent-async[redis]'"
        ) from exc
    try:
        client = redis.asyncio.Redis.from_url(url, **TIMEOUTS)  # type: ignore[arg-type]
        client.connection_pool.make_connection()  # type: ignore[no-untyped-call]  # checks the options; connects nothing
    except (TypeError, ValueError) as exc:
        password = urllib.parse.urlsplit(url).password or "\0"
        reason = str(exc).replace(password, "***")
        raise ValueError(f"{shown_url(url)!r} is not a usable Redis URL: {reason}") from None
    return client


def hash_tag(what: str, name: object) -> str:
    """`{name}`: keys sharing it share a Cluster slot. Refuses names that would break it."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name or not name.isprintable() or "{" in name or "}" in name:
        raise ValueError(f"{what} must be printable, non-empty, without braces: {name!r}")
    return f"{{{name}}}"


async def cancellable(command: Awaitable[_T]) -> _T:
    """`await command` (a redis-py call) so that a cancel of the awaiting task is never lost.

    With a socket timeout (`TIMEOUTS`), redis-py awaits each command through
    `asyncio.wait_for`, which before Python 3.12 drops a cancel landing as the command
    completes (bpo-42130): the task went on as if never cancelled (a `settled()` consumer
    looped on after its cancel, about 1 run in 30 on 3.10: tests/test_faults.py, the
    frozen-Redis test). So there the command runs in a task of its own, awaited through
    `asyncio.shield`: a cancel always reaches the caller, and nothing below can swallow it.
    The command is then let finish (its socket timeout bounds it): its result is handed back
    (a claim's leases are not lost with it) and the cancel requested again, to land at the
    caller's next await (not inside the next command: that one does not start); its failure
    is dropped for the cancel.

    Counting cancels (`Task.cancelling()`, 3.11) was not enough: a cancel requested again
    was dropped again by the next command and the count did not show it (a `settled()`
    consumer on 3.11, "cancelling" yet waiting for news: tests/test_faults.py, the Redis
    restarts, about 1 suite run in 12 under load).

    From 3.12 `wait_for` keeps a cancel, and a plain await was used there; but a cancel then
    cut the command off as its answer came, after Redis had run it: the claims of a claim
    cancelled so were leased in Redis and known to no worker, held until their lease ended
    (`watch run` stopped by SIGTERM left one in CI, on 3.12 and on 3.13). So every version
    lets the command finish.
    """
    task = asyncio.current_task()
    if task is None:
        return await command
    if sys.version_info < (3, 11) or task.cancelling():
        try:  # a cancel requested again below, still pending, lands here: no command starts
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if inspect.iscoroutine(command):
                command.close()
            raise
    inner = asyncio.ensure_future(command)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.add_done_callback(_consumed)
        await asyncio.wait({inner})  # a second cancel gives the result up
        if inner.cancelled() or inner.exception() is not None:
            raise
        if sys.version_info >= (3, 11):
            task.uncancel()  # the cancel caught here, requested again: still one
        task.cancel()
        return inner.result()


def _consumed(task: asyncio.Future[Any]) -> None:
    """A command nobody awaits any more: its outcome is not wanted (not "never retrieved")."""
    if not task.cancelled():
        task.exception()
