"""The Redis side of `RedisStore`: its key layout and its Lua scripts (pure text, no I/O).

Every write of the store is one of these scripts, so it is atomic (see `redis` for the
protocol they implement); `_redis_connection.connect` makes the redis-py client they run on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from .._redis_connection import hash_tag

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
    "RETRY",
    "SCRIPTS",
    "SETTLE",
    "WAKE",
    "RedisKeys",
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
    overdue: str  # sorted set: due order ID -> rank (`PRELUDE`'s `rank`): claimed lowest first
    waiting: str  # sorted set: pending order ID not in `overdue` -> next poll
    layout: str  # set once `overdue` and `waiting` are kept (absent in a 0.2.0 keyspace)
    fence: str  # counter: fencing tokens
    seq: str  # counter: delivery order of settled outcomes
    nudge: str  # pub/sub channel: watches were added, woken or released


def redis_keys(namespace: str) -> RedisKeys:
    """The keys of `namespace` (pure), all under the hash tag `{namespace}`."""
    tag = hash_tag("namespace", namespace)
    return RedisKeys(
        due=f"{tag}:due",
        watch=f"{tag}:w:",
        outcomes=f"{tag}:outcomes",
        acked=f"{tag}:acked",
        handed=f"{tag}:handed",
        overdue=f"{tag}:overdue",
        waiting=f"{tag}:waiting",
        layout=f"{tag}:layout",
        fence=f"{tag}:fence",
        seq=f"{tag}:seq",
        nudge=f"{tag}:nudge",
    )


# -- Lua -------------------------------------------------------------------------------------
# Every script takes ARGV[1] = the caller's clock ('' = Redis TIME) and ARGV[2] = the prefix of
# the watch hashes. Watch hashes are built from that prefix inside the scripts (a claim cannot
# know its keys in advance); they share the namespace's hash tag, so Cluster keeps them in the
# declared keys' slot. Hash fields: attempts, fence, leased (worker, only while claimed), woken,
# answered (when it last answered; absent: never, or woken since), tag, policy, deadline,
# status, order (JSON), failure (the last poll's, while pending: not `error`, which a 0.2.0
# worker would deliver with an outcome it settles), seq and error once settled, acked_at.
#
# The most overdue first: `due` holds every pending watch by next poll; besides, each is either
# in `overdue` (due, by rank: a claim takes the lowest first) or in `waiting` (by next poll).
# A claim first moves into `overdue` up to a batch of the watches that fell due (a score range
# of `waiting`); a script that schedules a watch puts it in one or the other (`schedule`).
# Scripts that keep them take `overdue` and `waiting` as their last two KEYS. A keyspace from
# 0.2.0 has neither: its first claim puts every pending watch in `waiting` (then `layout`).

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
-- A number as Redis reads it back unchanged (a bare Lua number may be cut to 14 digits).
local function exact(number) return string.format('%.17g', number) end
-- A due watch's place in `overdue`: when it last answered; never answered (or woken) ones go
-- before every answer (store clocks are seconds since the epoch, far below 1e10), among
-- themselves by when they fell due.
local function rank(key, due)
  local answered = redis.call('HGET', key, 'answered')
  if answered then return tonumber(answered) end
  return due - 1e10
end
local overdue, waiting = KEYS[#KEYS - 1], KEYS[#KEYS]  -- where the script declares them
-- Next poll of watch `id` (hash `key`) at `due`: due now, it is in `overdue`, else waiting.
local function schedule(id, key, due)
  redis.call('ZADD', KEYS[1], due, id)
  if due <= now then
    redis.call('ZADD', overdue, rank(key, due), id)
    redis.call('ZREM', waiting, id)
  else
    redis.call('ZADD', waiting, due, id)
    redis.call('ZREM', overdue, id)
  end
end
-- Watch `id` is no longer pending (settled or removed).
local function unschedule(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', overdue, id)
  redis.call('ZREM', waiting, id)
end
-- For each watch in ARGV from `first` (`stride` values each: ID, fencing token, ...) still held
-- under its token, write(i, id, key); returns the IDs that were not (stale: nothing written).
local function each_held(first, stride, write)
  local stale = {}
  for i = first, #ARGV, stride do
    local id = ARGV[i]
    local key = prefix .. id
    if held(key, ARGV[i + 1]) then write(i, id, key) else stale[#stale + 1] = id end
  end
  return stale
end
-- For each order ID in ARGV from `first`, write(id, key); returns how many it changed (true).
local function count_each(first, write)
  local count = 0
  for i = first, #ARGV do
    if write(ARGV[i], prefix .. ARGV[i]) then count = count + 1 end
  end
  return count
end
-- Polls answered under the lease: count them, end the lease, keep the order ('' = none).
local function answered(key, polls, status, order)
  redis.call('HINCRBY', key, 'attempts', polls)
  redis.call('HDEL', key, 'leased', 'woken')
  if order ~= '' then redis.call('HSET', key, 'status', status, 'order', order) end
end
"""

