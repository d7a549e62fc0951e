-- provider: remember that an active session reached a provider. The set is
-- kept most recently used last and bounded; a repeat within the throttle
-- writes nothing.
-- KEYS: 1 session, 2 idx, 3 rev, 4 ev, 5 all
-- ARGV: 1 now, 2 member, 3 provider, 4 max providers, 5 throttle ms,
--       6 stream max, 7 retention ms
local now = tonumber(ARGV[1])
local name = ARGV[3]
local f = redis.call('HMGET', KEYS[1], 'uid', 'ea', 'la', 'it', 'lp', 'lpa', 'pa')
if not f[1] then return {'nf'} end
local why = refusal(f[2], f[3], f[4], now)
if why then return {why} end
local refused = check_index(KEYS[2], KEYS[3], ARGV[2])
if refused then return refused end

local list, present = {}, false
for p in string.gmatch(f[7] or '', '[^,]+') do
  if p == name then present = true else list[#list + 1] = p end
end
if present and f[5] == name and now - tonumber(f[6] or '0') < tonumber(ARGV[5]) then
  return {'ok', 0, 0, f[1], ''}
end
list[#list + 1] = name
while #list > tonumber(ARGV[4]) do table.remove(list, 1) end

redis.call('HSET', KEYS[1], 'lp', name, 'lpa', ARGV[1], 'pa', table.concat(list, ',')) -- first write: deny-oom
local id = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[6], '*', 't', 'provider_accessed', 'u', f[1],
  's', ARGV[2], 'at', ARGV[1], 'p', name)
prune(KEYS[2], KEYS[5], KEYS[3], now)
expire_events(KEYS[4], expire_user(KEYS[2], KEYS[5], KEYS[3]), now, tonumber(ARGV[7]))
return {'ok', 1, present and 0 or 1, f[1], id}
