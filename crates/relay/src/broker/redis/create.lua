-- Creates a channel, counting it against the relay-wide maximum.
-- KEYS: 1 meta (hash). ARGV: 1 expires at (ms), 2 metadata removal time (ms),
-- 3 the creator's address ('' when not counted per address).
if redis.call('EXISTS', KEYS[1]) == 1 then return 'EXISTS' end
redis.call('HSET', KEYS[1], 'last', 0, 'exp', ARGV[1], 'bytes', 0, 'by', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 'OK'
