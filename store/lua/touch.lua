-- touch: authenticate (when a token hash is given) and record activity. It
-- writes nothing while the throttle holds and the address is unchanged.
-- KEYS: 1 session, 2 idx, 3 all, 4 rev, 5 ev
-- ARGV: 1 now, 2 member, 3 token hash or '', 4 ip or '', 5 throttle ms,
--       6 retention ms, 7 locate ('1': stop and ask for the new address's
--       location), 8 location given ('1'), 9 activity event ('1'), 10 stream max,
--       11.. location field/value pairs when 8 is '1' (ll, lci, lr, lco, cc)
local now = tonumber(ARGV[1])
local member = ARGV[2]
local f = redis.call('HMGET', KEYS[1], unpack(FIELDS))
if not f[1] then return {'nf'} end
if ARGV[3] ~= '' and not same(f[2], ARGV[3]) then return {'nf'} end
f[2] = false -- the verifier never leaves Redis
local why = refusal(f[5], f[4], f[6], now)
if why then return {why} end
local refused = check_index(KEYS[2], KEYS[4], member)
if refused then return refused end

local current = f[8] or f[7] or ''
local changed = ARGV[4] ~= '' and ARGV[4] ~= current
if not changed and now - tonumber(f[4]) < tonumber(ARGV[5]) then
  return {'ok', 0, 0, '', '', pack(f), {}}
end
if changed and ARGV[7] == '1' then return {'loc'} end

local unchanged = {unpack(f)}
local prev_cc = f[25] or ''
local LOC = {ll = 21, lci = 22, lr = 23, lco = 24, cc = 25}
local w, clear = {'la', ARGV[1]}, {}
if changed then
  local ic = tonumber(f[9] or '0') + 1
  w[#w + 1] = 'lip'; w[#w + 1] = ARGV[4]
  w[#w + 1] = 'ic'; w[#w + 1] = ic
  f[8] = ARGV[4]
  f[9] = tostring(ic)
  if ARGV[8] == '1' then
    for i = 11, #ARGV, 2 do
      local k, v = ARGV[i], ARGV[i + 1]
      if LOC[k] then
        if v == '' then clear[#clear + 1] = k; f[LOC[k]] = false
        else w[#w + 1] = k; w[#w + 1] = v; f[LOC[k]] = v end
      end
    end
  end
end
-- First write, deny-oom. If the server is out of memory the session is still
-- valid: answer as if throttled rather than refuse a good session.
local written = redis.pcall('HSET', KEYS[1], unpack(w))
if type(written) == 'table' and written.err then
  return {'ok', 0, 0, '', '', pack(unchanged), {}}
end
if #clear > 0 then redis.call('HDEL', KEYS[1], unpack(clear)) end
f[4] = ARGV[1]
local dl = deadline(f[5], f[4], f[6])
local retention = tonumber(ARGV[6])
local purge = dl + retention
redis.call('PEXPIREAT', KEYS[1], int(purge))
redis.call('ZADD', KEYS[2], 'XX', int(dl), member)
redis.call('ZADD', KEYS[3], int(purge), member)
prune(KEYS[2], KEYS[3], KEYS[4], now)
local retained = expire_user(KEYS[2], KEYS[3], KEYS[4])

local ids = {}
if changed then
  ids[#ids + 1] = redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[10], '*', 't', 'ip_changed', 'u', f[1],
    's', member, 'at', ARGV[1], 'ip', ARGV[4], 'pip', current, 'cc', f[25] or '', 'pcc', prev_cc)
end
if ARGV[9] == '1' then
  ids[#ids + 1] = redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[10], '*', 't', 'activity', 'u', f[1],
    's', member, 'at', ARGV[1], 'ip', f[8] or f[7] or '')
end
if #ids > 0 then expire_events(KEYS[5], retained, now, retention) end
return {'ok', 1, changed and 1 or 0, current, prev_cc, pack(f), ids}
