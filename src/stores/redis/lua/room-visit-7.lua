--[[
  room-visit: a user's join or poll of a sale's waiting room (issue 14), atomic for the room.

  KEYS[1] meta hash: opened, openedAt, credit, lastTick, seq, admitted, abandoned
  KEYS[2] line zset: userId by place (fifo: arrival seq; random: shuffle rank before the open,
          2^52 + seq after it)                KEYS[3] seen zset: userId by last visit (ms)
  KEYS[4] adm hash: userId → "state|nonce|expiresAt|claimUntil" (state L live, C claimed, S spent)
  KEYS[5] rec hash: userId → "firstJoinedAt|joinedAt|admittedAt"
  KEYS[6] est hash: userId → when the first estimate after the open expected the place out
  KEYS[7] meter hash: second → users let out in it
  ARGV[1] userId  ARGV[2] now (epoch ms; '' = Redis's TIME)  ARGV[3] '1' join, '0' poll
  ARGV[4] shuffle rank (random room; '' in a fifo room)  ARGV[5] key TTL (ms)

  Returns {0} not in the room (poll only); {1, nonce, expiresAt, spent 0|1} let out;
  {2, position, opened 0|1, openedAt, estimated 0|1, now, second, n, second, n, ...} waiting.
]]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end
local u = ARGV[1]

local function parse(a)
  if not a then return nil end
  local st, nonce, exp, claim = string.match(a, '^(%a)|([^|]*)|(%d+)|(%d+)$')
  return {st = st, nonce = nonce, exp = tonumber(exp), claim = tonumber(claim)}
end

local a = parse(redis.call('HGET', KEYS[4], u))
-- Counts against the stock: good and not spent, or in a buy whose claim has not lapsed.
local holds = a and a.st ~= 'S' and (now < a.exp or (a.st == 'C' and now < a.claim))
local inLine = redis.call('ZSCORE', KEYS[2], u)

if ARGV[3] == '1' and not inLine and not holds then
  -- Never let out, a pass run out unused, or spent on an order (one pass, one buy): the back of the line.
  redis.call('HDEL', KEYS[4], u)
  a = nil
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local opened = redis.call('HGET', KEYS[1], 'opened') == '1'
  local score
  if ARGV[4] == '' then score = seq
  elseif opened then score = 4503599627370496 + seq
  else score = tonumber(ARGV[4]) end
  redis.call('ZADD', KEYS[2], string.format('%.0f', score), u)
  redis.call('ZADD', KEYS[3], now, u)
  local old = redis.call('HGET', KEYS[5], u)
  local first = old and string.match(old, '^(%d+)|') or tostring(now)
  redis.call('HSET', KEYS[5], u, first .. '|' .. now .. '|')
  redis.call('HDEL', KEYS[6], u)
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
  inLine = true
end

if a and (a.st ~= 'L' or now < a.exp) then
  return {1, a.nonce, a.exp, a.st == 'S' and 1 or 0}
end
if not inLine then return {0} end

redis.call('ZADD', KEYS[3], now, u)
local position = redis.call('ZRANK', KEYS[2], u) + 1
local m = redis.call('HMGET', KEYS[1], 'opened', 'openedAt')
local out = {2, position, m[1] == '1' and 1 or 0, tonumber(m[2] or '0'), redis.call('HEXISTS', KEYS[6], u), now}
if m[1] == '1' then
  local meter = redis.call('HGETALL', KEYS[7])
  for i = 1, #meter do out[#out + 1] = tonumber(meter[i]) end
end
return out
