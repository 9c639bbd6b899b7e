"""The Lua scripts behind the Redis backend. Each runs atomically inside Redis, so a message
is always in exactly one condition even when a client dies between two commands.

Data model (P = the backend's prefix; `sub` = Subscription.key):

    P:subs:<topic>       SET     subscriptions of a topic (publish skips a topic without any)
    P:subtopic / P:substrat  HASH  sub -> topic / sub -> strategy (the latest `declare`)
    P:stream:<topic>     STREAM  published messages: e = envelope JSON, g = group, p = priority;
                                 one consumer group per sub, named after the sub
    P:ready:<sub>        ZSET    ready messages; score -priority (priority) or 0; the member is
                                 the ref zero-padded (`rkey`), so ties come in publish order
    P:leases:<sub>       ZSET    leased refs, score = lease deadline (epoch ms, runtime clock)
    P:delayed:<sub>      ZSET    refs waiting for a retry, score = due time (epoch ms)
    P:att:<sub>          HASH    ref -> attempt number of its latest delivery
    P:grp:<sub> / P:prio:<sub>  HASH  ref -> group / priority (kept to re-file and release)
    P:fifo:<len>:<sub>:<group>  LIST  fifo: the group's refs in order; the head is the one
                                 message ready, leased or delayed, the rest are parked
    P:parked:<sub>       STRING  how many refs wait behind a fifo head
    P:body:<sub>         HASH    ref -> envelope, for re-driven copies ("r..." refs, no entry)
    P:err:<sub>          HASH    ref -> [error, traceback] JSON of its last failed attempt
    P:msg:<id>           HASH    sub -> settled record (done / cancelled) of that delivery,
                                 expiring with the latest record's keep_until

A ref is the stream entry id ("<ms>-<seq>") of a published message, or "r<16 digits>" for a
re-driven copy, which has no stream entry.
    P:bell:<sub>         STREAM  a doorbell: bumped when something becomes ready without a
                                 publish (fifo release, retry, re-drive), so idle receivers
                                 on other instances wake up
    P:dead:<sub>         STREAM  dead letters (id, e, err, att, at, g, p, tb); P:deadidx HASH
                                 dead id -> "sub\\nentry id"; P:deadsubs SET
    P:op:<id>            STRING  result of a non-idempotent call, so a call retried after a
                                 lost reply is not applied twice (a publish's and a
                                 receive's after reconnect_timeout + 60 s, others after
                                 an hour)

A stream entry stays in its group's pending list from intake until ack or bury, whichever
condition it is in; the lease, retry and fifo bookkeeping is ours and uses the runtime's
clock (passed in as `now`), never the server's. Ack removes it (XACK); the stream itself is
trimmed below the oldest entry any group still needs.
"""

from __future__ import annotations

# What every script starts with, and all that PUBLISH (once per message) needs: Redis
# defines a script's local functions anew on every call, so PUBLISH runs this part alone.
CORE = r"""
local P = ARGV[1]
local function k(kind, name) return P .. ':' .. kind .. ':' .. name end
local function publish(topic, e, g, p)
  if redis.call('EXISTS', k('subs', topic)) == 0 then return end
  local args = {'XADD', k('stream', topic), '*', 'e', e}
  if g ~= '' then args[#args + 1] = 'g'; args[#args + 1] = g end
  if p ~= '' then args[#args + 1] = 'p'; args[#args + 1] = p end
  redis.call(unpack(args))
end
"""

