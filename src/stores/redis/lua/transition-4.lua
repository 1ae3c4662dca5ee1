--[[
  transition: move an order out of `reserved` — to paid, cancelled or expired — exactly once,
  whichever process or sweeper asks first. Cancelled and expired return the stock and the
  user's holding in the same step. The change is appended to the writer's stream.

  KEYS[1] sale hash   KEYS[2] holdings hash   KEYS[3] orders hash   KEYS[4] orders stream
  ARGV[1] orderId  ARGV[2] to (paid | cancelled | expired)  ARGV[3] now (epoch ms)  ARGV[4] paymentRef
  ARGV[5] deadline: epoch ms in REDIS's clock (TIME) after which the script changes nothing

  Returns {code, orderJson, available}:
    1 changed; 0 not changed (not reserved, or paying past the window: orderJson is the current
    order); -1 sale not loaded (no complete record: rebuild it, write nothing into it);
    -2 unknown order in a loaded sale (the engine may adopt it from the database);
    -7 too late (ran after its deadline: nothing changed). As for reserve, the deadline lets a
    caller whose reply never came learn the truth from Redis instead of answering a guess.
]]
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[5]) then return {-7, '', 0} end
if redis.call('HGET', KEYS[1], 'ready') ~= '1' then return {-1, '', 0} end
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then return {-2, '', 0} end
local o = cjson.decode(raw)
local to = ARGV[2]
local now = tonumber(ARGV[3])
if o.status ~= 'reserved' then return {0, raw, 0} end
if to == 'paid' and now >= o.expiresAt then return {0, raw, 0} end
if to == 'expired' and now < o.expiresAt then return {0, raw, 0} end

o.status = to
local available = 0
if to == 'paid' then
  o.paidAt = now
  o.paymentRef = ARGV[4]
else
  available = redis.call('HINCRBY', KEYS[1], 'available', o.quantity)
  local held = redis.call('HINCRBY', KEYS[2], o.userId, -o.quantity)
  if held <= 0 then redis.call('HDEL', KEYS[2], o.userId) end
end
local encoded = cjson.encode(o)
redis.call('HSET', KEYS[3], ARGV[1], encoded)
redis.call('XADD', KEYS[4], '*', 'k', 'chg', 'o', encoded)
return {1, encoded, available}
