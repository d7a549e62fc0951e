-- create: store a new session, evicting the user's sessions that expire first
-- while the user is at their limit.
-- KEYS: 1 session, 2 idx, 3 all, 4 rev, 5 ev, 6 lim, 7 seen, 8 own
-- ARGV: 1 now, 2 member, 3 limit (-1 unlimited), 4 retention ms, 5 stream max,
--       6 seen window ms, 7 limit override ttl ms, 8 channel, 9 user id,
--       10 device label, 11 country code, 12 ip, 13 tag (hex, for announcements),
--       14 the session value (see common.lua)
local now = tonumber(ARGV[1])
local member = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup'} end
local limit = tonumber(ARGV[3])
local override = redis.call('GET', KEYS[6])
if override then limit = tonumber(override) end
local retention = tonumber(ARGV[4])
local maxlen = ARGV[5]

local h = split(ARGV[14], HOT)
redis.call('SET', KEYS[1], ARGV[14]) -- first write: deny-oom
local dl = deadline(h[3], h[4], h[5])
local purge = dl + retention
redis.call('PEXPIREAT', KEYS[1], int(purge))
if override then redis.call('PEXPIRE', KEYS[6], ARGV[7]) end

prune(KEYS[2], KEYS[3], KEYS[4], KEYS[8], now)
local evicted = {}
if limit >= 1 then
  local mine = owned(KEYS[2], KEYS[8], ARGV[9])
  while #mine >= limit do
    local m = table.remove(mine, 1)
    redis.call('ZREM', KEYS[2], m)
    redis.call('HSET', KEYS[4], m, ARGV[1] .. '|session_limit_exceeded')
    evicted[#evicted + 1] = m
  end
end
redis.call('ZADD', KEYS[2], int(dl), member)
redis.call('ZADD', KEYS[3], int(purge), member)
redis.call('HSET', KEYS[8], member, ARGV[9])
local retained = expire_user(KEYS[2], KEYS[3], KEYS[4], KEYS[8])

-- New-device and new-country signals, from a bounded recent history.
local window = tonumber(ARGV[6])
local nd, nc = 0, 0
if window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - window)
  if redis.call('ZCARD', KEYS[7]) > 0 then
    if not redis.call('ZSCORE', KEYS[7], 'd:' .. ARGV[10]) then nd = 1 end
    if ARGV[11] ~= '' and not redis.call('ZSCORE', KEYS[7], 'c:' .. ARGV[11]) then nc = 1 end
  end
  redis.call('ZADD', KEYS[7], now, 'd:' .. ARGV[10])
  if ARGV[11] ~= '' then redis.call('ZADD', KEYS[7], now, 'c:' .. ARGV[11]) end
  local n = redis.call('ZCARD', KEYS[7])
  if n > 64 then redis.call('ZREMRANGEBYRANK', KEYS[7], 0, n - 65) end
  redis.call('PEXPIREAT', KEYS[7], int(now + window))
end

local ids = {}
for _, m in ipairs(evicted) do
  ids[#ids + 1] = redis.call('XADD', KEYS[5], 'MAXLEN', maxlen, '*', 't', 'session_evicted', 'u', ARGV[9],
    's', m, 'at', ARGV[1], 'r', 'session_limit_exceeded', 'by', member)
end
ids[#ids + 1] = redis.call('XADD', KEYS[5], 'MAXLEN', maxlen, '*', 't', 'session_created', 'u', ARGV[9],
  's', member, 'at', ARGV[1], 'ip', ARGV[12], 'dl', ARGV[10], 'cc', ARGV[11], 'nd', nd, 'nc', nc)
expire_events(KEYS[5], retained, now, retention)
if #evicted > 0 then redis.call('PUBLISH', ARGV[8], ARGV[13] .. ':' .. table.concat(evicted, ',')) end
return {'ok', nd, nc, evicted, ids}
