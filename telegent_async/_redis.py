"""`RedisStore`: watches shared by workers on many hosts, kept in Redis.

Layout (`redis_keys`): a sorted set of pending watches scored by next-poll time, one hash per
watch, a stream of settled outcomes waiting for acknowledgement, a sorted set of acknowledged
ones by acknowledgement time (for `purge`), and two counters (fences, delivery order). Every
key of a namespace carries the hash tag `{namespace}`, so they share one hash slot and the Lua
scripts below work on Redis Cluster too.

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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from ._models import Order, OrderOutcome, decode_order, parse_status
from ._store import (
    Answer,
    Claim,
    Delivery,
    NewWatch,
    Settlement,
    WatchState,
    _Listeners,
    decode_error,
    decode_policy,
    encode_error,
    encode_order,
    encode_policy,
    utc,
)
from ._timing import PollPolicy

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisKeys", "RedisStore", "connect", "hash_tag", "redis_keys"]

logger = logging.getLogger("telegent_async")

DEFAULT_NAMESPACE = "telegent"
#: Seconds an outcome handed to one worker's `settled()` is not handed to another (unless
#: acknowledged first): long enough to handle it, short enough if that worker died.
DELIVERY_LEASE = 30.0
#: Acknowledged outcomes dropped per purge script (a long script would block Redis).
_PURGE_BATCH = 1000


@attrs.frozen
class RedisKeys:
    """The keys of one namespace; all share the hash tag `{namespace}` (one cluster slot)."""

    due: str  # sorted set: order ID -> next poll (lease end while claimed); pending only
    watch: str  # prefix of the per-watch hashes: watch + order_id
    outcomes: str  # stream of settled, unacknowledged outcomes; entry ID 0-<seq>
    acked: str  # sorted set: order ID -> acknowledgement time
    handed: str  # sorted set: unacknowledged outcome -> when it was handed to a consumer
    fence: str  # counter: fencing tokens
    seq: str  # counter: delivery order of settled outcomes
    nudge: str  # pub/sub channel: watches were added, woken or released


def hash_tag(what: str, name: object) -> str:
    """`{name}`: keys sharing it share a Cluster slot. Refuses names that would break it."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name or not name.isprintable() or "{" in name or "}" in name:
        raise ValueError(f"{what} must be printable, non-empty, without braces: {name!r}")
    return f"{{{name}}}"


def redis_keys(namespace: str) -> RedisKeys:
    """The keys of `namespace` (pure), all under the hash tag `{namespace}`."""
    tag = hash_tag("namespace", namespace)
    return RedisKeys(
        due=f"{tag}:due",
        watch=f"{tag}:w:",
        outcomes=f"{tag}:outcomes",
        acked=f"{tag}:acked",
        handed=f"{tag}:handed",
        fence=f"{tag}:fence",
        seq=f"{tag}:seq",
        nudge=f"{tag}:nudge",
    )


def connect(url: str) -> redis.asyncio.Redis:
    """A redis-py asyncio client for `url` (a clear error when the `redis` extra is missing)."""
    if not isinstance(url, str):
        raise TypeError(f"the Redis URL must be a str, not {type(url).__name__}")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"not a Redis URL (redis://, rediss:// or unix://): {url!r}")
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Redis support needs redis-py: pip install 'telegent-async[redis]'"
        ) from exc
    return redis.asyncio.Redis.from_url(url)


# -- Lua -------------------------------------------------------------------------------------
# Every script takes ARGV[1] = the caller's clock ('' = Redis TIME) and ARGV[2] = the prefix of
# the watch hashes. Watch hashes are built from that prefix inside the scripts (a claim cannot
# know its keys in advance); they share the namespace's hash tag, so Cluster keeps them in the
# declared keys' slot. Hash fields: attempts, fence, leased (worker, only while claimed), woken,
# tag, policy, deadline, status, order (JSON), seq and error once settled, acked_at.