PRELUDE = (
    CORE
    + r"""
local function done_before(op)
  return op ~= '' and redis.call('GET', k('op', op))
end
local function remember(op, result)
  if op ~= '' then redis.call('SET', k('op', op), result, 'EX', 3600) end
  return result
end
local function fifokey(sub, g) return P .. ':fifo:' .. #sub .. ':' .. sub .. ':' .. g end
local function fields(arr)
  local t = {}
  for i = 1, #arr, 2 do t[arr[i]] = arr[i + 1] end
  return t
end
local function zeros(s, n) return string.rep('0', n - #s) .. s end
local function is_copy(ref) return string.sub(ref, 1, 1) == 'r' end
-- The ready-set member of a ref: entry ids zero-padded so that they sort in publish order
-- (copies already do, and sort after every entry).
local function rkey(ref)
  if is_copy(ref) then return ref end
  local ms, sq = string.match(ref, '^(%d+)-(%d+)$')
  return zeros(ms, 16) .. '-' .. zeros(sq, 10)
end
local function unrkey(member)
  if is_copy(member) then return member end
  local ms, sq = string.match(member, '^(%d+)-(%d+)$')
  ms = (string.gsub(ms, '^0+', '')); sq = (string.gsub(sq, '^0+', ''))
  if ms == '' then ms = '0' end
  if sq == '' then sq = '0' end
  return ms .. '-' .. sq
end
local function bell(sub) redis.call('XADD', k('bell', sub), 'MAXLEN', 1, '*', 'b', 1) end
local function fetch(sub, stream, ref)
  if is_copy(ref) then return redis.call('HGET', k('body', sub), ref) end
  local got = redis.call('XRANGE', stream, ref, ref)
  if #got == 0 or not got[1][2] then return false end
  return fields(got[1][2])['e'] or false
end
-- A new message (published or re-driven) joins its subscription's queue.
local function file(sub, strategy, ref, g, p)
  if g and g ~= '' then
    redis.call('HSET', k('grp', sub), ref, g)
    if strategy == 'fifo' then
      if redis.call('RPUSH', fifokey(sub, g), ref) > 1 then
        redis.call('INCR', k('parked', sub))
        return
      end
    end
  end
  local score = 0
  if p and p ~= '' then
    redis.call('HSET', k('prio', sub), ref, p)
    if strategy == 'priority' then score = -tonumber(p) end
  end
  redis.call('ZADD', k('ready', sub), score, rkey(ref))
end
-- A message whose lease expired or whose retry is due becomes ready again (a fifo head
-- stays its group's head, so nothing of its group overtakes it).
local function requeue(sub, strategy, ref)
  local score = 0
  if strategy == 'priority' then
    local p = redis.call('HGET', k('prio', sub), ref)
    if p then score = -tonumber(p) end
  end
  redis.call('ZADD', k('ready', sub), score, rkey(ref))
end
-- The message left the queue (acked or buried): forget it and unblock its fifo group.
local function release(sub, stream, ref)
  local g = redis.call('HGET', k('grp', sub), ref)
  if g then
    local key = fifokey(sub, g)
    if redis.call('LINDEX', key, 0) == ref then
      redis.call('LPOP', key)
      local nxt = redis.call('LINDEX', key, 0)
      if nxt then
        redis.call('DECR', k('parked', sub))
        redis.call('ZADD', k('ready', sub), 0, rkey(nxt))
        bell(sub)
      end
    end
    redis.call('HDEL', k('grp', sub), ref)
  end
  redis.call('HDEL', k('prio', sub), ref)
  redis.call('HDEL', k('att', sub), ref)
  redis.call('HDEL', k('err', sub), ref)
  if is_copy(ref) then
    redis.call('HDEL', k('body', sub), ref)
  else
    redis.call('XACK', stream, sub, ref)
  end
end
-- Where the delivery (ref, attempt) still holds its message: 'leases' (its lease, even if
-- expired), 'ready' (expired and re-queued, but not handed out again: that would have
-- raised the attempt), or false (handed out again, retried or settled already).
local function holds(sub, ref, attempt)
  if redis.call('HGET', k('att', sub), ref) ~= attempt then return false end
  if redis.call('ZSCORE', k('leases', sub), ref) then return 'leases' end
  if redis.call('ZSCORE', k('ready', sub), rkey(ref)) then return 'ready' end
  return false
end
local function unhold(sub, ref, where)
  if where == 'leases' then
    redis.call('ZREM', k('leases', sub), ref)
  else
    redis.call('ZREM', k('ready', sub), rkey(ref))
  end
end
"""
)

