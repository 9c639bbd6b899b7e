"""The Redis backend's scripts off the message hot path: declaring subscriptions, state,
cron marks, queue depth, stream trimming, and re-driving or discarding dead letters.

More keys (see `_redis_lua` for the queue's):

    P:state:<namespace>  HASH    key -> JSON text of the value
    P:statens            SET     namespaces holding at least one key
    P:tick:<len>:<step>:<scheduled>  STRING  a claimed cron tick (SET NX, expires, never deleted)
    P:lasttick           HASH    step -> scheduled time of its latest claimed tick
"""

from __future__ import annotations

from ._redis_lua import PRELUDE

# ARGV: P, topic, sub, strategy. The group starts at the end of the stream ("$"), so only
# messages published after the first declare reach the subscription, as in memory.
DECLARE = (
    PRELUDE
    + r"""
local topic, sub, strategy = ARGV[2], ARGV[3], ARGV[4]
local ok = redis.pcall('XGROUP', 'CREATE', k('stream', topic), sub, '$', 'MKSTREAM')
if type(ok) == 'table' and ok.err and not string.find(ok.err, 'BUSYGROUP') then
  return redis.error_reply(ok.err)
end
redis.call('SADD', k('subs', topic), sub)
redis.call('HSET', P .. ':subtopic', sub, topic)
-- Every instance that ever received is a consumer of the group; forget those idle for a day
-- that hold nothing (a consumer's pending entries would be dropped with it).
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', k('stream', topic), sub)) do
  local f = fields(c)
  if tonumber(f['pending']) == 0 and tonumber(f['idle']) > 86400000 then
    redis.call('XGROUP', 'DELCONSUMER', k('stream', topic), sub, f['name'])
  end
end
local old = redis.call('HGET', P .. ':substrat', sub)
redis.call('HSET', P .. ':substrat', sub, strategy)
if old and old ~= strategy then
  -- Re-file the ready and parked messages under the new strategy, in publish order.
  local refs = {}
  for _, member in ipairs(redis.call('ZRANGE', k('ready', sub), 0, -1)) do
    refs[#refs + 1] = unrkey(member)
  end
  redis.call('DEL', k('ready', sub))
  local grp = redis.call('HGETALL', k('grp', sub))
  local seen = {}
  for i = 1, #grp, 2 do
    local key = fifokey(sub, grp[i + 1])
    if not seen[key] then
      seen[key] = true
      local parked = redis.call('LRANGE', key, 1, -1)
      for _, ref in ipairs(parked) do refs[#refs + 1] = ref end
      redis.call('DEL', key)
    end
  end
  redis.call('DEL', k('parked', sub))
  table.sort(refs, function(a, b) return rkey(a) < rkey(b) end)
  for _, ref in ipairs(refs) do
    file(sub, strategy, ref, redis.call('HGET', k('grp', sub), ref),
         redis.call('HGET', k('prio', sub), ref))
  end
  bell(sub)
end
return 1
"""
)

# ARGV: P, op, namespace, key, expected JSON ('' = absent), new JSON ('' = delete), then
# optionally the change event (topic, envelope, group, priority). Compare-and-set: the
# caller applied the write to `expected` in Python; 'conflict' makes it read and try again.
# The value and its change event are written in one script, so a state trigger is never lost.
STATE_CAS = (
    PRELUDE
    + r"""
local op, ns, key, expected, new = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if done_before(op) then return 'ok' end
local bucket = k('state', ns)
local current = redis.call('HGET', bucket, key) or ''
if current ~= expected then return 'conflict' end
if new == '' then
  redis.call('HDEL', bucket, key)
  if redis.call('HLEN', bucket) == 0 then redis.call('SREM', P .. ':statens', ns) end
else
  redis.call('HSET', bucket, key, new)
  redis.call('SADD', P .. ':statens', ns)
end
if ARGV[7] then publish(ARGV[7], ARGV[8], ARGV[9], ARGV[10]) end
return remember(op, 'ok')
"""
)

# ARGV: P, step, scheduled, token, ttl seconds[, topic, envelope, group, priority]. 1 when
# this call (or an earlier try of it, same token) owns the tick. The winning call publishes
# the tick message, if given, in the same script: the mark and the message exist together.
CLAIM_TICK = (
    PRELUDE
    + r"""
local step, scheduled, token, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = P .. ':tick:' .. #step .. ':' .. step .. ':' .. scheduled
if redis.call('SET', key, token, 'NX', 'EX', ttl) then
  if ARGV[6] then publish(ARGV[6], ARGV[7], ARGV[8], ARGV[9]) end
  local last = redis.call('HGET', P .. ':lasttick', step)
  if not last or tonumber(last) < tonumber(scheduled) then
    redis.call('HSET', P .. ':lasttick', step, scheduled)
  end
  return 1
end
if redis.call('GET', key) == token then return 1 end
return 0
"""
)

