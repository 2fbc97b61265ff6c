"""`RedisStore`: watches shared by workers on many hosts, kept in Redis.

Layout (`redis_keys`): a sorted set of pending watches scored by next-poll time, one hash per
watch, a stream of settled outcomes waiting for acknowledgement, a sorted set of acknowledged
ones by acknowledgement time (for `purge`), and two counters (fences, delivery order). Every
key of a namespace carries the hash tag `{namespace}`, so they share one hash slot and the Lua
scripts (`redis_scripts`) work on Redis Cluster too.

Every write is one small Lua script, so it is atomic: a claim pushes a watch's score forward
by the lease and hands out a fencing token; record, settle, renew and release write only if the
token still matches, so a worker whose lease was taken over (paused, partitioned) cannot
overwrite a newer result, and a dead worker's watches come back by themselves when the lease
runs out: no sweeper races live work. The clock several workers compare is Redis's `TIME`,
read inside the scripts (a test may pass its own clock instead).

Needs the `redis` extra (`pip install 'telegent-async[redis]'`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias

from .._errors import TelegentError
from .._models import Order
from .._redis_connection import cancellable, connect
from .base import (
    BATCH,
    QUEUE_BATCH,
    Claim,
    Delivery,
    NewWatch,
    PendingAnswer,
    Settlement,
    WatchCounts,
    WatchState,
    _Listeners,
)
from .records import PolicyJSON, encode_error, encode_order, stored_outcome, stored_state
from .redis_scripts import PRELUDE, SCRIPTS, redis_keys

__all__ = ["DEFAULT_NAMESPACE", "RedisStore"]

logger = logging.getLogger("telegent_async")

DEFAULT_NAMESPACE = "telegent"
#: Seconds an outcome handed to one worker's `settled()` is not handed to another (unless
#: acknowledged first): enough for a handler that takes its time, short enough that the
#: outcomes a dead worker held go out again within seconds. (A handler slower than this may
#: see an outcome that another worker sees too: at least once, as always.)
DELIVERY_LEASE = 2.0
#: Acknowledged outcomes dropped per purge script (a long script would block Redis).
_PURGE_BATCH = 1000


_Arg: TypeAlias = "str | bytes | int | float"


def _status(status: str) -> bytes:
    """A status as Redis keeps it: JSON may carry lone surrogates, kept as they came."""
    return status.encode("utf-8", "surrogatepass")


def _fenced(
    claim: Claim, value: _Arg, order: Order | None, error: TelegentError | None
) -> list[_Arg]:
    """A write's arguments as the record and settle scripts take them: the watch, its fence,
    a value of the script's, then status and order JSON ('' = no answer) and the error's
    ('' = none: a record's failed poll, a settlement's error)."""
    answer = ["", ""] if order is None else [_status(order.raw_status), encode_order(order)]
    failure = "" if error is None else encode_error(error)
    return [claim.order_id, claim.fence, value, *answer, failure]


def _glob(text: str) -> str:
    """`text` matched literally by a Redis glob pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _decoded(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "surrogatepass")


def _number(value: bytes | None) -> float | None:
    return None if value is None else float(value)