# Delayed emits and expiry (see `_redis_lua_later`): functions RECEIVE and those scripts use.
LATER = r"""
local function xadd(topic, e, g, p, x)
  if redis.call('EXISTS', k('subs', topic)) == 0 then return end
  local args = {'XADD', k('stream', topic), '*', 'e', e}
  if g ~= '' then args[#args + 1] = 'g'; args[#args + 1] = g end
  if p ~= '' then args[#args + 1] = 'p'; args[#args + 1] = p end
  if x ~= '' then args[#args + 1] = 'x'; args[#args + 1] = x end
  redis.call(unpack(args))
end
-- Delayed messages of `topic` whose time came join its stream, as if published now.
local function file_due(topic, now)
  if not topic then return end
  local later = k('later', topic)
  local due = redis.call('ZRANGEBYSCORE', later, '-inf', now, 'LIMIT', 0, 1000)
  if #due == 0 then return end
  local bodies = k('laterbody', topic)
  for _, id in ipairs(due) do
    local packed = redis.call('HGET', bodies, id)
    if packed then
      local m = cmsgpack.unpack(packed)
      xadd(topic, m[1], m[2], m[3], m[4])
    end
  end
  redis.call('ZREM', later, unpack(due))
  redis.call('HDEL', bodies, unpack(due))
  if redis.call('EXISTS', later) == 0 then redis.call('SREM', P .. ':latertopics', topic) end
end
local function later_due(topic)
  if not topic then return nil end
  return redis.call('ZRANGE', k('later', topic), 0, 0, 'WITHSCORES')[2]
end
-- When a stream entry (its fields) expires unless handed out: its own `x`, or `ttl` ms
-- after it was due (the envelope's not_before, else created_at); nil for never.
local function expiry(f, ttl)
  local deadline = f['x'] and tonumber(f['x']) or nil
  if ttl ~= '' and f['e'] then
    local env = cjson.decode(f['e'])
    local due = env[8]
    if due == nil or due == cjson.null then due = env[7] end
    local t = math.floor(tonumber(due) * 1000 + 0.5) + tonumber(ttl)
    if not deadline or t < deadline then deadline = t end
  end
  return deadline
end
-- The entry `ref` (never handed out) expired: keep it as a dead letter (attempts 0) and take
-- it out of the queue. Its dead id is derived from (sub, ref), so a retried call finds it.
local function expire(sub, stream, ref, body, g, p, deadline, now)
  local id = string.sub(redis.sha1hex(sub .. '\n' .. ref), 1, 32)
  if redis.call('HEXISTS', P .. ':deadidx', id) == 0 then
    local args = {'XADD', k('dead', sub), '*', 'id', id, 'e', body, 'err', 'Expired',
                  'att', 0, 'at', string.format('%.3f', tonumber(now) / 1000),
                  'xd', string.format('%d', deadline)}
    if g then args[#args + 1] = 'g'; args[#args + 1] = g end
    if p then args[#args + 1] = 'p'; args[#args + 1] = p end
    local eid = redis.call(unpack(args))
    redis.call('HSET', P .. ':deadidx', id, sub .. '\n' .. eid)
    redis.call('SADD', P .. ':deadsubs', sub)
  end
  release(sub, stream, ref)
end
"""

# ARGV: P, op, memo seconds, then (topic, envelope, group, priority) per message ('' = none).
PUBLISH = (
    CORE
    + r"""
local op = ARGV[2]
-- Marked done first, in the one command that also says whether it was (SET NX). Redis
-- applies and persists a script's writes together; a script that fails halfway (an error
-- reply) keeps its mark, but its caller got that error and never retries with this op.
if redis.call('SET', k('op', op), '1', 'NX', 'EX', ARGV[3]) == false then return 0 end
local n = 0
for i = 4, #ARGV, 4 do
  publish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
  n = n + 1
end
return n
"""
)

