"""The Redis backend's scripts for message status by id, settled records and cancellation.

Nothing is written on publish for a lookup by id: FIND scans a topic's stream (what some
group still needs, since TRIM drops the rest) for the entry whose envelope has the id, a
chunk per call so Redis is never blocked for long. A lookup thus costs O(backlog), like the
SQLite backend's, and publish pays nothing.

Keys (besides those in `_redis_lua`): P:msg:<id> (sub -> settled record JSON, expiring),
P:err:<sub> (ref -> the last failure, written by RETRY). A record is the JSON array
[state, attempts, started, finished, result, note, error, enqueued, keep_until]: Redis
expires the key on its own clock (a relative TTL), and readers skip a record whose
keep_until has passed on the runtime's clock (MockClock in tests).

Where a delivery is, for a sub of the message's topic (`locate`): leased (running, or its
lease ran out: ready again), delayed, ready, parked behind its fifo group, past the group's
cursor (not read yet: queued), or pending in the group without any condition (a blocking
read handed it out and its ADOPT has not run yet: running). Otherwise it is over: a settled
record or a dead letter tells how. A delayed emit not yet filed has no stream entry: it is
kept aside in P:later:<topic> (`scheduled_of`), reads `delayed` for each sub of its topic,
and CANCEL deletes it there so it is never filed.
"""

from __future__ import annotations

from ._redis_lua import HELD, PRELUDE, SETTLE

LOCATE = r"""
-- The message id inside an envelope's JSON array [topic, data, trace, id, group, priority,
-- created]. The common case (a 32-character id, no group) is read off the tail with plain
-- finds: the last '",null,' followed by only the two numbers ends the id (a Lua pattern
-- search costs several times more). Anything else is decoded.
local function envelope_id(e)
  local tail = string.sub(e, -96)
  local at, from = nil, 1
  while true do
    local p = string.find(tail, '",null,', from, true)
    if not p then break end
    at, from = p, p + 1
  end
  if at and string.byte(tail, at - 33) == 34 and string.byte(tail, at - 34) == 44
      and string.find(tail, '^%-?%d+,[^,]+%]$', at + 7) then
    local id = string.sub(tail, at - 32, at - 1)
    if not string.find(id, '["\\]') then return id end
  end
  local ok, arr = pcall(cjson.decode, e)
  if ok and type(arr) == 'table' and type(arr[4]) == 'string' then return arr[4] end
  return nil
end
local function after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local function cursors(stream)
  local out = {}
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local f = fields(g)
      out[f['name']] = f['last-delivered-id']
    end
  end
  return out
end
-- (where, attempts so far, due or lease score) of `ref` in `sub`, or false when it is over.
local function locate(sub, stream, ref, now, cursor)
  local att = tonumber(redis.call('HGET', k('att', sub), ref) or '0')
  local score = redis.call('ZSCORE', k('leases', sub), ref)
  if score then
    if tonumber(score) > tonumber(now) then return 'running', att, '' end
    return 'retrying', att, ''
  end
  score = redis.call('ZSCORE', k('delayed', sub), ref)
  if score then
    if att > 0 then return 'retrying', att, score end
    return 'delayed', att, score
  end
  if redis.call('ZSCORE', k('ready', sub), rkey(ref)) then
    if att > 0 then return 'retrying', att, '' end
    return 'queued', att, ''
  end
  local g = redis.call('HGET', k('grp', sub), ref)
  if g and redis.call('LPOS', fifokey(sub, g), ref) then return 'parked', att, '' end
  if not is_copy(ref) then
    if cursor and after(ref, cursor) then return 'unread', 0, '' end
    local pend = redis.pcall('XPENDING', stream, sub, 'IDLE', 0, ref, ref, 1)
    if type(pend) == 'table' and not pend.err and #pend > 0 then
      return 'adopting', math.max(att, 1), ''
    end
  end
  return false
end
-- (topic, due ms, envelope) of the delayed message `id` still kept aside for its topic
-- (P:later:<topic>, not yet filed in the stream), or nil.
local function scheduled_of(id)
  for _, topic in ipairs(redis.call('SMEMBERS', P .. ':latertopics')) do
    local due = redis.call('ZSCORE', k('later', topic), id)
    if due then
      local packed = redis.call('HGET', k('laterbody', topic), id)
      local e = packed and cmsgpack.unpack(packed)[1] or ''
      return topic, due, e
    end
  end
  return nil
end
local function dead_of(id, needle, subs)
  local out = {}
  for _, sub in ipairs(subs) do
    for _, entry in ipairs(redis.call('XRANGE', k('dead', sub), '-', '+', 'COUNT', 10000)) do
      local f = fields(entry[2])
      if f['e'] and string.find(f['e'], needle, 1, true) and envelope_id(f['e']) == id then
        out[#out + 1] = {sub, entry[2]}
      end
    end
  end
  return out
end
"""

