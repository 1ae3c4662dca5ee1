--[[
  init-sale: the last step of a rebuild: write the sale's stock record whole, with `ready`, in
  one step, so no script ever sees (or writes into) a half-built sale. Only the holder of the
  rebuild lock may do it, and only when the holdings it wrote add up to what it read from the
  database. A lone `paused` written by an operator while Redis had lost the sale is newer than
  the rebuilding process's copy of the sale, so it is kept; any other stray field is overwritten.

  KEYS[1] sale hash   KEYS[2] rebuild lock   KEYS[3] holdings hash
  ARGV[1] lock token
  ARGV[2] stock  ARGV[3] available  ARGV[4] limit  ARGV[5] startsAt  ARGV[6] endsAt (0 = none)
  ARGV[7] paused (0|1)  ARGV[8] priceCents  ARGV[9] paymentWindowSeconds  ARGV[10] units held
  ARGV[11] restock on refund (0|1)

  Returns 1 created, 0 already loaded, -2 the lock is not ours, -3 holdings do not add up.
]]
if redis.call('HGET', KEYS[1], 'ready') == '1' then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end
local held = 0
local vals = redis.call('HVALS', KEYS[3])
for i = 1, #vals do held = held + tonumber(vals[i]) end
if held ~= tonumber(ARGV[10]) then return -3 end
local paused = redis.call('HGET', KEYS[1], 'paused') or ARGV[7]
redis.call('HSET', KEYS[1], 'stock', ARGV[2], 'available', ARGV[3], 'limit', ARGV[4], 'startsAt', ARGV[5],
  'endsAt', ARGV[6], 'paused', paused, 'price', ARGV[8], 'window', ARGV[9], 'restock', ARGV[11], 'ready', '1')
return 1
