-- Reads a channel's head and up to max events after a cursor.
-- KEYS: 1 meta (hash), 2 stream. ARGV: 1 after, 2 max, 3 now (ms).
-- Returns {'OK', last, ended at ('' if not), expires at, first buffered id (0: none),
--          id, kind, data, id, kind, data, ...} or {'NOTFOUND'} / {'EXPIRED'}.
local m = redis.call('HMGET', KEYS[1], 'last', 'exp', 'ended')
if not m[2] then return {'NOTFOUND'} end
if not m[3] and tonumber(ARGV[3]) >= tonumber(m[2]) then return {'EXPIRED'} end
local out = {'OK', m[1], m[3] or '', m[2], '0'}
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if head[1] then out[5] = head[1][1] end
local max = tonumber(ARGV[2])
if max > 0 then
  local start = string.format('%d-0', tonumber(ARGV[1]) + 1)
  for _, e in ipairs(redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', max)) do
    out[#out + 1] = e[1]
    out[#out + 1] = e[2][2]
    out[#out + 1] = e[2][4]
  end
end
return out
