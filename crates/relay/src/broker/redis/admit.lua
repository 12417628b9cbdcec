-- Admits one more channel into the relay-wide count, or refuses it.
-- KEYS: 1 the channel index (sorted set: id -> removal time). ARGV: 1 now (ms),
-- 2 max channels, 3 channel id, 4 its removal time (ms).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'FULL' end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
return 'OK'
