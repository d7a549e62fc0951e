-- provider: remember that an active session reached a provider. The set is
-- kept most recently used last and bounded; a repeat within the throttle
-- writes nothing.
-- ARGV: 1 now, 2 member, 3 provider, 4 max providers, 5 throttle ms,
--       6 stream max, 7 retention ms
local now = tonumber(ARGV[1])
local name = ARGV[3]
local v, refused = lookup(ARGV[2], '', now)
if not v then return refused end
local f = split(v)

local list, present = {}, false
for p in string.gmatch(f[14] or '', '[^,]+') do
  if p == name then present = true else list[#list + 1] = p end
end
if present and f[12] == name and now - num(f[13]) < tonumber(ARGV[5]) then
  return {'ok', 0, 0, f[8], ''}
end
list[#list + 1] = name
while #list > tonumber(ARGV[4]) do table.remove(list, 1) end

f[12], f[13], f[14] = name, ARGV[1], table.concat(list, ',')
redis.call('HSET', ACT, ARGV[2], table.concat(f, '\31')) -- first write: deny-oom
local id = redis.call('XADD', EV, 'MAXLEN', ARGV[6], '*', 't', 'provider_accessed', 'u', f[8],
  's', ARGV[2], 'at', ARGV[1], 'p', name)
prune(now)
expire_events(expire_user(), now, tonumber(ARGV[7]))
return {'ok', 1, present and 0 or 1, f[8], id}
