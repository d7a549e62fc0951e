-- revoke: soft-revoke one active session of a user. Unknown, foreign,
-- revoked and expired sessions get the same answer. Arguments and reply:
-- revokeArgs and revokeReply in store/scripts.go.
local v = redis.call('HGET', ACT, MEMBER)
if not v then
  -- Revoked by this very call, sent again after its reply was lost?
  if redis.call('HEXISTS', REV, MEMBER) == 1 then
    local members, ids = revoked_by(CALL)
    for i, m in ipairs(members) do
      if m == MEMBER then return reply{EVENT_ID = ids[i]} end
    end
  end
  return {S_NOT_FOUND}
end
local h = split(v, HOT)
if h[F_USER_ID] ~= USER_ID or refusal(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE], NOW) then
  return {S_NOT_FOUND}
end
local bad = unwritable(true)
if bad then return bad end
return reply{EVENT_ID = revoke_now(MEMBER, USER_ID, REASON, ANNOUNCE, ACTOR, CALL)}