_PRELUDE = """
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- Still leased under this fencing token? (Not if its lease was taken over or written back.)
local function held(key, fence)
  local f = redis.call('HMGET', key, 'fence', 'leased')
  return f[1] == fence and f[2] ~= false
end
local now, prefix = clock(ARGV[1]), ARGV[2]
"""

# KEYS: due. ARGV[3]: nudge channel, ARGV[4]: sender, ARGV[5]: JSON [[id, tag, policy, deadline]].
_ADD = """
local added = 0
for _, w in ipairs(cjson.decode(ARGV[5])) do
  local key = prefix .. w[1]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'attempts', 0, 'fence', 0)
    if w[2] ~= cjson.null then redis.call('HSET', key, 'tag', w[2]) end
    if w[3] ~= cjson.null then redis.call('HSET', key, 'policy', w[3]) end
    if w[4] ~= cjson.null then redis.call('HSET', key, 'deadline', w[4]) end
    redis.call('ZADD', KEYS[1], now, w[1])
    added = added + 1
  end
end
if added > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return added
"""

# KEYS: due, fence counter. ARGV[3]: limit, ARGV[4]: lease, ARGV[5]: worker.
_CLAIM = """
local lease_end, out = now + tonumber(ARGV[4]), {}
local ids = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = prefix .. id
  local fence = redis.call('INCR', KEYS[2])
  -- The score moves to the lease's end: if this worker never answers, it is due again then.
  redis.call('ZADD', KEYS[1], lease_end, id)
  redis.call('HSET', key, 'fence', fence, 'leased', ARGV[5])
  local f = redis.call('HMGET', key, 'attempts', 'policy', 'deadline', 'tag', 'status', 'order')
  out[#out + 1] = {id, fence, f[1], f[2], f[3], f[4], f[5], f[6]}
end
return out
"""

# KEYS: due. ARGV from 3, five per answer: id, fence, next poll, status, order ('' = none).
_RECORD = """
local stale = {}
for i = 3, #ARGV, 5 do
  local id, key, due = ARGV[i], prefix .. ARGV[i], tonumber(ARGV[i + 2])
  if held(key, ARGV[i + 1]) then
    -- Woken while its poll ran: poll again at once rather than at the planned time.
    if redis.call('HEXISTS', key, 'woken') == 1 then due = math.min(due, now) end
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HDEL', key, 'leased', 'woken')
    if ARGV[i + 4] ~= '' then
      redis.call('HSET', key, 'status', ARGV[i + 3], 'order', ARGV[i + 4])
    end
    redis.call('ZADD', KEYS[1], due, id)
  else
    stale[#stale + 1] = id
  end
end
return stale
"""

# KEYS: due, seq counter, outcomes. ARGV from 3, six per settlement:
# id, fence, polled (0/1), status, order, error ('' = none).
_SETTLE = """
local stale = {}
for i = 3, #ARGV, 6 do
  local id, key = ARGV[i], prefix .. ARGV[i]
  if held(key, ARGV[i + 1]) then
    local seq = redis.call('INCR', KEYS[2])
    redis.call('HINCRBY', key, 'attempts', tonumber(ARGV[i + 2]))
    redis.call('HDEL', key, 'leased', 'woken')
    redis.call('HSET', key, 'seq', seq)
    if ARGV[i + 4] ~= '' then
      redis.call('HSET', key, 'status', ARGV[i + 3], 'order', ARGV[i + 4])
    end
    if ARGV[i + 5] ~= '' then redis.call('HSET', key, 'error', ARGV[i + 5]) end
    redis.call('ZREM', KEYS[1], id)
    -- Delivered (by any worker) until acknowledged: committed here, before anyone sees it.
    redis.call('XADD', KEYS[3], '0-' .. seq, 'id', id)
  else
    stale[#stale + 1] = id
  end
end
return stale
"""

