--[[
  reserve: the one atomic decision of a purchase in distributed mode.
  Checks the sale's state and window, the user's holding against the limit and the stock;
  then decrements the stock, records the holding and the order, and appends the order to the
  stream the order writer consumes. Nothing outside this script decides or writes.

  KEYS[1] sale hash        KEYS[2] holdings hash   KEYS[3] orders hash
  KEYS[4] orders stream    KEYS[5] orderId → saleId index
  ARGV[1] saleId  ARGV[2] userId  ARGV[3] quantity  ARGV[4] now (epoch ms)  ARGV[5] orderId
  ARGV[6] deadline: epoch ms in REDIS's clock (TIME) after which the script changes nothing

  Returns {code, available, held, expiresAt}:
    1 reserved, -1 sale not loaded (rebuild it), -2 paused, -3 not started, -4 ended,
    -5 limit reached, -6 sold out, -7 too late (ran after its deadline: nothing changed).

  The deadline is what lets a caller whose reply never came learn the truth: once Redis's clock
  is past it, an order that is not there will never be made by this call. (Redis 7 replicates a
  script's effects, not the script, so reading TIME before writing is allowed.)
]]
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[6]) then return {-7, 0, 0, 0} end
local s = redis.call('HMGET', KEYS[1], 'available', 'limit', 'startsAt', 'endsAt', 'paused', 'price', 'window', 'ready')
-- Only a complete record (written whole by init-sale, marked `ready`) is a loaded sale.
if s[8] ~= '1' then return {-1, 0, 0, 0} end
local available = tonumber(s[1])
local limit = tonumber(s[2])
local now = tonumber(ARGV[4])
if s[5] == '1' then return {-2, available, 0, 0} end
if now < tonumber(s[3]) then return {-3, available, 0, 0} end
local endsAt = tonumber(s[4])
if endsAt > 0 and now >= endsAt then return {-4, available, 0, 0} end

local userId = ARGV[2]
local quantity = tonumber(ARGV[3])
local held = tonumber(redis.call('HGET', KEYS[2], userId) or '0')
if held + quantity > limit then return {-5, available, held, 0} end
if available < quantity then return {-6, available, held, 0} end

available = redis.call('HINCRBY', KEYS[1], 'available', -quantity)
held = redis.call('HINCRBY', KEYS[2], userId, quantity)
local expiresAt = now + tonumber(s[7]) * 1000
local order = cjson.encode({
  orderId = ARGV[5], saleId = ARGV[1], userId = userId, quantity = quantity,
  priceCents = tonumber(s[6]), status = 'reserved', createdAt = now, expiresAt = expiresAt
})
redis.call('HSET', KEYS[3], ARGV[5], order)
redis.call('HSET', KEYS[5], ARGV[5], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'k', 'new', 'o', order)
return {1, available, held, expiresAt}
