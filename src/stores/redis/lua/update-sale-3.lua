--[[
  update-sale: an operator's correction of a loaded sale's record. The end time may always
  change (ending a sale early is this script too); stock, limit, start, price and payment window
  only while the sale has no order at all (before it opens), and then `available` is the new
  stock. Refusing here, in the same step as every reserve, is what makes "no order yet" true.

  KEYS[1] sale hash   KEYS[2] holdings hash   KEYS[3] orders hash
  ARGV[1] endsAt (0 = none)
  ARGV[2] 1 when the fields below change too, else 0
  ARGV[3] stock  ARGV[4] limit  ARGV[5] startsAt  ARGV[6] priceCents  ARGV[7] paymentWindowSeconds

  Returns 1 updated, -1 not loaded (rebuild it, then ask again), -2 an order exists (nothing changed).
]]
local s = redis.call('HMGET', KEYS[1], 'ready', 'available', 'stock')
if s[1] ~= '1' then return -1 end
if ARGV[2] == '1' then
  if redis.call('HLEN', KEYS[3]) > 0 or tonumber(s[2]) ~= tonumber(s[3]) then return -2 end
  for _, held in ipairs(redis.call('HVALS', KEYS[2])) do
    if tonumber(held) > 0 then return -2 end
  end
  redis.call('HSET', KEYS[1], 'stock', ARGV[3], 'available', ARGV[3], 'limit', ARGV[4], 'startsAt', ARGV[5],
    'price', ARGV[6], 'window', ARGV[7])
end
redis.call('HSET', KEYS[1], 'endsAt', ARGV[1])
return 1