# KEYS: due. ARGV[3]: lease; from 4, pairs: id, fence.
_RENEW = """
local lease_end, stale = now + tonumber(ARGV[3]), {}
for i = 4, #ARGV, 2 do
  if held(prefix .. ARGV[i], ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], lease_end, ARGV[i])
  else
    stale[#stale + 1] = ARGV[i]
  end
end
return stale
"""

# KEYS: due. ARGV[3]: nudge channel, ARGV[4]: sender; from 5, pairs: id, fence.
_RELEASE = """
local released = 0
for i = 5, #ARGV, 2 do
  local key = prefix .. ARGV[i]
  if held(key, ARGV[i + 1]) then
    redis.call('HDEL', key, 'leased', 'woken')
    redis.call('ZADD', KEYS[1], now, ARGV[i])
    released = released + 1
  end
end
if released > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return released
"""

# KEYS: due. ARGV[3]: nudge channel, ARGV[4]: sender; from 5: order IDs.
_WAKE = """
local woken = 0
for i = 5, #ARGV do
  local key, score = prefix .. ARGV[i], redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score then  -- pending (settled and removed watches have no score)
    woken = woken + 1
    if tonumber(score) > now then
      if redis.call('HEXISTS', key, 'leased') == 1 then
        redis.call('HSET', key, 'woken', 1)  -- a poll is under way: again once it answers
      else
        redis.call('ZADD', KEYS[1], now, ARGV[i])
      end
    end
  end
end
if woken > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return woken
"""

# KEYS: outcomes, handed. ARGV[3]: first seq, ARGV[4]: limit, ARGV[5]: consumer, ARGV[6]:
# delivery lease. Returns {seq, id, order, error, tag}... Each outcome is handed to one
# consumer (a store object: one worker's `settled()`) at a time, so workers divide the
# deliveries; one handed to a worker that died goes, when its lease ends, to whichever asks
# next, wherever its cursor is (at least once, not once per worker).
_OUTCOMES = """
local out, limit, first = {}, tonumber(ARGV[4]), tonumber(ARGV[3])
local function hand(seq, id)
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'order', 'error', 'tag')
  redis.call('HSET', key, 'consumer', ARGV[5])
  redis.call('ZADD', KEYS[2], now, id)
  out[#out + 1] = {seq, id, f[1], f[2], f[3]}
end
local expired = now - tonumber(ARGV[6])
local lapsed = redis.call('ZRANGE', KEYS[2], '-inf', expired, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(lapsed) do
  local seq = tonumber(redis.call('HGET', prefix .. id, 'seq'))
  if seq < first then hand(seq, id) end  -- behind this consumer's cursor: it would miss it
end
while #out < limit do
  local entries = redis.call('XRANGE', KEYS[1], '0-' .. first, '+', 'COUNT', limit)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local id, seq = entry[2][2], tonumber(string.sub(entry[1], 3))
    local since = redis.call('ZSCORE', KEYS[2], id)
    local mine = redis.call('HGET', prefix .. id, 'consumer') == ARGV[5]
    if not since or mine or tonumber(since) <= expired then
      hand(seq, id)
      if #out >= limit then break end
    end
    first = seq + 1
  end
end
return out
"""

# KEYS: outcomes, acked, handed. ARGV from 3: order IDs.
_ACK = """
local acked = 0
for i = 3, #ARGV do
  local key = prefix .. ARGV[i]
  local f = redis.call('HMGET', key, 'seq', 'acked_at')
  if f[1] and not f[2] then
    redis.call('HSET', key, 'acked_at', now)
    redis.call('XDEL', KEYS[1], '0-' .. f[1])
    redis.call('ZADD', KEYS[2], now, ARGV[i])
    redis.call('ZREM', KEYS[3], ARGV[i])
    acked = acked + 1
  end
end
return acked
"""