# ARGV: P, sub, consumer, now, lease deadline, max_count, op, memo seconds, ttl ms ('' none).
# Reply: {status, next_due, stream_last, bell_last, ref, attempt, envelope, ref, ...}, each
# attempt an integer.
# A receive that leases anything remembers "ref attempt ref attempt ..." under P:op:<op> for
# `memo seconds`; the same call retried after a lost reply hands out again those of them it
# still holds (same attempt, still in `leases`), so they are not stranded for a lease.
RECEIVE = (
    PRELUDE
    + LATER
    + r"""
local sub, consumer, now, deadline = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local maxc = tonumber(ARGV[6])
local strategy = redis.call('HGET', P .. ':substrat', sub)
if not strategy then return {'undeclared'} end
local topic = redis.call('HGET', P .. ':subtopic', sub)
local stream = k('stream', topic)
local ready, leases, delayed = k('ready', sub), k('leases', sub), k('delayed', sub)
local op, memo_ttl = ARGV[7], ARGV[8]
local ttl, expired = ARGV[9] or '', 0
-- A message handed out for the first time after its expiry becomes a dead letter instead.
local function expires(ref, f)
  if is_copy(ref) or not (f['x'] or ttl ~= '') then return false end
  local deadline = expiry(f, ttl)
  if deadline and deadline <= tonumber(now) then
    expire(sub, stream, ref, f['e'], f['g'], f['p'], deadline, now)
    expired = expired + 1
    return true
  end
  return false
end
local out = {'ok', '', '', ''}
local lease_args, memo = {}, {}
local function deliver(ref, attempt, body)
  out[#out + 1] = ref
  out[#out + 1] = tonumber(attempt)  -- an integer reply: the client needs no int() of it
  out[#out + 1] = body
  lease_args[#lease_args + 1] = deadline
  lease_args[#lease_args + 1] = ref
  memo[#memo + 1] = ref
  memo[#memo + 1] = attempt
end
-- A retry of a call whose reply was lost: first (before expired leases are reclaimed) hand
-- out again what that call leased and still holds. Its leases keep their deadline.
local before = done_before(op)
if before then
  local atts = k('att', sub)
  for ref, attempt in string.gmatch(before, '(%S+) (%S+)') do
    if redis.call('HGET', atts, ref) == attempt and redis.call('ZSCORE', leases, ref) then
      local body = fetch(sub, stream, ref)
      if body then deliver(ref, attempt, body) end
    end
  end
  if #out > 4 then return out end
  lease_args, memo = {}, {}  -- all reclaimed meanwhile: receive afresh
end
file_due(topic, now)
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', delayed, ref)
  requeue(sub, strategy, ref)
end
-- A lease that expired without an ack: the lost delivery counted as an attempt (the next
-- lease increments it), and the pending entry moves to this consumer.
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', leases, ref)
  requeue(sub, strategy, ref)
  if not is_copy(ref) then
    redis.call('XCLAIM', stream, sub, consumer, 0, ref, 'JUSTID')
  end
end
local function read(count)
  local res = redis.pcall('XREADGROUP', 'GROUP', sub, consumer, 'COUNT', count,
                          'STREAMS', stream, '>')
  if type(res) == 'table' and res.err then return nil, res.err end
  return res and res[1][2] or {}
end
if strategy == 'standard' and redis.call('EXISTS', ready) == 0 then
  -- The common case: nothing re-queued, so lease straight from the stream in one sweep.
  local entries, err = read(maxc)
  if not entries then return {'nogroup', err} end
  local atts, grps, prios = {}, {}, {}
  while #entries > 0 do
    local seen = expired
    for _, entry in ipairs(entries) do
      local ref, arr = entry[1], entry[2]
      if #arr == 2 and ttl == '' then
        -- The plain message: its envelope ('e') alone, nothing to expire, group or rank.
        atts[#atts + 1] = ref; atts[#atts + 1] = 1
        deliver(ref, 1, arr[2])
      else
        local f = fields(arr)
        if not expires(ref, f) then
          atts[#atts + 1] = ref; atts[#atts + 1] = 1
          if f['g'] then grps[#grps + 1] = ref; grps[#grps + 1] = f['g'] end
          if f['p'] then prios[#prios + 1] = ref; prios[#prios + 1] = f['p'] end
          deliver(ref, 1, f['e'])
        end
      end
    end
    -- Expired ones make room: read more in their place.
    local room = maxc - #memo / 2
    if expired == seen or room <= 0 then break end
    entries = read(room) or {}
  end
  if #atts > 0 then redis.call('HSET', k('att', sub), unpack(atts)) end
  if #grps > 0 then redis.call('HSET', k('grp', sub), unpack(grps)) end
  if #prios > 0 then redis.call('HSET', k('prio', sub), unpack(prios)) end
else
  local want = 1000
  if strategy == 'standard' then want = maxc - redis.call('ZCARD', ready) end
  if want > 0 then
    local entries, err = read(want)
    if not entries then return {'nogroup', err} end
    for _, entry in ipairs(entries) do
      local f = fields(entry[2])
      file(sub, strategy, entry[1], f['g'], f['p'])
    end
  end
  local popped = redis.call('ZPOPMIN', ready, maxc)
  while #popped > 0 do
    local seen = expired
    for i = 1, #popped, 2 do
      local ref = unrkey(popped[i])
      local body = fetch(sub, stream, ref)
      if body then
        local attempt = redis.call('HINCRBY', k('att', sub), ref, 1)
        local f = nil
        if attempt == 1 and not is_copy(ref) then
          local got = redis.call('XRANGE', stream, ref, ref)
          f = got[1] and fields(got[1][2]) or nil
        end
        if not (f and expires(ref, f)) then deliver(ref, attempt, body) end
      else
        release(sub, stream, ref)  -- its entry was deleted behind our back: nothing to deliver
      end
    end
    -- Expired ones make room (and may unblock a fifo group): take more in their place.
    local room = maxc - #memo / 2
    if expired == seen or room <= 0 then break end
    popped = redis.call('ZPOPMIN', ready, room)
  end
end
if #lease_args > 0 then
  redis.call('ZADD', leases, unpack(lease_args))
  if op ~= '' then redis.call('SET', k('op', op), table.concat(memo, ' '), 'EX', memo_ttl) end
  return out
end
local a = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
local b = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
local due = a[2]
if b[2] and (not due or tonumber(b[2]) < tonumber(due)) then due = b[2] end
local c = later_due(topic)
if c and (not due or tonumber(c) < tonumber(due)) then due = c end
if expired > 0 then due = now end  -- more may be ready behind those: look again at once
out[2] = due or ''
local s = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
local w = redis.call('XREVRANGE', k('bell', sub), '+', '-', 'COUNT', 1)
out[3] = s[1] and s[1][1] or '0-0'
out[4] = w[1] and w[1][1] or '0-0'
return out
"""
)