class RedisStore:
    """Watches in Redis (`RedisStore("redis://127.0.0.1:6379/0", namespace="telegent")`).

    Any number of workers on any number of hosts may share a namespace: a lease and a fencing
    token decide who polls an order, Redis's clock is the one they compare, and settled
    outcomes wait in a stream until some worker acknowledges them. Wakes, adds and releases
    publish a nudge that idle workers of the namespace subscribe to, so they react at once.

    Args:
        url: The Redis URL (`redis://`, `rediss://` or `unix://`).
        namespace: The key prefix: workers naming the same one share the watches.
        clock: Replaces Redis `TIME` (for tests on a fake clock only).
    """

    #: Another process's changes are seen at once (nudge) or at the latest after this long.
    max_idle = 1.0

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.keys = redis_keys(namespace)
        #: The keys of a script that schedules: due, and the queue of the most overdue.
        self._queue = [self.keys.due, self.keys.overdue, self.keys.waiting]
        self.namespace = namespace
        self._redis = connect(url)
        self._clock = clock
        self._sender = secrets.token_hex(8).encode()  # ignores its own nudges
        self._listeners = _Listeners()
        self._listening: asyncio.Task[None] | None = None
        self._stopped: set[asyncio.Task[None]] = set()  # listeners cancelled, maybe not ended
        self._policies = PolicyJSON()
        self._scripts = {
            name: self._redis.register_script(PRELUDE + body) for name, body in SCRIPTS.items()
        }

    def __repr__(self) -> str:
        # Not the URL: it may carry a password.
        return f"RedisStore(namespace={self.namespace!r})"

    async def _call(self, script: str, keys: Sequence[str], *args: _Arg) -> Any:
        now = "" if self._clock is None else repr(self._clock())
        return await cancellable(
            self._scripts[script](keys=list(keys), args=[now, self.keys.watch, *args])
        )

    async def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        seconds, micros = await cancellable(self._redis.time())
        return seconds + micros / 1e6

    # -- nudges --------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when this or another process adds, wakes or releases watches."""
        unsubscribe = self._listeners.subscribe(callback)
        if self._listening is None:
            self._listening = asyncio.ensure_future(self._listen())

        def stop() -> None:
            unsubscribe()
            if not self._listeners.callbacks and self._listening is not None:
                self._listening.cancel()
                self._stopped.add(self._listening)  # aclose waits until it has ended
                self._listening = None

        return stop

    async def _listen(self) -> None:
        import redis.exceptions

        me = asyncio.current_task()
        while self._listening is me:  # else stopped, even if a cancel was swallowed (below)
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.nudge)
                if self._listening is not me:
                    # Cancelled while subscribing, and the cancel swallowed: before Python 3.12
                    # the `asyncio.wait_for` redis-py wraps each send in (with a socket
                    # timeout) can; `listen` would then block until the next nudge.
                    return
                # Nudges sent before this subscription (while the listener started, or while
                # Redis was away) were not heard: look once now rather than after `max_idle`.
                self._listeners.notify()
                async for message in pubsub.listen():
                    if message.get("data") != self._sender:
                        self._listeners.notify()
            except (redis.exceptions.RedisError, OSError) as exc:
                # Nudges only speed things up: the scheduler looks every `max_idle` anyway.
                # (The store's own outage is logged once by whoever uses it: `_health.Outage`.)
                logger.debug("redis nudges unavailable, retrying: %s", exc)
                await asyncio.sleep(self.max_idle)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def aclose(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            self._stopped.add(self._listening)
            self._listening = None
        stopped, self._stopped = self._stopped, set()
        await asyncio.gather(*stopped, return_exceptions=True)
        await self._redis.aclose()

    # -- contract ------------------------------------------------------------------------------

    async def add(self, watches: Sequence[NewWatch]) -> int:
        if not watches:
            return 0
        encode = self._policies.encode
        rows = [
            [w.order_id, w.tag, encode(w.policy), None if w.deadline is None else repr(w.deadline)]
            for w in watches
        ]
        nudge = self.keys.nudge
        keys = [self.keys.due, self.keys.layout, self.keys.overdue, self.keys.waiting]
        added = int(await self._call("add", keys, nudge, self._sender, json.dumps(rows)))
        if added:
            self._listeners.notify()
        return added

    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]:
        keys = self.keys
        rows = await self._call(
            "claim",
            [keys.due, keys.fence, keys.layout, keys.overdue, keys.waiting],
            limit,
            repr(lease),
            worker,
            QUEUE_BATCH,
        )
        return [
            Claim(
                order_id.decode(),
                int(fence),
                int(attempts or 0),
                self._policies.decode(policy),
                _number(deadline),
                _decoded(tag),
                _decoded(status),
                last,
                last_error=failure,
            )
            for order_id, fence, attempts, policy, deadline, tag, status, last, failure in rows
        ]

    async def next_due(self) -> float | None:
        first = await cancellable(self._redis.zrange(self.keys.due, 0, 0, withscores=True))
        return float(first[0][1]) if first else None

    async def record(self, answers: Sequence[PendingAnswer]) -> list[str]:
        if not answers:
            return []
        args = [
            arg for a in answers for arg in _fenced(a.claim, repr(a.next_poll), a.order, a.error)
        ]
        stale = await self._call("record", self._queue, *args)
        return [order_id.decode() for order_id in stale]

    async def settle(self, settlements: Sequence[Settlement]) -> list[str]:
        if not settlements:
            return []
        args = [
            arg for s in settlements for arg in _fenced(s.claim, int(s.polled), s.order, s.error)
        ]
        keys = self.keys
        settle = [keys.due, keys.seq, keys.outcomes, keys.overdue, keys.waiting]
        stale = await self._call("settle", settle, *args)
        return [order_id.decode() for order_id in stale]

    async def renew(self, claims: Sequence[Claim], lease: float) -> list[str]:
        if not claims:
            return []
        args = [value for claim in claims for value in (claim.order_id, claim.fence)]
        stale = await self._call("renew", self._queue, repr(lease), *args)
        return [order_id.decode() for order_id in stale]

    async def release(self, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        args = [value for claim in claims for value in (claim.order_id, claim.fence)]
        keys = self.keys
        await self._call("release", self._queue, keys.nudge, self._sender, *args)
        self._listeners.notify()

    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]:
        keys = self.keys
        rows = await self._call(
            "outcomes", [keys.outcomes, keys.handed], after + 1, limit, self._sender, DELIVERY_LEASE
        )
        return [
            Delivery(int(seq), stored_outcome(order_id.decode(), body, error, _decoded(tag)))
            for seq, order_id, body, error, tag in rows
        ]

    async def ack(self, order_ids: Sequence[str]) -> int:
        if not order_ids:
            return 0
        keys = self.keys
        return int(await self._call("ack", [keys.outcomes, keys.acked, keys.handed], *order_ids))

    async def wake(self, order_ids: Sequence[str]) -> int:
        if not order_ids:
            return 0
        keys = self.keys
        woken = int(await self._call("wake", self._queue, keys.nudge, self._sender, *order_ids))
        if woken:
            self._listeners.notify()
        return woken

    async def get(self, order_id: str) -> WatchState | None:
        return next(iter(await self._states([order_id])), None)

    async def _states(self, order_ids: Sequence[str]) -> list[WatchState]:
        """The watches of `order_ids` that exist, read in one round trip."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for order_id in order_ids:
                pipe.hgetall(self.keys.watch + order_id)
                pipe.zscore(self.keys.due, order_id)
            replies = await pipe.execute()
        states = []
        for order_id, fields, score in zip(order_ids, replies[::2], replies[1::2], strict=True):
            if fields:
                outcome = stored_outcome(
                    order_id,
                    fields.get(b"order"),
                    fields.get(b"error"),
                    _decoded(fields.get(b"tag")),
                )
                settled, acked = b"seq" in fields, b"acked_at" in fields
                attempts = int(fields[b"attempts"])
                failure = fields.get(b"failure")
                kept = stored_state(
                    outcome, attempts, score, settled=settled, acknowledged=acked, failure=failure
                )
                states.append(kept)
        return states

    async def count(self) -> WatchCounts:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zcard(self.keys.due)
            pipe.xlen(self.keys.outcomes)
            pipe.zcard(self.keys.acked)
            pending, unacknowledged, acknowledged = await pipe.execute()
        return WatchCounts(pending, unacknowledged + acknowledged, unacknowledged)

    async def watches(self, settled: bool | None = None) -> AsyncIterator[WatchState]:
        # Pending watches are the members of `due` (ZSCAN); any watch is a hash (SCAN).
        seen: set[str] = set()
        if settled is False:
            batches = self._redis.zscan_iter(self.keys.due, count=BATCH)
        else:
            batches = self._redis.scan_iter(match=_glob(self.keys.watch) + "*", count=BATCH)
        prefix = len(self.keys.watch.encode())
        batch: list[str] = []
        async for item in batches:
            key = item[0] if isinstance(item, tuple) else item[prefix:]
            order_id = key.decode("utf-8", "surrogatepass")
            if order_id not in seen:  # SCAN may return a key twice
                seen.add(order_id)
                batch.append(order_id)
            if len(batch) >= BATCH:
                for state in await self._states(batch):
                    if settled in (None, state.settled):
                        yield state
                batch = []
        for state in await self._states(batch):
            if settled in (None, state.settled):
                yield state

    async def retry(self, order_ids: Sequence[str]) -> int:
        if not order_ids:
            return 0
        keys = self.keys
        rearmed = int(
            await self._call(
                "retry",
                [keys.due, keys.outcomes, keys.acked, keys.handed, keys.overdue, keys.waiting],
                keys.nudge,
                self._sender,
                *order_ids,
            )
        )
        if rearmed:
            self._listeners.notify()
        return rearmed

    async def remove(self, order_ids: Sequence[str]) -> int:
        if not order_ids:
            return 0
        keys = self.keys
        return int(
            await self._call(
                "remove",
                [keys.due, keys.outcomes, keys.acked, keys.handed, keys.overdue, keys.waiting],
                *order_ids,
            )
        )

    async def purge(self, retain: float) -> int:
        purged = 0
        while True:
            batch = int(await self._call("purge", [self.keys.acked], repr(retain), _PURGE_BATCH))
            purged += batch
            if batch < _PURGE_BATCH:
                return purged
