--[[
  trim-stream: drop the entries of a sale's order stream that the writers' group has
  acknowledged, in one atomic step. Read in two round trips (XPENDING, then the group's
  last-delivered id), a writer's read in between could move last-delivered past entries it
  holds but has not committed, and the trim would delete them (defect 8 of issue 9).

  KEYS[1] orders stream   ARGV[1] writers' group name

  Keeps everything from the oldest pending entry on (delivered, not acknowledged), or, with
  nothing pending, from the last delivered entry on (never delivered entries come after it).
  Returns the number of entries trimmed; -1 when the stream or the group does not exist.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local last = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then last = f['last-delivered-id'] end
end
if not last then return -1 end
local minId = last
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(pending[1]) > 0 then minId = pending[2] end
if minId == '0-0' then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', minId)