# Reads ARGV[from..] as groups (sub, n, ref1, attempt1, ..., refn, attemptn) and keeps, per
# subscription in order of first appearance, the deliveries that still hold their message
# (see `holds`): {sub, refs, ready-set members of those that were re-queued}.
HELD = r"""
local function held(from)
  local order, by = {}, {}
  local i = from
  while i <= #ARGV do
    local sub, n = ARGV[i], tonumber(ARGV[i + 1])
    if not by[sub] then by[sub] = {refs = {}, atts = {}}; order[#order + 1] = sub end
    local t = by[sub]
    for j = i + 2, i + 2 * n, 2 do
      t.refs[#t.refs + 1] = ARGV[j]
      t.atts[#t.atts + 1] = ARGV[j + 1]
    end
    i = i + 2 + 2 * n
  end
  local out = {}
  for _, sub in ipairs(order) do
    local t = by[sub]
    local scores = redis.call('ZMSCORE', k('leases', sub), unpack(t.refs))
    local atts = redis.call('HMGET', k('att', sub), unpack(t.refs))
    local valid, requeued = {}, {}
    for n, ref in ipairs(t.refs) do
      if atts[n] == t.atts[n] then
        if scores[n] then
          valid[#valid + 1] = ref
        elseif redis.call('ZSCORE', k('ready', sub), rkey(ref)) then
          valid[#valid + 1] = ref
          requeued[#requeued + 1] = rkey(ref)
        end
      end
    end
    if #valid > 0 then out[#out + 1] = {sub, valid, requeued} end
  end
  return out
end
"""