# ARGV: P, topic, id, needle (the id as it reads inside JSON text), start ('-' or
# '(<ref>'), count. Scans up to `count` entries of the topic's stream from `start` for the
# message `id`. Reply: {ref} when found, {'', next
# start} to go on, {''} at the end of the stream.
FIND = (
    PRELUDE
    + LOCATE
    + r"""
local topic, id, needle, start = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local count = tonumber(ARGV[6])
local entries = redis.call('XRANGE', k('stream', topic), start, '+', 'COUNT', count)
for _, entry in ipairs(entries) do
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == 'e' then
      if string.find(f[i + 1], needle, 1, true) and envelope_id(f[i + 1]) == id then
        return {entry[1]}
      end
      break
    end
  end
end
if #entries < count then return {''} end
return {'', '(' .. entries[#entries][1]}
"""
)

# ARGV: P, id, now (ms), topic ('' = unknown), ref (of its stream entry, when found),
# needle (the id as it reads inside JSON text).
# Reply: {topic, body, live, settled, dead}: live = {sub, where, attempts, due, error
# JSON}..., settled = {sub, record}..., dead = {sub, fields}... A delayed message not yet
# filed (no stream entry) reads `delayed` for each sub of its topic, due = its time.
STATUS = (
    PRELUDE
    + LOCATE
    + r"""
local id, now, topic, ref, needle = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local body, live = '', {}
local subs = nil
if topic ~= '' then
  local stream = k('stream', topic)
  local cursor = cursors(stream)
  body = fetch('', stream, ref) or ''
  subs = redis.call('SMEMBERS', k('subs', topic))
  for _, sub in ipairs(subs) do
    local where, att, due = locate(sub, stream, ref, now, cursor[sub])
    if where then
      live[#live + 1] = {sub, where, att, due, redis.call('HGET', k('err', sub), ref) or ''}
    end
  end
end
-- Re-driven copies ("r..." refs: a body of their own, no stream entry), usually few.
local subtopics = redis.call('HGETALL', P .. ':subtopic')
for i = 1, #subtopics, 2 do
  local sub, stream = subtopics[i], k('stream', subtopics[i + 1])
  local copies = redis.call('HGETALL', k('body', sub))
  for j = 1, #copies, 2 do
    if string.find(copies[j + 1], needle, 1, true) and envelope_id(copies[j + 1]) == id then
      local w, a, d = locate(sub, stream, copies[j], now, nil)
      if w then
        live[#live + 1] = {sub, w, a, d, redis.call('HGET', k('err', sub), copies[j]) or ''}
        if body == '' then body = copies[j + 1] end
        if topic == '' then topic = subtopics[i + 1] end
      end
    end
  end
end
if topic == '' then
  local later_topic, due, e = scheduled_of(id)
  if later_topic then
    topic, body = later_topic, e
    subs = redis.call('SMEMBERS', k('subs', topic))
    for _, sub in ipairs(subs) do live[#live + 1] = {sub, 'delayed', 0, due, ''} end
  end
end
local settled = redis.call('HGETALL', k('msg', id))
local dead = dead_of(id, needle, subs or redis.call('SMEMBERS', P .. ':deadsubs'))
return {topic, body, live, settled, dead}
"""
)

