--[[
  room-tick: one round of a sale's waiting room (issue 14): drop abandoned places and passes run
  out, open the room, let users out. Any number of processes may call it, each every ~100 ms:
  the bucket's credit and last tick are kept here and measured on one clock (Redis's TIME), so
  the credit added over any span is rate × span however many callers there are.

  KEYS[1] meta   KEYS[2] line   KEYS[3] seen   KEYS[4] adm   KEYS[5] out   KEYS[6] meter
  KEYS[7] rec    KEYS[8] est    KEYS[9] err list (recent estimate errors, ms)
  KEYS[10] the stock engine's sale hash (available, paused, ready: read, never written)
  (room-visit-7.lua describes the room's keys.)
  ARGV[1] now (epoch ms; '' = Redis's TIME)  ARGV[2] startsAt  ARGV[3] admitPerSecond
  ARGV[4] stockFactor  ARGV[5] abandonAfterMs  ARGV[6] passTtlMs  ARGV[7] nonce base (random,
  per call: the i-th user let out gets base .. i)  ARGV[8] key TTL (ms)  ARGV[9] estimate errors
  kept  ARGV[10] the rate meter's window (s)  ARGV[11] the most credit carried (maxCarry())

  Returns {0} no room (nobody joined yet), else {users let out, opened 0|1}.
  The admission arithmetic is admission() and stockCap() of src/domain/waiting-room.ts.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local SWEEP = 1000

-- Places not polled lately are dropped.
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[5])), 'LIMIT', 0, SWEEP)
for _, u in ipairs(gone) do
  redis.call('ZREM', KEYS[2], u)
  redis.call('ZREM', KEYS[3], u)
end
if #gone > 0 then redis.call('HINCRBY', KEYS[1], 'abandoned', #gone) end
-- Passes that ran out unused, and claims never settled past the pass's expiry, stop counting: the user joins again at the back.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, SWEEP)
for _, u in ipairs(lapsed) do
  redis.call('ZREM', KEYS[5], u)
  local a = redis.call('HGET', KEYS[4], u)
  if a and string.sub(a, 1, 1) ~= 'S' then redis.call('HDEL', KEYS[4], u) end
end

local m = redis.call('HMGET', KEYS[1], 'opened', 'credit', 'lastTick', 'meterClean')
local opened = m[1] == '1'
if not opened and now >= tonumber(ARGV[2]) then
  -- The random pre-queue is already in rank order; later arrivals score 2^52 + seq (room-visit).
  opened = true
  redis.call('HSET', KEYS[1], 'opened', '1', 'openedAt', now)
end

local admit = 0
local s = redis.call('HMGET', KEYS[10], 'available', 'paused', 'ready')
local available = tonumber(s[1] or '0') or 0
if opened and s[3] == '1' and s[2] ~= '1' and available > 0 then
  local rate = tonumber(ARGV[3])
  local elapsed = 0
  if m[3] then elapsed = math.max(0, now - tonumber(m[3])) end
  local outstanding = redis.call('ZCOUNT', KEYS[5], '(' .. now, '+inf')
  local cap = math.max(0, math.floor(available * tonumber(ARGV[4])) - outstanding)
  local credit = tonumber(m[2] or '0') + rate * elapsed / 1000
  admit = math.max(0, math.min(math.floor(credit), cap, redis.call('ZCARD', KEYS[2])))
  -- At most maxCarry() carried: no burst saved up.
  credit = math.min(tonumber(ARGV[11]), credit - admit)
  redis.call('HSET', KEYS[1], 'credit', string.format('%.17g', credit), 'lastTick', now)
  if admit > 0 then
    local users = redis.call('ZRANGE', KEYS[2], 0, admit - 1)
    local expiresAt = now + tonumber(ARGV[6])
    for i, u in ipairs(users) do
      redis.call('HSET', KEYS[4], u, 'L|' .. ARGV[7] .. i .. '|' .. expiresAt .. '|0')
      redis.call('ZADD', KEYS[5], expiresAt, u)
      redis.call('ZREM', KEYS[2], u)
      redis.call('ZREM', KEYS[3], u)
      local r = redis.call('HGET', KEYS[7], u)
      if r then
        local first, joined = string.match(r, '^(%d+)|(%d+)|')
        redis.call('HSET', KEYS[7], u, first .. '|' .. joined .. '|' .. now)
      end
      local expected = redis.call('HGET', KEYS[8], u)
      if expected then redis.call('LPUSH', KEYS[9], now - tonumber(expected)) end
    end
    redis.call('LTRIM', KEYS[9], 0, tonumber(ARGV[9]) - 1)
    redis.call('HINCRBY', KEYS[1], 'admitted', #users)
    redis.call('HINCRBY', KEYS[6], math.floor(now / 1000), #users)
    admit = #users
  end
else
  -- Paused, sold out, not loaded or not open: nothing saved up for the moment it resumes.
  redis.call('HSET', KEYS[1], 'credit', '0')
  redis.call('HDEL', KEYS[1], 'lastTick')
end

-- Seconds that left the rate meter's window go, once a second.
local second = math.floor(now / 1000)
if tonumber(m[4] or '0') < second then
  redis.call('HSET', KEYS[1], 'meterClean', second)
  local fields = redis.call('HKEYS', KEYS[6])
  for _, f in ipairs(fields) do
    if tonumber(f) <= second - tonumber(ARGV[10]) then redis.call('HDEL', KEYS[6], f) end
  end
  for i = 1, 9 do redis.call('PEXPIRE', KEYS[i], ARGV[8]) end
end
return {admit, opened and 1 or 0}
