--[[
  init-sale: create a sale's stock record if, and only if, it does not exist yet. The record's
  existence (its `available` field, which is what `reserve` checks) is the test, not the key's: a
  lone `paused` written by an operator's pause/resume while Redis had lost the sale is newer than
  the rebuilding process's copy of the sale, so it is kept. The record is written last, after the
  holdings and orders of a rebuild; two processes racing to create it leave one record.

  KEYS[1] sale hash
  ARGV[1] stock  ARGV[2] available  ARGV[3] limit  ARGV[4] startsAt  ARGV[5] endsAt (0 = none)
  ARGV[6] paused (0|1)  ARGV[7] priceCents  ARGV[8] paymentWindowSeconds

  Returns 1 when created, 0 when it already existed.
]]
if redis.call('HEXISTS', KEYS[1], 'available') == 1 then return 0 end
local paused = redis.call('HGET', KEYS[1], 'paused') or ARGV[6]
redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'available', ARGV[2], 'limit', ARGV[3], 'startsAt', ARGV[4],
  'endsAt', ARGV[5], 'paused', paused, 'price', ARGV[7], 'window', ARGV[8])
return 1
