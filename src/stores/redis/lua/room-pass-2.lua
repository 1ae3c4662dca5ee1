--[[
  room-pass: a waiting-room pass checked, claimed for a buy, or settled after it (issue 14),
  atomically: one buy at a time per pass, spent once an order was reserved with it.

  KEYS[1] adm hash: userId → "state|nonce|expiresAt|claimUntil" (L live, C claimed, S spent)
  KEYS[2] out zset: userId by when it stops counting against the stock cap
  ARGV[1] 'check' | 'claim' | 'settle'  ARGV[2] userId  ARGV[3] nonce (check, claim)
  ARGV[4] now (epoch ms; '' = Redis's TIME)  ARGV[5] claim: how long it holds (ms); settle: '1' reserved, '0' not

  Returns 1 yes (good / claimed / settled), 0 no. The signature and expiry of the pass's text
  are checked before, by the caller (it holds the sale's secret).
]]
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[4])
end
local u = ARGV[2]
local raw = redis.call('HGET', KEYS[1], u)
if not raw then return 0 end
local st, nonce, exp, claim = string.match(raw, '^(%a)|([^|]*)|(%d+)|(%d+)$')
exp = tonumber(exp)
claim = tonumber(claim)

if ARGV[1] == 'check' then
  return (nonce == ARGV[3] and st ~= 'S') and 1 or 0
end

if ARGV[1] == 'claim' then
  if nonce ~= ARGV[3] or now >= exp or st == 'S' then return 0 end
  -- A claim whose buy never settled (its process died) lapses.
  if st == 'C' and now < claim then return 0 end
  local untilMs = now + tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], u, 'C|' .. nonce .. '|' .. exp .. '|' .. untilMs)
  redis.call('ZADD', KEYS[2], math.max(exp, untilMs), u)
  return 1
end

-- settle
if st ~= 'C' then return 0 end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], u, 'S|' .. nonce .. '|' .. exp .. '|0')
  redis.call('ZREM', KEYS[2], u)
else
  redis.call('HSET', KEYS[1], u, 'L|' .. nonce .. '|' .. exp .. '|0')
  redis.call('ZADD', KEYS[2], exp, u)
end
return 1
