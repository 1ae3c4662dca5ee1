--[[
  lock-release: compare-and-delete, so a holder whose lock expired never deletes another's.
  KEYS[1] lock   ARGV[1] token
  Returns 1 released, 0 not ours.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
