-- Counts a new channel against its creator's address, across every node, or refuses it.
-- KEYS: 1 the address's live channels (sorted set: id -> when it stops counting),
--       2 its creation bucket (hash: tokens, at).
-- ARGV: 1 now (ms), 2 live channels allowed, 3 creations per second, 4 burst,
--       5 channel id, 6 until when it counts (ms; the relay sets its expiry once known).
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'FULL' end
local rate, burst = tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
if tokens < 1 then return 'RATE' end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'at', now)
-- A full bucket is the same as none: let it go once it would be full again.
redis.call('PEXPIRE', KEYS[2], math.min(86400000, math.ceil(burst * 1000 / math.max(rate, 1)) + 1000))
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[5])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[6]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
end
return 'OK'
