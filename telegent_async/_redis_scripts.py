"""The Redis side of `RedisStore`: its key layout and its Lua scripts (pure text, no I/O).

Every write of the store is one of these scripts, so it is atomic (see `_redis` for the
protocol they implement); `connect` makes the redis-py client they run on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "ACK",
    "ADD",
    "CLAIM",
    "OUTCOMES",
    "PRELUDE",
    "PURGE",
    "RECORD",
    "RELEASE",
    "REMOVE",
    "RENEW",
    "SETTLE",
    "WAKE",
    "RedisKeys",
    "connect",
    "hash_tag",
    "redis_keys",
]


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

PRELUDE = """
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
ADD = """
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
CLAIM = """
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
RECORD = """
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
SETTLE = """
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
RENEW = """
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
RELEASE = """
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
WAKE = """
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
OUTCOMES = """
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
ACK = """
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
REMOVE = """
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
PURGE = """
local cutoff = '(' .. string.format('%.17g', now - tonumber(ARGV[3]))
local ids = redis.call('ZRANGE', KEYS[1], '-inf', cutoff, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('DEL', prefix .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""
