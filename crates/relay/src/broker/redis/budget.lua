-- The byte budgets across nodes: a ledger of what every channel holds in Redis.
-- KEYS (one hash slot, {bytes}):
--   1 entries (hash: channel id -> "HELD VERSION PENDING UNTIL ADDRESS"),
--   2 sums (hash: '*' -> all channels, ADDRESS -> that creator's channels),
--   3 release times (sorted set: channel id -> when its keys are gone, ms),
--   4 reservations (hash: "NODE ID" -> bytes that node reserved and has not settled),
--   5 nodes (sorted set: node -> last call, ms).
-- ARGV: 1 now (ms), 2 node, 3 budget in all, 4 budget per address (0: none),
--   5 ms after which a silent node's reservations are dropped,
--   6 channel id to reserve for ('' none), 7 bytes to reserve, 8 its address ('' unknown),
--   9 its release time (ms), 10 how many random entries to return for an audit,
--   11.. settlements, 6 fields each: channel id, bytes reserved, bytes held ('' unknown),
--        version (the channel's last id), release time ('' unknown), address ('' unknown).
-- HELD is what the channel's append script last counted (meta field `held`) at
-- VERSION; PENDING what nodes reserved since. A channel costs HELD + PENDING.
-- Returns {'OK' | 'FULL' | 'ADDR', total, audit ids...}.
local entries, sums, untils, resv, nodes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, node = tonumber(ARGV[1]), ARGV[2]

local function get(id)
  local v = redis.call('HGET', entries, id)
  if not v then return nil end
  local held, ver, pending, untl, addr = string.match(v, '^(%d+) (%d+) (%d+) (%d+) (%S+)$')
  return {held = tonumber(held), ver = tonumber(ver), pending = tonumber(pending),
          untl = tonumber(untl), addr = addr}
end

local function cost(e) return e.held + e.pending end

-- HINCRBY by d (skipped when 0: a Lua -0 would reach Redis as "-0", not an integer).
local function incr(key, field, d)
  if d == 0 then return tonumber(redis.call('HGET', key, field) or '0') end
  return redis.call('HINCRBY', key, field, string.format('%d', d))
end

-- Moves the sums by `d` for an entry of address `addr`.
local function add(addr, d)
  if d == 0 then return end
  incr(sums, '*', d)
  if addr ~= '-' then
    if incr(sums, addr, d) <= 0 then redis.call('HDEL', sums, addr) end
  end
end

local function put(id, e)
  redis.call('HSET', entries, id, string.format('%d %d %d %d %s', e.held, e.ver, e.pending, e.untl, e.addr))
end

local function drop(id)
  local e = get(id)
  if e then add(e.addr, -cost(e)) end
  redis.call('HDEL', entries, id)
  redis.call('ZREM', untils, id)
end

-- A node's reservation on a channel, taken back (settled or dropped).
local function unreserve(field, id, bytes)
  local mine = tonumber(redis.call('HGET', resv, field) or '0')
  local r = math.min(mine, bytes)
  if mine - r <= 0 then redis.call('HDEL', resv, field) else incr(resv, field, -r) end
  local e = get(id)
  if e and r > 0 then
    r = math.min(r, e.pending)
    e.pending = e.pending - r
    add(e.addr, -r)
    put(id, e)
  end
end

redis.call('ZADD', nodes, now, node)
-- A node silent for long (dead, or cut off from Redis) reserved bytes it will
-- never settle: drop them, one such node per call.
local gone = redis.call('ZRANGEBYSCORE', nodes, '-inf', now - tonumber(ARGV[5]), 'LIMIT', 0, 1)[1]
if gone then
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', resv, cursor, 'MATCH', gone .. ' *', 'COUNT', 500)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      local field = page[2][i]
      unreserve(field, string.sub(field, #gone + 2), tonumber(page[2][i + 1]))
    end
  until cursor == '0'
  redis.call('ZREM', nodes, gone)
end
-- Channels whose keys Redis dropped by themselves (expiry, end of retention).
for _, id in ipairs(redis.call('ZRANGEBYSCORE', untils, '-inf', now, 'LIMIT', 0, 100)) do
  drop(id)
end
-- What appends stored (and audits read), as their scripts counted it.
local i = 11
while i + 5 <= #ARGV do
  local id, reserved, held, ver, untl, addr =
    ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5]
  unreserve(node .. ' ' .. id, id, reserved)
  local e = get(id)
  if not e and held ~= '' and untl ~= '' and tonumber(untl) > now and tonumber(held) > 0 then
    e = {held = 0, ver = 0, pending = 0, untl = tonumber(untl), addr = '-'}
  end
  if e then
    local before = cost(e)
    if held ~= '' and ver >= e.ver then
      e.held, e.ver = tonumber(held), ver
    end
    add(e.addr, cost(e) - before)
    if e.addr == '-' and addr ~= '' then
      e.addr = addr
      add(addr, cost(e))
      incr(sums, '*', -cost(e))
    end
    if untl ~= '' then
      e.untl = tonumber(untl)
      redis.call('ZADD', untils, e.untl, id)
    end
    put(id, e)
  end
  i = i + 6
end
-- The reservation, refused if it would pass a budget.
local status = 'OK'
local id = ARGV[6]
if id ~= '' then
  local want = tonumber(ARGV[7])
  local e = get(id)
  if not e then
    local addr = ARGV[8]
    if addr == '' then addr = '-' end
    e = {held = 0, ver = 0, pending = 0, untl = tonumber(ARGV[9]), addr = addr}
    redis.call('ZADD', untils, e.untl, id)
  end
  local total = tonumber(redis.call('HGET', sums, '*') or '0')
  local per = tonumber(ARGV[4])
  if total + want > tonumber(ARGV[3]) then
    status = 'FULL'
  elseif per > 0 and e.addr ~= '-'
      and tonumber(redis.call('HGET', sums, e.addr) or '0') + want > per then
    status = 'ADDR'
  elseif want > 0 then
    e.pending = e.pending + want
    add(e.addr, want)
    incr(resv, node .. ' ' .. id, want)
  end
  put(id, e)
end
local out = {status, redis.call('HGET', sums, '*') or '0'}
local n = tonumber(ARGV[10])
if n > 0 then
  for _, a in ipairs(redis.call('HRANDFIELD', entries, n)) do out[#out + 1] = a end
end
return out
