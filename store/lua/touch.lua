-- touch: authenticate (when a token hash is given) and record activity. It
-- writes nothing while the throttle holds and the address is unchanged.
-- ARGV: 1 now, 2 member, 3 token hash or '', 4 ip or '', 5 throttle ms,
--       6 retention ms, 7 locate ('1': stop and ask for the new address's
--       location), 8 location given ('1'), 9 activity event ('1'), 10 stream max,
--       11-15 location (label, city, region, country, country code) when 8 is '1'
local now = tonumber(ARGV[1])
local member = ARGV[2]
local v, refused = lookup(member, ARGV[3], now)
if not v then return refused end
local h, rest = split(v, HOT)

local current = h[7]
if current == '' then current = h[6] end
local changed = ARGV[4] ~= '' and ARGV[4] ~= current
if not changed and now - num(h[4]) < tonumber(ARGV[5]) then
  return {'ok', 0, 0, '', '', v, {}}
end
if changed and ARGV[7] == '1' then return {'loc'} end

h[4] = ARGV[1]
local prev_cc, cc = '', ''
local nv
if changed then
  h[7] = ARGV[4]
  local f = split(rest or '')
  f[10 - HOT] = tostring(num(f[10 - HOT]) + 1)
  prev_cc = f[26 - HOT] or ''
  if ARGV[8] == '1' then
    for i = 0, 4 do f[22 - HOT + i] = ARGV[11 + i] end
  end
  cc = f[26 - HOT] or ''
  nv = join(h, table.concat(f, '\31'))
else
  nv = join(h, rest)
end
-- First write, deny-oom. If the server is out of memory the session is still
-- valid: answer as if throttled rather than refuse a good session.
local written = redis.pcall('HSET', ACT, member, nv)
if type(written) == 'table' and written.err then
  return {'ok', 0, 0, '', '', v, {}}
end
local dl = deadline(h[3], h[4], h[5])
local retention = tonumber(ARGV[6])
local purge = dl + retention
redis.call('ZADD', IDX, int(dl), member)
redis.call('ZADD', ALL, int(purge), member)
prune(now)
local retained = expire_user()

local ids = {}
if changed then
  ids[#ids + 1] = redis.call('XADD', EV, 'MAXLEN', ARGV[10], '*', 't', 'ip_changed', 'u', h[8],
    's', member, 'at', ARGV[1], 'ip', ARGV[4], 'pip', current, 'cc', cc, 'pcc', prev_cc)
end
if ARGV[9] == '1' then
  ids[#ids + 1] = redis.call('XADD', EV, 'MAXLEN', ARGV[10], '*', 't', 'activity', 'u', h[8],
    's', member, 'at', ARGV[1], 'ip', h[7])
end
if #ids > 0 then expire_events(retained, now, retention) end
return {'ok', 1, changed and 1 or 0, current, prev_cc, nv, ids}
