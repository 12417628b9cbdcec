-- Appends events to one channel, atomically with the idempotency check.
-- KEYS: 1 meta (hash), 2 stream, 3 idempotency keys (hash), 4 their order (list).
-- Meta `held` counts what the budgets charge: 3 x payload + 256 per buffered
-- event, 2 x key + 64 per remembered key (event_cost and key_cost in Rust).
-- ARGV: 1 channel id, 2 kind ("message", or a final kind: "end" | "error"), 3 scoped idempotency key or "",
--       4 now (ms), 5 max events, 6 max bytes, 7 max keys, 8 ended retention (ms),
--       9 notification channel, 10 '' to store, or N (a byte budget is full): store only
--       if what the channel holds grows by at most N bytes (a full buffer pushes out about
--       as much as the append adds), else return {'GROWS', growth}, 11.. payloads.
local meta, stream, keys, order = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, ikey, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local m = redis.call('HMGET', meta, 'last', 'exp', 'ended', 'bytes', 'subs', 'held')
local subs = m[5] or '0'
if not m[2] then return {'NOTFOUND'} end
if ikey ~= '' then
  local done = redis.call('HGET', keys, ikey)
  if done then return {'REPLAYED', done, subs} end
end
if m[3] then return {'ENDED'} end
local exp = tonumber(m[2])
if now >= exp then return {'EXPIRED'} end
local last, bytes, held = tonumber(m[1]), tonumber(m[4]), tonumber(m[6] or '0')
local max_events, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
if ARGV[10] ~= '' then
  -- The trim below, counted before anything is stored: the oldest events go
  -- first (those stored, read as needed, then the new ones).
  local existing = redis.call('XLEN', stream)
  local len, b, grow = existing, bytes, 0
  for i = 11, #ARGV do
    len, b, grow = len + 1, b + #ARGV[i], grow + 3 * #ARGV[i] + 256
  end
  local cursor, page, at, new = '-', {}, 1, 11
  local function oldest()
    if existing == 0 then
      new = new + 1
      return #ARGV[new - 1]
    end
    if at > #page then
      page = redis.call('XRANGE', stream, cursor, '+', 'COUNT', 256)
      cursor, at = '(' .. page[#page][1], 1
    end
    at, existing = at + 1, existing - 1
    return #page[at - 1][2][4]
  end
  while len > 1 and (len > max_events or b > max_bytes) do
    local n = oldest()
    len, b, grow = len - 1, b - n, grow - 3 * n - 256
  end
  if ikey ~= '' then
    grow = grow + 2 * #ikey + 64
    if redis.call('LLEN', order) >= tonumber(ARGV[7]) then
      grow = grow - 2 * #redis.call('LINDEX', order, 0) - 64
    end
  end
  if grow > tonumber(ARGV[10]) then return {'GROWS', string.format('%d', grow)} end
end
local first = last + 1
for i = 11, #ARGV do
  last = last + 1
  redis.call('XADD', stream, string.format('%d-0', last), 'k', kind, 'd', ARGV[i])
  bytes = bytes + #ARGV[i]
  held = held + 3 * #ARGV[i] + 256
end
-- Bound the replay buffer by events, then by bytes; the newest event stays.
local len = redis.call('XLEN', stream)
if len > max_events then
  local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', len - max_events)
  for _, e in ipairs(old) do
    bytes = bytes - #e[2][4]
    held = held - 3 * #e[2][4] - 256
    redis.call('XDEL', stream, e[1])
  end
  len = max_events
end
while len > 1 and bytes > max_bytes do
  local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  bytes = bytes - #old[1][2][4]
  held = held - 3 * #old[1][2][4] - 256
  redis.call('XDEL', stream, old[1][1])
  len = len - 1
end
-- Everything of the channel goes by itself: the buffer at expiry (or the end
-- of the retention), the metadata and idempotency keys with the tombstone.
local gone = redis.call('PEXPIRETIME', meta)
local phase = 'open'
if ikey ~= '' then
  redis.call('HSET', keys, ikey, string.format('%d %d', first, last))
  held = held + 2 * #ikey + 64
  if redis.call('RPUSH', order, ikey) > tonumber(ARGV[7]) then
    local old = redis.call('LPOP', order)
    redis.call('HDEL', keys, old)
    held = held - 2 * #old - 64
  end
end
if kind ~= 'message' then
  phase = 'ended'
  gone = now + tonumber(ARGV[8])
  redis.call('HSET', meta, 'last', last, 'bytes', bytes, 'held', string.format('%d', held), 'ended', now)
  redis.call('PEXPIREAT', meta, gone)
  redis.call('PEXPIREAT', stream, gone)
else
  redis.call('HSET', meta, 'last', last, 'bytes', bytes, 'held', string.format('%d', held))
  redis.call('PEXPIREAT', stream, exp)
end
if redis.call('EXISTS', keys) == 1 then
  redis.call('PEXPIREAT', keys, gone)
  redis.call('PEXPIREAT', order, gone)
end
redis.call('PUBLISH', ARGV[9], string.format('%s %d %s', ARGV[1], last, phase))
-- The creator's address (on the final event, its count of channels is told
-- when the channel leaves it), what the channel now holds, and when its keys go.
local by = redis.call('HGET', meta, 'by') or ''
return {'OK', string.format('%d', first), string.format('%d', last), by, subs,
        string.format('%d', held), string.format('%d', gone)}