# ARGV: P, then groups (sub, n, ref, attempt, ...). Stale deliveries are skipped. Per
# subscription the bookkeeping is batched: one ZREM, one XACK, one HDEL per hash.
# The bookkeeping of settling one subscription's held deliveries (a `held` pair): shared by
# ACK and the status scripts' FINISH (an ack that also keeps records). Returns how many.
SETTLE = r"""
local function settle(pair)
  local sub, refs = pair[1], pair[2]
  if #pair[3] > 0 then redis.call('ZREM', k('ready', sub), unpack(pair[3])) end
  local stream = k('stream', redis.call('HGET', P .. ':subtopic', sub))
  redis.call('ZREM', k('leases', sub), unpack(refs))
  local ids, copies = {}, {}
  local grps = {}
  if redis.call('EXISTS', k('grp', sub)) == 1 then
    grps = redis.call('HMGET', k('grp', sub), unpack(refs))
  end
  for i, ref in ipairs(refs) do
    if grps[i] then release(sub, stream, ref)  -- fifo bookkeeping, one by one
    elseif is_copy(ref) then copies[#copies + 1] = ref
    else ids[#ids + 1] = ref end
  end
  redis.call('HDEL', k('att', sub), unpack(refs))
  if redis.call('EXISTS', k('prio', sub)) == 1 then
    redis.call('HDEL', k('prio', sub), unpack(refs))
  end
  if redis.call('EXISTS', k('err', sub)) == 1 then
    redis.call('HDEL', k('err', sub), unpack(refs))
  end
  if #ids > 0 then redis.call('XACK', stream, sub, unpack(ids)) end
  if #copies > 0 then redis.call('HDEL', k('body', sub), unpack(copies)) end
  return #refs
end
"""

ACK = (
    PRELUDE
    + HELD
    + SETTLE
    + r"""
local n = 0
for _, pair in ipairs(held(2)) do n = n + settle(pair) end
return n
"""
)

# ARGV: P, then groups (sub, n, ref, attempt, ...). Leased deliveries nobody started (a
# graceful stop) are ready again at once, their attempt not counted: the next hand-out (from
# the ready set) raises it back. One that already expired and was re-queued stays as it is.
RELEASE = (
    PRELUDE
    + HELD
    + r"""
local n = 0
for _, pair in ipairs(held(2)) do
  local sub = pair[1]
  local strategy = redis.call('HGET', P .. ':substrat', sub)
  local leases, atts, back = k('leases', sub), k('att', sub), 0
  for _, ref in ipairs(pair[2]) do
    if redis.call('ZREM', leases, ref) == 1 then
      redis.call('HINCRBY', atts, ref, -1)
      requeue(sub, strategy, ref)
      back = back + 1
    end
  end
  if back > 0 then bell(sub) end  -- receivers elsewhere look again
  n = n + back
end
return n
"""
)

# ARGV: P, deadline, then groups (sub, n, ref, attempt, ...). A lease already re-queued
# stays lost (ZADD XX).
EXTEND = (
    PRELUDE
    + HELD
    + r"""
local deadline = ARGV[2]
for _, pair in ipairs(held(3)) do
  local args = {}
  for _, ref in ipairs(pair[2]) do args[#args + 1] = deadline; args[#args + 1] = ref end
  redis.call('ZADD', k('leases', pair[1]), 'XX', unpack(args))
end
return 1
"""
)

# ARGV: P, sub, ref, attempt, due, then optionally the failure as JSON [error, traceback],
# kept in P:err:<sub> for the message's status. The message waits in `delayed`; a fifo head
# keeps its group blocked meanwhile.
RETRY = (
    PRELUDE
    + r"""
local sub, ref, attempt, due = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local where = holds(sub, ref, attempt)
if not where then return 0 end
unhold(sub, ref, where)
if ARGV[6] then redis.call('HSET', k('err', sub), ref, ARGV[6]) end
redis.call('ZADD', k('delayed', sub), due, ref)
bell(sub)
return 1
"""
)