# KEYS: due, outcomes, acked, handed. ARGV from 3: order IDs.
_REMOVE = """
local removed = 0
for i = 3, #ARGV do
  local key = prefix .. ARGV[i]
  local seq = redis.call('HGET', key, 'seq')
  if redis.call('DEL', key) == 1 then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[3], ARGV[i])
    redis.call('ZREM', KEYS[4], ARGV[i])
    if seq then redis.call('XDEL', KEYS[2], '0-' .. seq) end
    removed = removed + 1
  end
end
return removed
"""

# KEYS: acked. ARGV[3]: retain, ARGV[4]: batch. Drops outcomes acknowledged before now - retain.
_PURGE = """
local cutoff = '(' .. string.format('%.17g', now - tonumber(ARGV[3]))
local ids = redis.call('ZRANGE', KEYS[1], '-inf', cutoff, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('DEL', prefix .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""


_Arg: TypeAlias = "str | bytes | int | float"


def _status(status: str) -> bytes:
    """A status as Redis keeps it: JSON may carry lone surrogates, kept as they came."""
    return status.encode("utf-8", "surrogatepass")


def _answer(order: Order | None) -> list[_Arg]:
    """Status and order JSON of an answer, as the scripts take them ('' = no answer)."""
    return ["", ""] if order is None else [_status(order.raw_status), encode_order(order)]


def _text(value: bytes | None) -> str | None:
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
        self.namespace = namespace
        self._url = url
        self._redis = connect(url)
        self._clock = clock
        self._sender = secrets.token_hex(8).encode()  # ignores its own nudges
        self._listeners = _Listeners()
        self._listening: asyncio.Task[None] | None = None
        self._policies: dict[bytes, PollPolicy] = {}
        self._scripts = {
            name: self._redis.register_script(_PRELUDE + body)
            for name, body in (
                ("add", _ADD),
                ("claim", _CLAIM),
                ("record", _RECORD),
                ("settle", _SETTLE),
                ("renew", _RENEW),
                ("release", _RELEASE),
                ("wake", _WAKE),
                ("outcomes", _OUTCOMES),
                ("ack", _ACK),
                ("remove", _REMOVE),
                ("purge", _PURGE),
            )
        }

    def __repr__(self) -> str:
        # Not the URL: it may carry a password.
        return f"RedisStore(namespace={self.namespace!r})"

    async def _call(self, script: str, keys: Sequence[str], *args: _Arg) -> Any:
        now = "" if self._clock is None else repr(self._clock())
        return await self._scripts[script](keys=list(keys), args=[now, self.keys.watch, *args])

    async def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        seconds, micros = await self._redis.time()
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
                self._listening = None

        return stop

    async def _listen(self) -> None:
        import redis.exceptions

        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.nudge)
                async for message in pubsub.listen():
                    if message.get("data") != self._sender:
                        self._listeners.notify()
            except (redis.exceptions.RedisError, OSError) as exc:
                # Nudges only speed things up: the scheduler looks every `max_idle` anyway.
                logger.warning("redis nudges unavailable, retrying: %s", exc)
                await asyncio.sleep(self.max_idle)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
        await self._redis.aclose()

    def _policy(self, text: bytes | None) -> PollPolicy | None:
        if text is None:
            return None
        policy = self._policies.get(text)
        if policy is None:
            policy = self._policies[text] = decode_policy(text.decode())
        return policy

    # -- contract ------------------------------------------------------------------------------

    async def add(self, watches: Sequence[NewWatch]) -> int:
        if not watches:
            return 0
        policies: dict[PollPolicy, str] = {}
        rows = [
            [
                w.order_id,
                w.tag,
                None
                if w.policy is None
                else policies.setdefault(w.policy, encode_policy(w.policy)),
                None if w.deadline is None else repr(w.deadline),
            ]
            for w in watches
        ]
        keys = self.keys
        added = int(await self._call("add", [keys.due], keys.nudge, self._sender, json.dumps(rows)))
        if added:
            self._listeners.notify()
        return added

    async def claim(self, limit: int, lease: float, worker: str) -> list[Claim]:
        keys = self.keys
        rows = await self._call("claim", [keys.due, keys.fence], limit, repr(lease), worker)
        return [
            Claim(
                order_id.decode(),
                int(fence),
                int(attempts or 0),
                self._policy(policy),
                _number(deadline),
                _text(tag),
                _text(status),
                last,
            )
            for order_id, fence, attempts, policy, deadline, tag, status, last in rows
        ]

    async def next_due(self) -> float | None:
        first = await self._redis.zrange(self.keys.due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def record(self, answers: Sequence[Answer]) -> list[str]:
        if not answers:
            return []
        args: list[_Arg] = []
        for answer in answers:
            order, claim = answer.order, answer.claim
            args += [claim.order_id, claim.fence, repr(answer.next_poll)]
            args += _answer(order)
        return [stale.decode() for stale in await self._call("record", [self.keys.due], *args)]

    async def settle(self, settlements: Sequence[Settlement]) -> list[str]:
        if not settlements:
            return []
        args: list[_Arg] = []
        for item in settlements:
            order, claim = item.order, item.claim
            args += [claim.order_id, claim.fence, int(item.polled)]
            args += _answer(order)
            args.append("" if item.error is None else encode_error(item.error))
        keys = self.keys
        stale = await self._call("settle", [keys.due, keys.seq, keys.outcomes], *args)
        return [order_id.decode() for order_id in stale]

    async def renew(self, claims: Sequence[Claim], lease: float) -> list[str]:
        if not claims:
            return []
        args = [value for claim in claims for value in (claim.order_id, claim.fence)]
        stale = await self._call("renew", [self.keys.due], repr(lease), *args)
        return [order_id.decode() for order_id in stale]

    async def release(self, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        args = [value for claim in claims for value in (claim.order_id, claim.fence)]
        keys = self.keys
        await self._call("release", [keys.due], keys.nudge, self._sender, *args)
        self._listeners.notify()

    async def outcomes(self, after: int = 0, limit: int = 100) -> list[Delivery]:
        keys = self.keys
        rows = await self._call(
            "outcomes", [keys.outcomes, keys.handed], after + 1, limit, self._sender, DELIVERY_LEASE
        )
        return [
            Delivery(
                int(seq),
                OrderOutcome(
                    order_id.decode(),
                    None if body is None else decode_order(200, body),
                    None if error is None else decode_error(error),
                    _text(tag),
                ),
            )
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
        woken = int(await self._call("wake", [keys.due], keys.nudge, self._sender, *order_ids))
        if woken:
            self._listeners.notify()
        return woken

    async def get(self, order_id: str) -> WatchState | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.watch + order_id)
            pipe.zscore(self.keys.due, order_id)
            fields, score = await pipe.execute()
        if not fields:
            return None
        status, body, error = fields.get(b"status"), fields.get(b"order"), fields.get(b"error")
        return WatchState(
            order_id,
            _text(fields.get(b"tag")),
            None if status is None else parse_status(status.decode("utf-8", "surrogatepass")),
            None if body is None else decode_order(200, body),
            int(fields[b"attempts"]),
            utc(score),
            b"seq" in fields,
            b"acked_at" in fields,
            None if error is None else decode_error(error),
        )

    async def remove(self, order_ids: Sequence[str]) -> int:
        if not order_ids:
            return 0
        keys = self.keys
        return int(
            await self._call(
                "remove", [keys.due, keys.outcomes, keys.acked, keys.handed], *order_ids
            )
        )

    async def purge(self, retain: float) -> int:
        purged = 0
        while True:
            batch = int(await self._call("purge", [self.keys.acked], repr(retain), _PURGE_BATCH))
            purged += batch
            if batch < _PURGE_BATCH:
                return purged
