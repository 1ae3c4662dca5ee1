#!lua flags=no-writes
--[[
  reserve-outcome: after a reserve whose reply never came, read whether its order exists, with
  Redis's own clock in the same step: an order that is absent once the clock is past the
  reserve's deadline can never be made by it. Read-only, so CLIENT PAUSE WRITE does not hold it.

  KEYS[1] orders hash   KEYS[2] sale hash   KEYS[3] holdings hash
  ARGV[1] orderId   ARGV[2] userId

  Returns {orderJson or '', redisNowMs, available, held}.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local raw = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local available = tonumber(redis.call('HGET', KEYS[2], 'available') or '0')
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
return {raw, now, available, held}
