-- create: store a new session, evicting the user's sessions that expire first
-- while the user is at their limit.
-- ARGV: 1 now, 2 member, 3 limit (-1 unlimited), 4 retention ms, 5 stream max,
--       6 seen window ms, 7 limit override ttl ms, 8 channel, 9 user id,
--       10 device label, 11 country code, 12 ip, 13 tag (hex, for announcements),
--       14 the session value (see common.lua)
local now = tonumber(ARGV[1])
local member = ARGV[2]
if redis.call('HEXISTS', ACT, member) == 1 or redis.call('HEXISTS', RET, member) == 1 then
  return {'dup'}
end
local limit = tonumber(ARGV[3])
local override = redis.call('GET', LIM)
if override then limit = tonumber(override) end
local retention = tonumber(ARGV[4])
local maxlen = ARGV[5]

local h = split(ARGV[14], HOT)
redis.call('HSET', ACT, member, ARGV[14]) -- first write: deny-oom
prune(now, member)
local dl = deadline(h[3], h[4], h[5])
local purge = dl + retention
if override then redis.call('PEXPIRE', LIM, ARGV[7]) end

local evicted = {}
if limit >= 1 then
  local mine = owned(ARGV[9])
  while #mine >= limit do
    local m = table.remove(mine, 1)
    redis.call('HSET', REV, m, ARGV[1] .. '|session_limit_exceeded')
    evicted[#evicted + 1] = m
  end
  if #evicted > 0 then retire(evicted) end
end
redis.call('ZADD', IDX, int(dl), member)
redis.call('ZADD', ALL, int(purge), member)
redis.call('HSET', OWN, member, ARGV[9])
local retained = expire_user()

-- New-device and new-country signals, from a bounded recent history.
local window = tonumber(ARGV[6])
local nd, nc = 0, 0
if window > 0 then
  redis.call('ZREMRANGEBYSCORE', SEEN, '-inf', now - window)
  if redis.call('ZCARD', SEEN) > 0 then
    if not redis.call('ZSCORE', SEEN, 'd:' .. ARGV[10]) then nd = 1 end
    if ARGV[11] ~= '' and not redis.call('ZSCORE', SEEN, 'c:' .. ARGV[11]) then nc = 1 end
  end
  redis.call('ZADD', SEEN, now, 'd:' .. ARGV[10])
  if ARGV[11] ~= '' then redis.call('ZADD', SEEN, now, 'c:' .. ARGV[11]) end
  local n = redis.call('ZCARD', SEEN)
  if n > 64 then redis.call('ZREMRANGEBYRANK', SEEN, 0, n - 65) end
  redis.call('PEXPIREAT', SEEN, int(now + window))
end

local ids = {}
for _, m in ipairs(evicted) do
  ids[#ids + 1] = redis.call('XADD', EV, 'MAXLEN', maxlen, '*', 't', 'session_evicted', 'u', ARGV[9],
    's', m, 'at', ARGV[1], 'r', 'session_limit_exceeded', 'by', member)
end
ids[#ids + 1] = redis.call('XADD', EV, 'MAXLEN', maxlen, '*', 't', 'session_created', 'u', ARGV[9],
  's', member, 'at', ARGV[1], 'ip', ARGV[12], 'dl', ARGV[10], 'cc', ARGV[11], 'nd', nd, 'nc', nc)
expire_events(retained, now, retention)
if #evicted > 0 then redis.call('PUBLISH', ARGV[8], ARGV[13] .. ':' .. table.concat(evicted, ',')) end
return {'ok', nd, nc, evicted, ids}
