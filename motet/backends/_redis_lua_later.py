"""The Redis backend's scripts for delayed emits, idempotency keys and expiry.

More keys (see `_redis_lua` for the queue's):

    P:later:<topic>      ZSET    delayed messages of a topic: envelope id -> due (epoch ms)
    P:laterbody:<topic>  HASH    envelope id -> cmsgpack {envelope, group, priority, expiry}
    P:latertopics        SET     topics with delayed messages
    P:key:<len>:<topic>:<key>  STRING  "<until ms> <first id>": an idempotency key; it also
                                 expires on Redis's clock after the window, to be forgotten

A delayed message joins its topic's stream when a receive of any subscription of the topic
(or a depth count) finds it due: one script deletes it from `later` and adds the stream
entry, so it is filed once across instances. A stream entry may carry `x`: the envelope's
own expiry (epoch ms), so a receive checks it without decoding the envelope; a
subscription's `ttl` needs the envelope's due time, which it decodes (only then).
"""

from __future__ import annotations

from ._redis_lua import LATER as FUNCTIONS
from ._redis_lua import PRELUDE

# ARGV: P, op, now ms, memo seconds, then (topic, envelope, group, priority, due ms, key, id,
# expiry ms, dedup window ms) per message ('' = none). Reply: the id each message is enqueued
# under (its own, or the first one's for a key seen within the window). A call retried after
# a lost reply gets the same reply and changes nothing again.
PUBLISH_LATER = (
    PRELUDE
    + FUNCTIONS
    + r"""
local op = ARGV[2]
local before = done_before(op)
if before then return cjson.decode(before) end
local now = tonumber(ARGV[3])
local ids, topics = {}, {}
for i = 5, #ARGV, 9 do
  local topic, e, g, p = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local due, key, id, x = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local window = tonumber(ARGV[i + 8])
  local first = nil
  if key ~= '' then
    local kk = P .. ':key:' .. #topic .. ':' .. topic .. ':' .. key
    local seen = redis.call('GET', kk)
    if seen then
      local untl, fid = string.match(seen, '^(%d+) (.*)$')
      if untl and tonumber(untl) > now then first = fid end
    end
    if not first then
      redis.call('SET', kk, string.format('%d', now + window) .. ' ' .. id, 'PX', window)
    end
  end
  if first then
    ids[#ids + 1] = first
  else
    ids[#ids + 1] = id
    if due ~= '' and tonumber(due) > now then
      local t = topics[topic]
      if t == nil then  -- once per topic and call
        t = false
        if redis.call('EXISTS', k('subs', topic)) == 1 then
          redis.call('SADD', P .. ':latertopics', topic)
          local head = redis.call('ZRANGE', k('later', topic), 0, 0, 'WITHSCORES')[2]
          t = {earliest = head and tonumber(head) or math.huge}
        end
        topics[topic] = t
      end
      if t then
        redis.call('ZADD', k('later', topic), due, id)
        redis.call('HSET', k('laterbody', topic), id, cmsgpack.pack({e, g, p, x}))
        -- Receivers sleep until the earliest due time they know of: ring only when this
        -- message is the new earliest (a later one changes nothing for them).
        if tonumber(due) < t.earliest then
          t.earliest = tonumber(due)
          for _, sub in ipairs(redis.call('SMEMBERS', k('subs', topic))) do bell(sub) end
        end
      end
    else
      xadd(topic, e, g, p, x)
    end
  end
end
if op ~= '' then redis.call('SET', k('op', op), cjson.encode(ids), 'EX', ARGV[4]) end
return ids
"""
)

# ARGV: P, now ms. Files every due delayed message, then replies (sub, not yet due, ...)
# for the subscriptions of topics that still have delayed messages.
LATER_COUNTS = (
    PRELUDE
    + FUNCTIONS
    + r"""
local now = ARGV[2]
local out = {}
for _, topic in ipairs(redis.call('SMEMBERS', P .. ':latertopics')) do
  file_due(topic, now)
  local n = redis.call('ZCARD', k('later', topic))
  if n > 0 then
    for _, sub in ipairs(redis.call('SMEMBERS', k('subs', topic))) do
      out[#out + 1] = sub
      out[#out + 1] = n
    end
  end
end
return out
"""
)

# ARGV: P, sub, now ms, then (ref, expiry ms) per entry a blocking read handed this consumer
# that had expired: each becomes a dead letter, unless something else took it meanwhile.
EXPIRE = (
    PRELUDE
    + FUNCTIONS
    + r"""
local sub, now = ARGV[2], ARGV[3]
local stream = k('stream', redis.call('HGET', P .. ':subtopic', sub))
local n = 0
for i = 4, #ARGV, 2 do
  local ref, deadline = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('HEXISTS', k('att', sub), ref) == 0
      and not redis.call('ZSCORE', k('ready', sub), rkey(ref)) then
    local got = redis.call('XRANGE', stream, ref, ref)
    if #got > 0 and got[1][2] then
      local f = fields(got[1][2])
      expire(sub, stream, ref, f['e'], f['g'], f['p'], deadline, now)
      n = n + 1
    end
  end
end
return n
"""
)
