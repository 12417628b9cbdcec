-- Counts one node's subscriber stream of a channel coming (+1) or going (-1).
-- KEYS: 1 meta (hash). ARGV: 1 delta, 2 now (ms).
-- `subs` is the count over every node; `empty` when it last fell to 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'subs', ARGV[1])
if n <= 0 then redis.call('HSET', KEYS[1], 'empty', ARGV[2]) end
return n
