-- revoke: soft-revoke one active session of a user. Unknown, foreign,
-- revoked and expired sessions get the same answer. Arguments and reply:
-- revokeArgs and revokeReply in store/scripts.go.
local now = NOW
local v = redis.call('HGET', ACT, MEMBER)
if not v then return {S_NOT_FOUND} end
local h = split(v, HOT)
if h[F_USER_ID] ~= USER_ID or refusal(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE], now) then
  return {S_NOT_FOUND}
end

redis.call('HSET', REV, MEMBER, revocation(REASON)) -- first write: deny-oom
retire({MEMBER})
local purge = now + RETENTION
if RETENTION <= 0 then purge = now + 1 end
redis.call('ZADD', ALL, int(purge), MEMBER)
prune(now)
local retained = expire_user()
local id = event(EV_REVOKED, USER_ID, MEMBER, E_REASON, REASON)
expire_events(retained, now, RETENTION)
announce(ANNOUNCE, {MEMBER})
return reply{EVENT_ID = id}
