-- revoke: soft-revoke one active session of a user. Unknown, foreign,
-- revoked and expired sessions get the same answer.
-- ARGV: 1 now, 2 member, 3 user id, 4 reason, 5 retention ms, 6 stream max, 7 channel, 8 tag
local now = tonumber(ARGV[1])
local member = ARGV[2]
local v = redis.call('HGET', ACT, member)
if not v then return {'nf'} end
local h = split(v, HOT)
if h[8] ~= ARGV[3] or refusal(h[3], h[4], h[5], now) then return {'nf'} end

redis.call('HSET', REV, member, ARGV[1] .. '|' .. ARGV[4]) -- first write: deny-oom
retire({member})
local retention = tonumber(ARGV[5])
local purge = now + retention
if retention <= 0 then purge = now + 1 end
redis.call('ZADD', ALL, int(purge), member)
prune(now)
local retained = expire_user()
local id = redis.call('XADD', EV, 'MAXLEN', ARGV[6], '*', 't', 'session_revoked', 'u', ARGV[3],
  's', member, 'at', ARGV[1], 'r', ARGV[4])
expire_events(retained, now, retention)
redis.call('PUBLISH', ARGV[7], ARGV[8] .. ':' .. member)
return {'ok', id}
