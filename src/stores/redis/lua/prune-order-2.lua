--[[
  prune-order: forget a settled order in Redis once the order writer has committed it to
  PostgreSQL (the engine's getOrder then answers it from the database). Compare-and-delete:
  only when the stored JSON is still exactly what the writer committed and its status is
  final, so a reserved order, or one changed since, is never removed.

  KEYS[1] sale's orders hash   KEYS[2] orderId -> saleId index
  ARGV[1] orderId   ARGV[2] the order JSON the writer committed

  Returns 1 removed, 0 kept.
]]
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw ~= ARGV[2] then return 0 end
local status = cjson.decode(raw).status
if status ~= 'paid' and status ~= 'cancelled' and status ~= 'expired' then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