# ARGV: P, now. Reply: flat (sub, ready, leased, delayed, dead) per declared subscription.
# As in memory, an expired lease or a due retry counts as ready.
DEPTH = (
    PRELUDE
    + r"""
local now = ARGV[2]
local out = {}
local subs = redis.call('HGETALL', P .. ':subtopic')
local lags = {}
for i = 1, #subs, 2 do
  local sub, topic = subs[i], subs[i + 1]
  local stream = k('stream', topic)
  if not lags[topic] then
    lags[topic] = {}
    local groups = redis.pcall('XINFO', 'GROUPS', stream)
    if type(groups) == 'table' and not groups.err then
      for _, g in ipairs(groups) do
        local f = fields(g)
        local lag = f['lag']
        if not lag then  -- unknown after deletions: count what is past the group's cursor
          lag = #redis.call('XRANGE', stream, '(' .. f['last-delivered-id'], '+')
        end
        lags[topic][f['name']] = lag
      end
    end
  end
  local leases, delayed = k('leases', sub), k('delayed', sub)
  local expired = redis.call('ZCOUNT', leases, '-inf', now)
  local due = redis.call('ZCOUNT', delayed, '-inf', now)
  local ready = redis.call('ZCARD', k('ready', sub)) + expired + due
    + tonumber(redis.call('GET', k('parked', sub)) or '0') + (lags[topic][sub] or 0)
  out[#out + 1] = sub
  out[#out + 1] = ready
  out[#out + 1] = redis.call('ZCARD', leases) - expired
  out[#out + 1] = redis.call('ZCARD', delayed) - due
  out[#out + 1] = redis.call('XLEN', k('dead', sub))
end
return out
"""
)

# ARGV: P, sub, min idle ms, this instance's consumer. Removes from the sub's group the
# consumers with nothing pending that have not read for `min idle` (Redis's clock): the names
# of instances that stopped or restarted (each process reads under a name of its own). One
# with pending entries is kept whatever its idle time: deleting it would drop those entries
# from the pending list, where the sweeps find them.
FORGET_CONSUMERS = (
    PRELUDE
    + r"""
local sub, idle, keep = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local topic = redis.call('HGET', P .. ':subtopic', sub)
if not topic then return 0 end
local stream = k('stream', topic)
local consumers = redis.pcall('XINFO', 'CONSUMERS', stream, sub)
if type(consumers) ~= 'table' or consumers.err then return 0 end
local n = 0
for _, c in ipairs(consumers) do
  local f = fields(c)
  if f['name'] ~= keep and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= idle then
    redis.call('XGROUP', 'DELCONSUMER', stream, sub, f['name'])
    n = n + 1
  end
end
return n
"""
)

# ARGV: P, topic. Deletes the stream entries every consumer group is done with: those below
# the oldest pending entry of any group and at or below every group's read cursor.
TRIM = (
    PRELUDE
    + r"""
local stream = k('stream', ARGV[2])
local groups = redis.pcall('XINFO', 'GROUPS', stream)
if type(groups) ~= 'table' or groups.err or #groups == 0 then return 0 end
local function parse(id)
  local ms, sq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(sq)
end
local function less(a_ms, a_sq, b_ms, b_sq)
  return a_ms < b_ms or (a_ms == b_ms and a_sq < b_sq)
end
local min_ms, min_sq
for _, g in ipairs(groups) do
  local f = fields(g)
  local ms, sq
  if tonumber(f['pending']) > 0 then
    ms, sq = parse(redis.call('XPENDING', stream, f['name'])[2])
  else
    ms, sq = parse(f['last-delivered-id'])
    sq = sq + 1
  end
  if not min_ms or less(ms, sq, min_ms, min_sq) then min_ms, min_sq = ms, sq end
end
return redis.call('XTRIM', stream, 'MINID', string.format('%d-%d', min_ms, min_sq))
"""
)


# ARGV: P, op, dead ids... Each becomes a fresh copy ("r" ref) at the back of its queue.
REDRIVE = (
    PRELUDE
    + r"""
local op = ARGV[2]
local before = done_before(op)
if before then return tonumber(before) end
local n = 0
for i = 3, #ARGV do
  local idx = redis.call('HGET', P .. ':deadidx', ARGV[i])
  if idx then
    local sub, eid = string.match(idx, '^(.*)\n([^\n]*)$')
    local got = redis.call('XRANGE', k('dead', sub), eid, eid)
    if #got > 0 then
      local f = fields(got[1][2])
      local ref = 'r' .. zeros(tostring(redis.call('INCR', P .. ':seq')), 16)
      redis.call('HSET', k('body', sub), ref, f['e'])
      file(sub, redis.call('HGET', P .. ':substrat', sub) or 'standard', ref, f['g'], f['p'])
      bell(sub)
      n = n + 1
    end
    redis.call('XDEL', k('dead', sub), eid)
    redis.call('HDEL', P .. ':deadidx', ARGV[i])
  end
end
return tonumber(remember(op, tostring(n)))
"""
)

# ARGV: P, op, dead ids...
DISCARD = (
    PRELUDE
    + r"""
local op = ARGV[2]
local before = done_before(op)
if before then return tonumber(before) end
local n = 0
for i = 3, #ARGV do
  local idx = redis.call('HGET', P .. ':deadidx', ARGV[i])
  if idx then
    local sub, eid = string.match(idx, '^(.*)\n([^\n]*)$')
    n = n + redis.call('XDEL', k('dead', sub), eid)
    redis.call('HDEL', P .. ':deadidx', ARGV[i])
  end
end
return tonumber(remember(op, tostring(n)))
"""
)