# ARGV: P, id, now (ms), now (epoch seconds), TTL of the records (ms), keep_until (s),
# topic, ref (of its stream entry, as FIND found it).
# Takes every unsettled delivery of the message out of its queue and keeps it as cancelled;
# an entry no group has read yet is deleted from the stream, so no blocking read hands it
# out. A delayed message not yet filed (topic '') is deleted from its topic's P:later, so it
# is never filed; its idempotency key stays taken. Reply: {cancelled subs, running subs}
# (running: it was leased and its lease had not run out). Re-driven copies are not
# cancelled here (see the module's limits).
CANCEL = (
    PRELUDE
    + LOCATE
    + r"""
local id, now, now_s, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local keep, topic, ref = tonumber(ARGV[6]), ARGV[7], ARGV[8]
if topic == '' then
  local later_topic, _, e = scheduled_of(id)
  if not later_topic then return {{}, {}} end
  local later = k('later', later_topic)
  redis.call('ZREM', later, id)
  redis.call('HDEL', k('laterbody', later_topic), id)
  if redis.call('EXISTS', later) == 0 then
    redis.call('SREM', P .. ':latertopics', later_topic)
  end
  local created = cjson.null
  local ok, arr = pcall(cjson.decode, e)
  if ok and type(arr) == 'table' and arr[7] then created = arr[7] end
  local cancelled = {}
  for _, sub in ipairs(redis.call('SMEMBERS', k('subs', later_topic))) do
    cancelled[#cancelled + 1] = sub
    local record = {'cancelled', 0, cjson.null, now_s, cjson.null, cjson.null,
                    'cancelled on request', created, keep}
    redis.call('HSET', k('msg', id), sub, cjson.encode(record))
  end
  if #cancelled > 0 then redis.call('PEXPIRE', k('msg', id), ttl) end
  return {cancelled, {}}
end
local stream = k('stream', topic)
local cursor = cursors(stream)
local body = fetch('', stream, ref)
local created = cjson.null
if body then
  local ok, arr = pcall(cjson.decode, body)
  if ok and type(arr) == 'table' and arr[7] then created = arr[7] end
end
local record_key = k('msg', id)
local cancelled, running, unread = {}, {}, false
for _, sub in ipairs(redis.call('SMEMBERS', k('subs', topic))) do
  local where, att = locate(sub, stream, ref, now, cursor[sub])
  if where and redis.call('HEXISTS', record_key, sub) == 0 then
    if where == 'unread' then
      unread = true
    else
      redis.call('ZREM', k('leases', sub), ref)
      redis.call('ZREM', k('delayed', sub), ref)
      redis.call('ZREM', k('ready', sub), rkey(ref))
      if where == 'parked' then
        local g = redis.call('HGET', k('grp', sub), ref)
        redis.call('LREM', fifokey(sub, g), 0, ref)
        redis.call('DECR', k('parked', sub))
        redis.call('HDEL', k('grp', sub), ref)  -- not its group's head: release skips it
      end
      release(sub, stream, ref)
      bell(sub)
    end
    if where == 'running' or where == 'adopting' then running[#running + 1] = sub end
    cancelled[#cancelled + 1] = sub
    local record = {'cancelled', att, cjson.null, now_s, cjson.null, cjson.null,
                    'cancelled on request', created, keep}
    redis.call('HSET', record_key, sub, cjson.encode(record))
  end
end
if #cancelled > 0 then redis.call('PEXPIRE', record_key, ttl) end
if unread then redis.call('XDEL', stream, ref) end
return {cancelled, running}
"""
)

# ARGV: P, then (id, sub) pairs. Reply: 1 for each whose delivery was cancelled, else 0.
CANCELLED = (
    PRELUDE
    + r"""
local out = {}
for i = 2, #ARGV, 2 do
  local rec = redis.call('HGET', k('msg', ARGV[i]), ARGV[i + 1])
  if rec and string.sub(rec, 1, 12) == '["cancelled"' then out[#out + 1] = 1
  else out[#out + 1] = 0 end
end
return out
"""
)

# ARGV: P, m, then m records (sub, ref, id, TTL ms, record JSON), then the groups of
# ACK (sub, n, ref, attempt, ...). ACK, plus each record kept for the deliveries that still
# held their lease, in the same script.
FINISH = (
    PRELUDE
    + HELD
    + SETTLE
    + r"""
local m = tonumber(ARGV[2])
local records = {}
for i = 3, 2 + 5 * m, 5 do records[ARGV[i] .. '\n' .. ARGV[i + 1]] = i end
local n = 0
for _, pair in ipairs(held(3 + 5 * m)) do
  local sub, refs = pair[1], pair[2]
  for _, ref in ipairs(refs) do
    local i = records[sub .. '\n' .. ref]
    if i then
      local key = k('msg', ARGV[i + 2])
      redis.call('HSET', key, sub, ARGV[i + 4])
      redis.call('PEXPIRE', key, ARGV[i + 3])
    end
  end
  n = n + settle(pair)
end
return n
"""
)
