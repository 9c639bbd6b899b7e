"""The Redis backend's rate-limited receive: RECEIVE (`_redis_lua`) under a token bucket,
in one script, so taking tokens and leasing are one atomic step across every instance.

    P:rate:<sub>         HASH    t = tokens (may dip a hair below 0), s = epoch ms of the
                                 last refill (the runtime clock of whoever leased last)

The bucket's sums are those of `_rate` (memory and SQLite backends: `burst` tokens when
full, plus up to 50 ms of the rate, at least one token, kept for receivers late for theirs),
on whole milliseconds:
a token short of whole by less than a millisecond of refill counts (the clock reaches the
script rounded to the millisecond), and the wait until the next token is rounded up.
"""

from __future__ import annotations

from ._redis_lua import PRELUDE, RECEIVE

_RECEIVE_BODY = RECEIVE.removeprefix(PRELUDE)

# ARGV: as RECEIVE (P, sub, consumer, now, lease deadline, max_count, op, memo seconds),
# then the limit: count, period seconds, burst.
# Reply: RECEIVE's, except that a reply with deliveries carries in its 2nd and 3rd fields the
# ms until the next token ('0': one is there) and '1' when ready messages were held back;
# and {'throttled', ms until the next token, '1' or '0'} when no token was there (then
# nothing was leased, nothing re-queued).
RATE_RECEIVE = (
    PRELUDE
    + r"""
local function receive()
"""
    + _RECEIVE_BODY
    + r"""
end
local sub, now = ARGV[2], tonumber(ARGV[4])
local per_ms = tonumber(ARGV[9]) / (tonumber(ARGV[10]) * 1000)
local burst = tonumber(ARGV[11])
local bucket = k('rate', sub)
local saved = redis.call('HMGET', bucket, 't', 's')
local tokens, stamp = burst, now
if saved[1] then
  tokens, stamp = tonumber(saved[1]), tonumber(saved[2])
  if now > stamp then
    tokens = tokens + (now - stamp) * per_ms
    stamp = now
  end
  if tokens >= burst + math.max(1, per_ms * 50) then tokens = burst end
end
local function whole(t) return math.floor(t + per_ms) end
local function wait_ms(t)
  if whole(t) >= 1 then return '0' end
  return tostring(math.max(1, math.ceil((1 - t) / per_ms)))
end
-- Whether anything of the subscription is ready now (or due to be): held back, if so.
local function backlog()
  if redis.call('ZCARD', k('ready', sub)) > 0 then return '1' end
  for _, kind in ipairs({'delayed', 'leases'}) do
    if #redis.call('ZRANGEBYSCORE', k(kind, sub), '-inf', now, 'LIMIT', 0, 1) > 0 then
      return '1'
    end
  end
  local topic = redis.call('HGET', P .. ':subtopic', sub)
  if not topic then return '0' end
  local stream = k('stream', topic)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last == 0 then return '0' end
  local function parts(id)
    local ms, sq = string.match(id, '^(%d+)-(%d+)$')
    return tonumber(ms), tonumber(sq)
  end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local f = fields(g)
    if f['name'] == sub then
      local lm, ls = parts(last[1][1])
      local dm, ds = parts(f['last-delivered-id'])
      if lm > dm or (lm == dm and ls > ds) then return '1' end
      return '0'
    end
  end
  return '0'
end
local function save()
  local f = '%.17g'
  redis.call('HSET', bucket, 't', string.format(f, tokens), 's', string.format(f, stamp))
end
local have = whole(tokens)
if have < 1 then
  if not redis.call('HGET', P .. ':substrat', sub) then return {'undeclared'} end
  save()
  return {'throttled', wait_ms(tokens), backlog()}
end
local replay = done_before(ARGV[7])
ARGV[6] = tostring(math.min(tonumber(ARGV[6]), have))
local out = receive()
if out[1] ~= 'ok' then return out end
local n = (#out - 4) / 3
if n > 0 then
  if not replay then tokens = tokens - n end
  out[2] = wait_ms(tokens)
  out[3] = '0'
  if out[2] ~= '0' then out[3] = backlog() end
end
save()
return out
"""
)
