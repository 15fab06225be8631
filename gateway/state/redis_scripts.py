"""The Lua scripts that make each Redis state update atomic.

Every script checks the type of each key it touches: a key of the wrong type
is corrupt data and is treated as absent (deleted, then rebuilt), so a script
never fails on it. Money is integer micro-dollars; increments are passed as
strings and reach ``HINCRBY`` unchanged, so they are never reformatted as Lua
floats. In Redis Cluster all keys of one script share a hash tag (see
:mod:`gateway.state.kv_names`).

The arithmetic mirrors :mod:`gateway.state.window` and
:mod:`gateway.state.money`, which the in-memory backend uses directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LuaScript:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


_RESET_WRONG_TYPE = """
local function reset_wrong_type(key, expected)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= expected and kind ~= 'none' then
    redis.call('DEL', key)
    return true
  end
  return kind == 'none'
end
"""

#: KEYS: current window, previous window.
#: ARGV: rpm (-1 = none), tpm (-1 = none), tokens, elapsed s, ttl s, window s,
#: requests (1, or 0 for a lease top-up), wanted extra requests, wanted extra
#: tokens, lease share.
#: Returns {admitted 0|1, cur requests, cur tokens, prev requests, prev tokens,
#: extra requests, extra tokens}, counts as they were before this call.
LEASE = LuaScript(
    "lease",
    _RESET_WRONG_TYPE
    + """
local function counts(key)
  if reset_wrong_type(key, 'hash') then return 0, 0 end
  local v = redis.call('HMGET', key, 'r', 't')
  return tonumber(v[1]) or 0, tonumber(v[2]) or 0
end
-- mirrors gateway.state.window.extra
local function extra(limit, used_after, want, share)
  if limit < 0 or want <= 0 then return 0 end
  local room = math.floor((limit - used_after) * share)
  if room < 0 then room = 0 end
  return math.min(want, room)
end
local cur_r, cur_t = counts(KEYS[1])
local prev_r, prev_t = counts(KEYS[2])
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local weight = 1.0 - tonumber(ARGV[4]) / tonumber(ARGV[6])
local requests, share = tonumber(ARGV[7]), tonumber(ARGV[10])
local used_r = prev_r * weight + cur_r + requests
local used_t = prev_t * weight + cur_t + tokens
local admitted = 1
if rpm >= 0 and used_r > rpm then admitted = 0 end
if tpm >= 0 and used_t > tpm then admitted = 0 end
local extra_r, extra_t = 0, 0
if admitted == 1 then
  extra_r = extra(rpm, used_r, tonumber(ARGV[8]), share)
  extra_t = extra(tpm, used_t, tonumber(ARGV[9]), share)
  redis.call('HSET', KEYS[1], 'r', cur_r + requests + extra_r, 't', cur_t + tokens + extra_t)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
return {admitted, cur_r, cur_t, prev_r, prev_t, extra_r, extra_t}
""",
)

#: KEYS: a window. ARGV: request delta, token delta, ttl s. Counts never go
#: below zero; giving back to a window that is gone does nothing.
ADJUST = LuaScript(
    "adjust",
    _RESET_WRONG_TYPE
    + """
local gone = reset_wrong_type(KEYS[1], 'hash')
local dr, dt = tonumber(ARGV[1]), tonumber(ARGV[2])
if gone and dr <= 0 and dt <= 0 then return 0 end
local r = (tonumber(redis.call('HGET', KEYS[1], 'r')) or 0) + dr
local t = (tonumber(redis.call('HGET', KEYS[1], 't')) or 0) + dt
if r < 0 then r = 0 end
if t < 0 then t = 0 end
redis.call('HSET', KEYS[1], 'r', r, 't', t)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
""",
)

#: KEYS: the scope's slots (sorted set: slot id -> expiry time).
#: ARGV: now, max streams, new slot id, its expiry time, key ttl s.
OPEN_STREAM = LuaScript(
    "open_stream",
    _RESET_WRONG_TYPE
    + """
reset_wrong_type(KEYS[1], 'zset')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
""",
)

#: KEYS: the scope's slots. ARGV: now. The live slots (expired ones dropped).
COUNT_STREAMS = LuaScript(
    "count_streams",
    _RESET_WRONG_TYPE
    + """