# KEYS: due, layout, overdue, waiting. ARGV[3]: nudge channel, ARGV[4]: sender, ARGV[5]: JSON
# [[id, tag, policy, deadline]].
ADD = """
local added = 0
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[2], 2) end  -- nothing to fill
for _, w in ipairs(cjson.decode(ARGV[5])) do
  local key = prefix .. w[1]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'attempts', 0, 'fence', 0)
    if w[2] ~= cjson.null then redis.call('HSET', key, 'tag', w[2]) end
    if w[3] ~= cjson.null then redis.call('HSET', key, 'policy', w[3]) end
    if w[4] ~= cjson.null then redis.call('HSET', key, 'deadline', w[4]) end
    schedule(w[1], key, now)
    added = added + 1
  end
end
if added > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return added
"""

# KEYS: due, fence counter, layout, overdue, waiting. ARGV[3]: limit, ARGV[4]: lease,
# ARGV[5]: worker, ARGV[6]: how many watches that fell due to queue at most.
CLAIM = """
local lease_end, limit, out = now + tonumber(ARGV[4]), tonumber(ARGV[3]), {}
if redis.call('EXISTS', KEYS[3]) == 0 then  -- a 0.2.0 keyspace: every pending watch waits
  redis.call('ZUNIONSTORE', waiting, 2, waiting, KEYS[1], 'AGGREGATE', 'MIN')
  redis.call('SET', KEYS[3], 2)
end
local fell = redis.call(
  'ZRANGE', waiting, '-inf', exact(now), 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[6]), 'WITHSCORES')
for i = 1, #fell, 2 do
  redis.call('ZADD', overdue, rank(prefix .. fell[i], tonumber(fell[i + 1])), fell[i])
  redis.call('ZREM', waiting, fell[i])
end
while #out < limit do
  local ids = redis.call('ZRANGE', overdue, 0, limit - #out - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local due = redis.call('ZSCORE', KEYS[1], id)
    if due and tonumber(due) <= now then
      local key = prefix .. id
      local fence = redis.call('INCR', KEYS[2])
      -- Due again at the lease's end: if this worker never answers, it comes back then.
      schedule(id, key, lease_end)
      redis.call('HSET', key, 'fence', fence, 'leased', ARGV[5])
      local f = redis.call(
        'HMGET', key, 'attempts', 'policy', 'deadline', 'tag', 'status', 'order', 'failure')
      out[#out + 1] = {id, fence, f[1], f[2], f[3], f[4], f[5], f[6], f[7]}
    else  -- not pending, or leased meanwhile by a 0.2.0 worker's claim
      redis.call('ZREM', overdue, id)
    end
  end
end
return out
"""

# KEYS: due, overdue, waiting. ARGV from 3, six per answer: id, fence, next poll, status,
# order, the poll's failure ('' = none).
RECORD = """
return each_held(3, 6, function(i, id, key)
  local due = tonumber(ARGV[i + 2])
  -- Woken while its poll ran: poll again at once, first, rather than at the planned time.
  if redis.call('HEXISTS', key, 'woken') == 1 then
    due = math.min(due, now)
    redis.call('HDEL', key, 'answered')
  else
    redis.call('HSET', key, 'answered', exact(now))
  end
  answered(key, 1, ARGV[i + 3], ARGV[i + 4])
  if ARGV[i + 5] ~= '' then redis.call('HSET', key, 'failure', ARGV[i + 5])
  else redis.call('HDEL', key, 'failure') end
  schedule(id, key, due)
end)
"""

