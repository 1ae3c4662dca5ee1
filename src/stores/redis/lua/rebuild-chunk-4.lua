--[[
  rebuild-chunk: write a chunk of a sale's open orders (from the database) and their holdings,
  only while the caller still holds the rebuild lock: a rebuilder that lost its lock (stalled
  past its lifetime) cannot add to another's rebuild.

  KEYS[1] rebuild lock   KEYS[2] holdings hash   KEYS[3] orders hash   KEYS[4] orderId → saleId index
  ARGV[1] lock token   ARGV[2] saleId   then per order: orderId, userId, units held, order JSON
  (units held is 0 for a refunded order whose units went back to stock: kept only as a record)

  Returns the orders written, or -2 when the lock is not ours.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
local n = 0
for i = 3, #ARGV, 4 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 3])
  local q = tonumber(ARGV[i + 2])
  if q > 0 then redis.call('HINCRBY', KEYS[2], ARGV[i + 1], q) end
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[2])
  n = n + 1
end
return n
