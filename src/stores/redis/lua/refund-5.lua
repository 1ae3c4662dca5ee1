--[[
  refund: move a paid order to `refunded`, once, whichever process asks first. When the sale
  restocks on refund (its `restock` field, written by init-sale), the units go back to stock and
  leave the buyer's holding in the same step; otherwise they stay sold and held. The change is
  appended to the writer's stream.

  A paid order is pruned from the orders hash once PostgreSQL has it, so the caller passes the
  order as it read it (paid) for that case. A refunded order is never pruned, and a rebuild puts
  refunded orders back: a refund that finds the order refunded here changes nothing, whatever the
  caller read.

  KEYS[1] sale hash   KEYS[2] holdings hash   KEYS[3] orders hash   KEYS[4] orders stream
  KEYS[5] orderId → saleId index
  ARGV[1] orderId  ARGV[2] now (epoch ms)  ARGV[3] reason ('' = none)
  ARGV[4] deadline: epoch ms in REDIS's clock (TIME) after which the script changes nothing
  ARGV[5] the order's JSON as the caller read it ('' = none)  ARGV[6] saleId

  Returns {code, orderJson, available}: 1 changed; 0 not changed (not paid: orderJson is the
  current order); -1 sale not loaded; -2 unknown order (not here and none passed);
  -7 too late (ran after its deadline: nothing changed).
]]
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[4]) then return {-7, '', 0} end
if redis.call('HGET', KEYS[1], 'ready') ~= '1' then return {-1, '', 0} end
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then
  if ARGV[5] == '' then return {-2, '', 0} end
  raw = ARGV[5]
end
local o = cjson.decode(raw)
local available = tonumber(redis.call('HGET', KEYS[1], 'available'))
if o.status ~= 'paid' then return {0, raw, available} end

o.status = 'refunded'
o.refundedAt = tonumber(ARGV[2])
if ARGV[3] ~= '' then o.refundReason = ARGV[3] end
if redis.call('HGET', KEYS[1], 'restock') == '1' then
  available = redis.call('HINCRBY', KEYS[1], 'available', o.quantity)
  local held = redis.call('HINCRBY', KEYS[2], o.userId, -o.quantity)
  if held <= 0 then redis.call('HDEL', KEYS[2], o.userId) end
end
local encoded = cjson.encode(o)
redis.call('HSET', KEYS[3], ARGV[1], encoded)
redis.call('HSET', KEYS[5], ARGV[1], ARGV[6])
redis.call('XADD', KEYS[4], '*', 'k', 'chg', 'o', encoded)
return {1, encoded, available}
