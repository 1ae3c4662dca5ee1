--[[
  adopt-order: take into a loaded sale an order the database of record has as `reserved` but
  Redis does not know (state left by an older rebuild that missed it), counting its units as
  held, so that it can be cancelled or expired like any other. Nothing goes to the stream: the
  database has the order already.

  KEYS[1] sale hash   KEYS[2] holdings hash   KEYS[3] orders hash   KEYS[4] orderId → saleId index
  ARGV[1] orderId   ARGV[2] order JSON (status reserved)   ARGV[3] userId   ARGV[4] quantity   ARGV[5] saleId

  Returns 1 adopted, 0 Redis knows the order already, -1 sale not loaded.
]]
if redis.call('HGET', KEYS[1], 'ready') ~= '1' then return -1 end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 0 end
local q = tonumber(ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
redis.call('HINCRBY', KEYS[2], ARGV[3], q)
redis.call('HINCRBY', KEYS[1], 'available', -q)
return 1
