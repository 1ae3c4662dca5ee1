--[[
  rebuild-begin: first step of a rebuild, by the holder of the rebuild lock: drop the holdings
  and orders of a sale that is not loaded (they are rewritten from the database).

  KEYS[1] rebuild lock   KEYS[2] sale hash   KEYS[3] holdings hash   KEYS[4] orders hash
  ARGV[1] lock token

  Returns 1 begun, 0 the sale is loaded (nothing to do), -2 the lock is not ours.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
if redis.call('HGET', KEYS[2], 'ready') == '1' then return 0 end
redis.call('DEL', KEYS[3], KEYS[4])
return 1
