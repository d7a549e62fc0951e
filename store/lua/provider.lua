-- provider: remember that an active session reached a provider. The set is
-- kept most recently used last and bounded; a repeat within the throttle
-- writes nothing.
-- KEYS: 1 session, 2 idx, 3 rev, 4 ev, 5 all, 6 own
-- ARGV: 1 now, 2 member, 3 provider, 4 max providers, 5 throttle ms,
--       6 stream max, 7 retention ms
local now = tonumber(ARGV[1])
local name = ARGV[3]
local v = redis.call('GET', KEYS[1])
if not v then return {'nf'} end
local f = split(v)
local why = refusal(f[3], f[4], f[5], now)
if why then return {why} end
local refused = check_index(KEYS[2], KEYS[3], ARGV[2])
if refused then return refused end

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
redis.call('SET', KEYS[1], table.concat(f, '\31'), 'KEEPTTL') -- first write: deny-oom
local id = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[6], '*', 't', 'provider_accessed', 'u', f[8],
  's', ARGV[2], 'at', ARGV[1], 'p', name)
prune(KEYS[2], KEYS[5], KEYS[3], KEYS[6], now)
expire_events(KEYS[4], expire_user(KEYS[2], KEYS[5], KEYS[3], KEYS[6]), now, tonumber(ARGV[7]))
return {'ok', 1, present and 0 or 1, f[8], id}