if reset_wrong_type(KEYS[1], 'zset') then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
""",
)

#: KEYS: the scope's slots. ARGV: now, key ttl s. Frees the newest live slot.
CLOSE_STREAM = LuaScript(
    "close_stream",
    _RESET_WRONG_TYPE
    + """
if reset_wrong_type(KEYS[1], 'zset') then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZPOPMAX', KEYS[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
""",
)

_RESERVATIONS = """
-- live buckets of a reservations hash, dropping expired and corrupt fields
local function live_buckets(key, oldest)
  local buckets = {}
  if reset_wrong_type(key, 'hash') then return buckets end
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local b, v = tonumber(flat[i]), tonumber(flat[i + 1])
    if b == nil or v == nil or b < oldest then
      redis.call('HDEL', key, flat[i])
    else
      table.insert(buckets, {b, v, flat[i]})
    end
  end
  return buckets
end

-- take amount from the newest buckets first, never below zero
local function release(key, amount, oldest, ttl)
  local buckets = live_buckets(key, oldest)
  table.sort(buckets, function(x, y) return x[1] > y[1] end)
  for _, item in ipairs(buckets) do
    if amount <= 0 then break end
    local taken = math.min(item[2], amount)
    amount = amount - taken
    if item[2] - taken <= 0 then
      redis.call('HDEL', key, item[3])
    else
      redis.call('HSET', key, item[3], string.format('%d', item[2] - taken))
    end
  end
  if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, ttl) end
end
"""

#: KEYS: the team's spend hash for the budget's period, the team's reservations.
#: ARGV: budget, estimate, wanted extra (micro-dollars), lease share, current
#: bucket, oldest live bucket, ttl s.
#: Returns -1 when the estimate does not fit (nothing set aside), else the extra
#: set aside with it (mirrors gateway.state.window.extra).
RESERVE = LuaScript(
    "reserve",
    _RESET_WRONG_TYPE
    + _RESERVATIONS
    + """
local outstanding = 0
for _, item in ipairs(live_buckets(KEYS[2], tonumber(ARGV[6]))) do
  outstanding = outstanding + item[2]
end
local spent = 0
if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
  spent = tonumber(redis.call('HGET', KEYS[1], 'usd')) or 0
end
local budget, estimate, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used_after = spent + outstanding + estimate
if used_after > budget then return -1 end
local extra = 0
if want > 0 then
  extra = math.floor((budget - used_after) * tonumber(ARGV[4]))
  if extra < 0 then extra = 0 end
  if extra > want then extra = want end
end
redis.call('HINCRBY', KEYS[2], ARGV[5], string.format('%d', estimate + extra))
redis.call('EXPIRE', KEYS[2], ARGV[7])
return extra
""",
)

#: KEYS: the team's reservations. ARGV: amount (micro-dollars), oldest live bucket, ttl s.
RELEASE = LuaScript(
    "release",
    _RESET_WRONG_TYPE
    + _RESERVATIONS
    + """
release(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
return 1
""",
)

#: KEYS: the team's day spend hash, month spend hash, reservations, and on a
#: single node (where keys of different slots may share a script) the day and
#: month team indexes.
#: ARGV: day ttl s, month ttl s, amount to release, oldest live bucket,
#: reservation ttl s, team, then field/increment pairs.
RECORD = LuaScript(
    "record",
    _RESET_WRONG_TYPE
    + _RESERVATIONS
    + """
for i = 1, 2 do
  reset_wrong_type(KEYS[i], 'hash')
  for j = 7, #ARGV, 2 do
    local done = redis.pcall('HINCRBY', KEYS[i], ARGV[j], ARGV[j + 1])
    if type(done) == 'table' and done['err'] then
      -- a corrupt (non-integer) field starts again from this increment
      redis.call('HSET', KEYS[i], ARGV[j], ARGV[j + 1])
    end
  end
  redis.call('EXPIRE', KEYS[i], ARGV[i])
end
release(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])
for i = 4, #KEYS do
  reset_wrong_type(KEYS[i], 'set')
  redis.call('SADD', KEYS[i], ARGV[6])
  redis.call('EXPIRE', KEYS[i], ARGV[i - 3])
end
return 1
""",
)
