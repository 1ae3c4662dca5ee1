--[[
  lock-extend: renew a lock's lifetime if, and only if, the caller still holds it.
  KEYS[1] lock   ARGV[1] token   ARGV[2] lifetime (ms)
  Returns 1 renewed, 0 not ours (expired, or taken by another).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
