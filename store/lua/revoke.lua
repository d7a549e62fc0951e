-- revoke: soft-revoke one active session of a user. Unknown, foreign,
-- revoked and expired sessions get the same answer.
-- KEYS: 1 session, 2 idx, 3 all, 4 rev, 5 ev, 6 own
-- ARGV: 1 now, 2 member, 3 user id, 4 reason, 5 retention ms, 6 stream max, 7 channel, 8 tag
local now = tonumber(ARGV[1])
local member = ARGV[2]
local v = redis.call('GET', KEYS[1])
if not v then return {'nf'} end
if split(v, HOT)[8] ~= ARGV[3] then return {'nf'} end
local score = redis.call('ZSCORE', KEYS[2], member)
if not score or tonumber(score) <= now then return {'nf'} end

redis.call('HSET', KEYS[4], member, ARGV[1] .. '|' .. ARGV[4]) -- first write: deny-oom
redis.call('ZREM', KEYS[2], member)
local retention = tonumber(ARGV[5])
local purge = now + retention
if retention <= 0 then purge = now + 1 end
redis.call('PEXPIREAT', KEYS[1], int(purge))
redis.call('ZADD', KEYS[3], int(purge), member)
prune(KEYS[2], KEYS[3], KEYS[4], KEYS[6], now)
local retained = expire_user(KEYS[2], KEYS[3], KEYS[4], KEYS[6])
local id = redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[6], '*', 't', 'session_revoked', 'u', ARGV[3],
  's', member, 'at', ARGV[1], 'r', ARGV[4])
expire_events(KEYS[5], retained, now, retention)
redis.call('PUBLISH', ARGV[7], ARGV[8] .. ':' .. member)
return {'ok', id}