# ARGV: P, sub, ref, attempt (the receipt's, to find the lease), dead id, error, failed_at,
# traceback ('' = none), attempts (what the letter records: the delivery's attempt), then the
# announcement on the dead-letter topic as `codec.publish_args` gives it, or nothing.
# Reply: {1, envelope} or {0}. Stored and announced together, or neither; a call retried
# after a lost reply finds its dead id and does nothing again.
BURY = (
    PRELUDE
    + r"""
local sub, ref, attempt, id, err, at = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local tb, attempts = ARGV[8], ARGV[9]
if redis.call('HEXISTS', P .. ':deadidx', id) == 1 then return {1, ''} end
local where = holds(sub, ref, attempt)
if not where then return {0} end
unhold(sub, ref, where)
local stream = k('stream', redis.call('HGET', P .. ':subtopic', sub))
local body = fetch(sub, stream, ref)
if body then
  local args = {'XADD', k('dead', sub), '*', 'id', id, 'e', body, 'err', err,
                'att', attempts, 'at', at}
  local g = redis.call('HGET', k('grp', sub), ref)
  local p = redis.call('HGET', k('prio', sub), ref)
  if g then args[#args + 1] = 'g'; args[#args + 1] = g end
  if p then args[#args + 1] = 'p'; args[#args + 1] = p end
  if tb ~= '' then args[#args + 1] = 'tb'; args[#args + 1] = tb end
  local eid = redis.call(unpack(args))
  redis.call('HSET', P .. ':deadidx', id, sub .. '\n' .. eid)
  redis.call('SADD', P .. ':deadsubs', sub)
end
release(sub, stream, ref)
-- The announcement's arguments are whatever publish_args gives, passed on as they come.
if #ARGV >= 10 then publish(unpack(ARGV, 10, #ARGV)) end
return {1, body or ''}
"""
)

# ARGV: P, sub, lease deadline, then (ref, group, priority) per entry ('' = none): entries a
# blocking XREADGROUP just handed this consumer (attempt 1). Each gets the bookkeeping the
# fast path of RECEIVE gives it, unless the orphan sweep (ORPHANS) re-queued it first.
ADOPT = (
    PRELUDE
    + r"""
local sub, deadline = ARGV[2], ARGV[3]
local atts = k('att', sub)
local leases, grps, prios = {}, {}, {}
for i = 4, #ARGV, 3 do
  local ref = ARGV[i]
  if redis.call('HSETNX', atts, ref, 1) == 1 then
    leases[#leases + 1] = deadline; leases[#leases + 1] = ref
    if ARGV[i + 1] ~= '' then grps[#grps + 1] = ref; grps[#grps + 1] = ARGV[i + 1] end
    if ARGV[i + 2] ~= '' then prios[#prios + 1] = ref; prios[#prios + 1] = ARGV[i + 2] end
  end
end
if #leases > 0 then redis.call('ZADD', k('leases', sub), unpack(leases)) end
if #grps > 0 then redis.call('HSET', k('grp', sub), unpack(grps)) end
if #prios > 0 then redis.call('HSET', k('prio', sub), unpack(prios)) end
return #leases / 2
"""
)

# ARGV: P, sub, min idle ms, start ('-' or '(<id>'), count, consumer ('' = any), counted
# ('1' or '0'). Looks at up to `count` pending entries of the sub's group (of `consumer`
# only, if given) idle for at least `min idle` (Redis's clock) and re-queues those no
# condition holds: handed out by a blocking read whose ADOPT never ran, because the instance
# died (counted = '1': that delivery counts as attempt 1) or the read's reply was lost
# (counted = '0': nobody saw it, the next delivery is attempt 1). Reply: {next start, n}.
ORPHANS = (
    PRELUDE
    + r"""
local sub, idle, start, count = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local consumer, counted = ARGV[6], ARGV[7] == '1'
local strategy = redis.call('HGET', P .. ':substrat', sub)
if not strategy then return {'-', 0} end
local stream = k('stream', redis.call('HGET', P .. ':subtopic', sub))
local query = {'XPENDING', stream, sub, 'IDLE', idle, start, '+', count}
if consumer ~= '' then query[#query + 1] = consumer end
local pending = redis.pcall(unpack(query))
if type(pending) ~= 'table' or pending.err then return {'-', 0} end
local atts, n, last = k('att', sub), 0, nil
for _, entry in ipairs(pending) do
  local ref = entry[1]
  last = ref
  if redis.call('HEXISTS', atts, ref) == 0
      and not redis.call('ZSCORE', k('ready', sub), rkey(ref))
      and redis.call('HEXISTS', k('grp', sub), ref) == 0 then
    local got = redis.call('XRANGE', stream, ref, ref)
    local f = {}
    if #got > 0 and got[1][2] then f = fields(got[1][2]) end
    if counted then redis.call('HSET', atts, ref, 1) end
    file(sub, strategy, ref, f['g'], f['p'])
    n = n + 1
  end
end
if n > 0 then bell(sub) end
if #pending < count or not last then return {'-', n} end
return {'(' .. last, n}
"""
)
