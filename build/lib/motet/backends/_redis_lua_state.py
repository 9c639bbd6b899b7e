"""The state write script: a `StateWrite` applied inside Redis, so a write to a hot key is one
round trip whatever the number of writers (an optimistic compare-and-set retried without
bound starved under contention: 50 writers on one key waited 451 ms at p50).

The document is never decoded into Lua values. cjson would lose what Python keeps: key
order, `1.0` versus `1`, integers past 2^53, `[]` versus `{}`, lone surrogates. Instead the
script reads the stored JSON text as raw tokens: it splits only the objects on the op's path
into (key text, value text) pairs, in order, and writes the result back by concatenation, so
every value the ops do not touch keeps its exact text. Keys are compared as the JSON text
Python's encoder writes (the caller sends each path part encoded both ways it may be).

What the script cannot do exactly it does not do: it answers 'python' without writing, and
the caller applies that write with the compare-and-set path instead (which also raises the
ValueError an op that does not fit the document deserves). That is: a number op on something
not a number, an integer result or operand beyond 15 digits, a non-finite result, an op
through something that is not an object, a merge where a key has a `\\u` escape (it may be
spelt two ways), a document with duplicate keys on the path.

Semantics are `motet._state_writes` (set, merge, increment, decrement, remove; `None` for
absent; a dict `null` treated as absent) and the compare-and-set path's: an unchanged value
is not written and publishes nothing; otherwise the value and its change event are written
in the same script, and the reply is remembered under the op id so a call retried after a
lost reply gets the same change back instead of applying twice. Every write is remembered
for reconnect_timeout + 60 s, so only a change of up to 4 KiB (old and new text) is kept
whole; for a larger one the retry learns that the write was applied and reads the value back
(its old value is then unknown).
"""

from __future__ import annotations

from ._redis_lua import PRELUDE

# Raw-token JSON: `vend(s, i)` is the index of the last character of the value starting at
# s[i]; `entries(s)` the (key, value) texts of the object text `s`, in order (nil on a
# duplicate key); `join(es)` the object text again.
JSON_TEXT = r"""
local function ws(s, i) return string.find(s, '[^ \t\n\r]', i) or (#s + 1) end
local function vend(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then
    local j = i + 1
    while true do
      local q = string.find(s, '["\\]', j)
      if not q then error('motet: unterminated JSON string') end
      if string.sub(s, q, q) == '"' then return q end
      j = q + 2
    end
  elseif c == '{' or c == '[' then
    local depth, j = 0, i
    while true do
      local q = string.find(s, '[%[%]{}"]', j)
      if not q then error('motet: unterminated JSON container') end
      local ch = string.sub(s, q, q)
      if ch == '"' then
        q = vend(s, q)
      elseif ch == '{' or ch == '[' then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then return q end
      end
      j = q + 1
    end
  end
  local e = string.find(s, '[,%]} \t\n\r]', i)
  return (e or (#s + 1)) - 1
end
local function entries(s)
  local out, seen = {}, {}
  local i = ws(s, 2)
  if string.sub(s, i, i) == '}' then return out end
  while true do
    local ke = vend(s, i)
    local key = string.sub(s, i + 1, ke - 1)
    if seen[key] then return nil end
    seen[key] = true
    i = ws(s, ws(s, ke + 1) + 1)
    local ve = vend(s, i)
    out[#out + 1] = {key, string.sub(s, i, ve)}
    i = ws(s, ve + 1)
    if string.sub(s, i, i) == '}' then return out end
    i = ws(s, i + 1)
  end
end
local function join(es)
  local parts = {}
  for n, e in ipairs(es) do parts[n] = '"' .. e[1] .. '":' .. e[2] end
  return '{' .. table.concat(parts, ',') .. '}'
end
local function items(s)
  local out = {}
  local i = ws(s, 2)
  if string.sub(s, i, i) == ']' then return out end
  while true do
    local ve = vend(s, i)
    out[#out + 1] = string.sub(s, i, ve)
    i = ws(s, ve + 1)
    if string.sub(s, i, i) == ']' then return out end
    i = ws(s, i + 1)
  end
end
-- Equal as JSON values, key order aside (what the compare-and-set path calls unchanged).
local function same(a, b)
  if a == b then return true end
  local c = string.sub(a, 1, 1)
  if c ~= string.sub(b, 1, 1) then return false end
  if c == '{' then
    local ea, eb = entries(a), entries(b)
    if not ea or not eb or #ea ~= #eb then return false end
    local m = {}
    for _, e in ipairs(eb) do m[e[1]] = e[2] end
    for _, e in ipairs(ea) do
      if not m[e[1]] or not same(e[2], m[e[1]]) then return false end
    end
    return true
  elseif c == '[' then
    local ia, ib = items(a), items(b)
    if #ia ~= #ib then return false end
    for n = 1, #ia do
      if not same(ia[n], ib[n]) then return false end
    end
    return true
  end
  return false
end
"""