# KEYS: due, seq counter, outcomes, overdue, waiting. ARGV from 3, six per settlement:
# id, fence, polled (0/1), status, order, error ('' = none).
SETTLE = """
return each_held(3, 6, function(i, id, key)
  local seq = redis.call('INCR', KEYS[2])
  answered(key, tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4])
  redis.call('HSET', key, 'seq', seq)
  redis.call('HDEL', key, 'failure')
  if ARGV[i + 5] ~= '' then redis.call('HSET', key, 'error', ARGV[i + 5]) end
  unschedule(id)
  -- Delivered (by any worker) until acknowledged: committed here, before anyone sees it.
  redis.call('XADD', KEYS[3], '0-' .. seq, 'id', id)
end)
"""

# KEYS: due, overdue, waiting. ARGV[3]: lease; from 4, pairs: id, fence.
RENEW = """
local lease_end = now + tonumber(ARGV[3])
return each_held(4, 2, function(i, id, key) schedule(id, key, lease_end) end)
"""

# KEYS: due, overdue, waiting. ARGV[3]: nudge channel, ARGV[4]: sender; from 5, pairs: id,
# fence.
RELEASE = """
local stale = each_held(5, 2, function(i, id, key)
  redis.call('HDEL', key, 'leased', 'woken')
  schedule(id, key, now)
end)
if #stale < (#ARGV - 4) / 2 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
"""

# KEYS: due, overdue, waiting. ARGV[3]: nudge channel, ARGV[4]: sender; from 5: order IDs.
WAKE = """
local woken = count_each(5, function(id, key)
  local score = redis.call('ZSCORE', KEYS[1], id)
  if not score then return false end  -- settled and removed watches have no score
  if tonumber(score) > now then
    if redis.call('HEXISTS', key, 'leased') == 1 then
      redis.call('HSET', key, 'woken', 1)  -- a poll is under way: again once it answers
    else
      redis.call('HDEL', key, 'answered')  -- first, as if never answered
      schedule(id, key, now)
    end
  end
  return true
end)
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
  local f = redis.call('HMGET', prefix .. id, 'seq', 'consumer')
  if f[2] == ARGV[5] then
    -- Its own consumer asks: it is alive and has it already (redelivery is for consumers
    -- that died): only its hold is renewed.
    redis.call('ZADD', KEYS[2], now, id)
  elseif tonumber(f[1]) < first then
    hand(tonumber(f[1]), id)  -- behind this consumer's cursor: it would miss it
  end
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
return count_each(3, function(id, key)
  local f = redis.call('HMGET', key, 'seq', 'acked_at')
  if not f[1] or f[2] then return false end
  redis.call('HSET', key, 'acked_at', now)
  redis.call('XDEL', KEYS[1], '0-' .. f[1])
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('ZREM', KEYS[3], id)
  return true
end)
"""

# KEYS: due, outcomes, acked, handed, overdue, waiting. ARGV from 3: order IDs.
REMOVE = """
return count_each(3, function(id, key)
  local seq = redis.call('HGET', key, 'seq')
  if redis.call('DEL', key) == 0 then return false end
  unschedule(id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  if seq then redis.call('XDEL', KEYS[2], '0-' .. seq) end
  return true
end)
"""

# KEYS: due, outcomes, acked, handed, overdue, waiting. ARGV[3]: nudge channel, ARGV[4]:
# sender; from 5: order
# IDs. Re-arms settled watches: pending again, due now, their outcome no longer delivered
# (fences stay: the counter only grows).
RETRY = """
local rearmed = count_each(5, function(id, key)
  local seq = redis.call('HGET', key, 'seq')
  if not seq then return false end
  redis.call(
    'HDEL', key, 'seq', 'error', 'acked_at', 'consumer', 'leased', 'woken', 'answered', 'failure')
  redis.call('HSET', key, 'attempts', 0)
  redis.call('XDEL', KEYS[2], '0-' .. seq)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  schedule(id, key, now)
  return true
end)
if rearmed > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return rearmed
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

#: Every script by the name `RedisStore` calls it by (each runs after `PRELUDE`).
SCRIPTS: Final[Mapping[str, str]] = {
    "add": ADD,
    "claim": CLAIM,
    "record": RECORD,
    "settle": SETTLE,
    "renew": RENEW,
    "release": RELEASE,
    "wake": WAKE,
    "outcomes": OUTCOMES,
    "ack": ACK,
    "remove": REMOVE,
    "retry": RETRY,
    "purge": PURGE,
}
