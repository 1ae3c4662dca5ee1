--[[
  reserve-many: the one atomic decision of a purchase in distributed mode, for one or more
  buyers of one sale at once (the reserves that reached one process in one event-loop turn:
  one round trip and one script call instead of one per buyer). A single reserve is this
  script with one buyer.

  Each buyer is decided in the order given, exactly as if alone: the sale's state and window,
  his holding against the limit, then the stock; if all pass, the stock is decremented, the
  holding and the order recorded, and the order appended to the stream the order writer
  consumes. A buyer decided earlier in the call is seen by the ones after him (the same user
  twice: his second reserve sees the first one's holding). Nothing outside this script decides
  or writes.

  KEYS[1] sale hash        KEYS[2] holdings hash   KEYS[3] orders hash
  KEYS[4] orders stream    KEYS[5] orderId → saleId index
  ARGV[1] saleId  ARGV[2] deadline: epoch ms in REDIS's clock (TIME) after which the call changes nothing
  ARGV[3..] four per buyer: userId, quantity, now (epoch ms), orderId

  Returns, for the whole call, {-7} too late (ran after its deadline: nothing changed) or
  {-1} sale not loaded (rebuild it; nothing changed); else four numbers per buyer, in order:
  code, available, held, expiresAt, the code being
    1 reserved, -2 paused, -3 not started, -4 ended, -5 limit reached, -6 sold out.

  The deadline is what lets a caller whose reply never came learn the truth: once Redis's clock
  is past it, an order that is not there will never be made by this call. (Redis 7 replicates a
  script's effects, not the script, so reading TIME before writing is allowed.)
]]
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[2]) then return {-7} end
local s = redis.call('HMGET', KEYS[1], 'available', 'limit', 'startsAt', 'endsAt', 'paused', 'price', 'window', 'ready')
-- Only a complete record (written whole by init-sale, marked `ready`) is a loaded sale.
if s[8] ~= '1' then return {-1} end
local saleId = ARGV[1]
local available = tonumber(s[1])
local limit = tonumber(s[2])
local paused = s[5] == '1'
local startsAt = tonumber(s[3])
local endsAt = tonumber(s[4])
local price = tonumber(s[6])
local windowMs = tonumber(s[7]) * 1000

-- One buyer: the rules in the order they apply. `available` is shared, so each buyer sees the ones before him.
local function decide(userId, quantity, now, orderId)
  if paused then return {-2, available, 0, 0} end
  if now < startsAt then return {-3, available, 0, 0} end
  if endsAt > 0 and now >= endsAt then return {-4, available, 0, 0} end
  local held = tonumber(redis.call('HGET', KEYS[2], userId) or '0')
  if held + quantity > limit then return {-5, available, held, 0} end
  if available < quantity then return {-6, available, held, 0} end

  available = redis.call('HINCRBY', KEYS[1], 'available', -quantity)
  held = redis.call('HINCRBY', KEYS[2], userId, quantity)
  local expiresAt = now + windowMs
  local order = cjson.encode({
    orderId = orderId, saleId = saleId, userId = userId, quantity = quantity,
    priceCents = price, status = 'reserved', createdAt = now, expiresAt = expiresAt
  })
  redis.call('HSET', KEYS[3], orderId, order)
  redis.call('HSET', KEYS[5], orderId, saleId)
  redis.call('XADD', KEYS[4], '*', 'k', 'new', 'o', order)
  return {1, available, held, expiresAt}
end

local out = {}
for i = 3, #ARGV, 4 do
  local r = decide(ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3])
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
  out[#out + 1] = r[4]
end
return out