# ARGV: P, memo seconds, then one or more writes (several callers' writes group-committed
# into one call), each as: its number of arguments, op id, namespace, key, the change event's
# topic and its envelope text in four pieces (before the value, before the old value, before
# the event name, after it), then 'set', value text | 'delete' | 'update', n, then n ops of
# (name, value text, number of path parts, then per part its JSON string contents spelt as
# the encoder writes them with and without non-ASCII characters escaped). Reply: per write,
# in order, {'ok', event, old text, new text} (texts '' when absent; event '' when nothing
# changed), {'applied', event} (a retried call whose write was applied, with a change too large
# to remember: read the value), {'python'} or {'error', message}: one write's failure is its
# own.
STATE_APPLY = (
    PRELUDE
    + JSON_TEXT
    + r"""
local memo_ttl = ARGV[2]
local MEMO_MAX = 4096  -- bytes of old + new text remembered with a write's op id
local FALLBACK = {}  -- raised (as a table) when only the Python path can do this write exactly
local function fallback() error(FALLBACK) end
local function absent(text) return text == nil or text == 'null' end
local function is_object(text) return text ~= nil and string.sub(text, 1, 1) == '{' end

local function number(text)
  -- (value, is_int) of a JSON number text Python reads exactly as Lua does, else fallback
  if string.find(text, '^%-?%d+$') then
    if #string.gsub(text, '^%-', '') > 15 then fallback() end  -- below 1e15: exact in Lua
    return tonumber(text), true
  end
  if not string.find(text, '^%-?%d+%.?%d*[eE]?[%+%-]?%d*$') then fallback() end
  local v = tonumber(text)
  if not v then fallback() end
  return v, false
end
local function float_text(v)
  -- Python's repr of a float: the shortest text that reads back the same, with a '.0' on
  -- whole numbers below 1e16
  if v ~= v or v == math.huge or v == -math.huge then fallback() end
  local s
  for p = 1, 17 do
    s = string.format('%.' .. p .. 'g', v)
    if tonumber(s) == v then break end
  end
  if string.find(s, 'e') and v == math.floor(v) and math.abs(v) < 1e16 then
    s = string.format('%.0f', v)
  end
  if not string.find(s, '[%.e]') then s = s .. '.0' end
  return s
end
local function arith(current, name, by)
  local a, a_int = 0, true
  if not absent(current) then a, a_int = number(current) end
  local b, b_int = number(by)
  local r = name == 'increment' and a + b or a - b
  if a_int and b_int then
    if math.abs(r) >= 1e15 then fallback() end
    return string.format('%d', r)
  end
  return float_text(r)
end
local function merged(current, value)
  local base = {}
  if is_object(current) then base = entries(current) or fallback() end
  local adds = entries(value) or fallback()
  local where = {}
  for n, e in ipairs(base) do
    where[e[1]] = n
    if string.find(e[1], '\\u', 1, true) then fallback() end  -- spelt two ways (see find)
  end
  for _, e in ipairs(adds) do
    if string.find(e[1], '\\u', 1, true) then fallback() end
  end
  for _, e in ipairs(adds) do
    local n = where[e[1]]
    if n then base[n][2] = e[2] else base[#base + 1] = e; where[e[1]] = #base end
  end
  return join(base)
end
local function apply_at(current, o)
  if o.name == 'set' then return o.value end
  if o.name == 'remove' then return nil end
  if o.name == 'merge' then return merged(current, o.value) end
  if not absent(current) and not string.find(current, '^[%-%d]') then fallback() end
  return arith(current, o.name, o.value)
end
-- A key is spelt as Python's encoder writes it, with non-ASCII characters as they are, or
-- (in a document holding a lone surrogate) all as \u escapes: `o.path` has the first
-- spelling of each part, `o.ascii` the second.
local function find(es, o, depth)
  local part, ascii = o.path[depth], o.ascii[depth]
  for n, e in ipairs(es) do
    if e[1] == part or e[1] == ascii then return n end
  end
  return nil
end
-- The object text `doc` with op `o` applied at o.path[depth...]; `doc` itself when the op
-- changes nothing (remove through a missing parent).
local function at_path(doc, o, depth)
  if not is_object(doc) then fallback() end
  local es = entries(doc) or fallback()
  local n = find(es, o, depth)
  local current = n and es[n][2]
  local new
  if depth < #o.path then
    if absent(current) then
      if o.name == 'remove' then return doc end
      current = '{}'
    end
    new = at_path(current, o, depth + 1)
  elseif o.name == 'remove' then
    if not n then return doc end
    table.remove(es, n)
    return join(es)
  else
    new = apply_at(current, o)
  end
  if n then es[n][2] = new else es[#es + 1] = {o.path[depth], new} end
  return join(es)
end

-- One write whose arguments start at ARGV[a].
local function write(a)
  local op, ns, key = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local before = done_before(op)
  if before then
    if string.sub(before, 1, 1) == '!' then return {'applied', string.sub(before, 2)} end
    local event, old, new = string.match(before, '^([^\n]*)\n([^\n]*)\n(.*)$')
    return {'ok', event, old, new}
  end
  local bucket = k('state', ns)
  local old = redis.call('HGET', bucket, key) or nil
  local kind = ARGV[a + 8]
  local ok, result = pcall(function()
    if kind == 'set' then return ARGV[a + 9] end
    if kind == 'delete' then return nil end
    local doc = old
    if absent(doc) then doc = '{}' end
    local i = a + 10
    for _ = 1, tonumber(ARGV[a + 9]) do
      local o = {name = ARGV[i], value = ARGV[i + 1], path = {}, ascii = {}}
      local parts = tonumber(ARGV[i + 2])
      for j = 1, parts do
        o.path[j] = ARGV[i + 1 + 2 * j]
        o.ascii[j] = ARGV[i + 2 + 2 * j]
      end
      i = i + 3 + 2 * parts
      if #o.path == 0 then doc = apply_at(doc, o) else doc = at_path(doc, o, 1) end
    end
    return doc
  end)
  if not ok then
    if result == FALLBACK then return {'python'} end
    return {'error', tostring(result)}
  end
  local new = result
  if new == 'null' then new = nil end
  local event
  if new == nil then
    event = old and 'deleted' or ''
  elseif old == nil then
    event = 'created'
  elseif #new == #old and same(new, old) then
    event = ''
  else
    event = 'updated'
  end
  if event == 'deleted' then
    redis.call('HDEL', bucket, key)
    if redis.call('HLEN', bucket) == 0 then redis.call('SREM', P .. ':statens', ns) end
  elseif event ~= '' then
    redis.call('HSET', bucket, key, new)
    redis.call('SADD', P .. ':statens', ns)
  end
  local old_text, new_text = old or '', new or ''
  if event ~= '' then
    local body = ARGV[a + 4] .. (new or 'null') .. ARGV[a + 5] .. (old or 'null') .. ARGV[a + 6]
                 .. event .. ARGV[a + 7]
    publish(ARGV[a + 3], body, '', '')
  end
  if op ~= '' then
    -- The change itself only while it is small: every write is remembered for a while.
    local memo = '!' .. event
    if #old_text + #new_text <= MEMO_MAX then
      memo = event .. '\n' .. old_text .. '\n' .. new_text
    end
    redis.call('SET', k('op', op), memo, 'EX', memo_ttl)
  end
  return {'ok', event, old_text, new_text}
end

local out = {}
local a = 3
while a <= #ARGV do
  out[#out + 1] = write(a + 1)
  a = a + 1 + tonumber(ARGV[a])
end
return out
"""
)
