--[[
  init-sale: create a sale's stock record if, and only if, it does not exist yet. The record's
  existence is what `reserve` checks, so it is written last, after the holdings and orders of a
  rebuild; two processes racing to create it leave one record.

  KEYS[1] sale hash
  ARGV[1] stock  ARGV[2] available  ARGV[3] limit  ARGV[4] startsAt  ARGV[5] endsAt (0 = none)
  ARGV[6] paused (0|1)  ARGV[7] priceCents  ARGV[8] paymentWindowSeconds

  Returns 1 when created, 0 when it already existed.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'available', ARGV[2], 'limit', ARGV[3], 'startsAt', ARGV[4],
  'endsAt', ARGV[5], 'paused', ARGV[6], 'price', ARGV[7], 'window', ARGV[8])
return 1
