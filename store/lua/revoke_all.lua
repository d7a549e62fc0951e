-- revoke_all: soft-revoke every active session of a user but one. Arguments
-- and reply: revokeAllArgs and revokeAllReply in store/scripts.go.
local now = NOW
-- This very call, run again after its reply was lost (go-redis resends a
-- command whose connection dropped): answered as its first run was, before
-- the victims are looked for, which would otherwise include a session
-- signed in between the two runs, and answer that one alone.
do
  local members, ids = revoked_by(CALL)
  if #members > 0 then return reply{REVOKED = members, EVENT_IDS = ids} end
end
local bad = unwritable(true)
if bad then return bad end
local rebuilt = reconcile(nil, true) -- read-only unless the index is damaged: then its writes are deny-oom ZADDs
local active = owned(USER_ID, redis.call('ZRANGEBYSCORE', IDX, '(' .. NOW_MS, '+inf'), true)
local victims = {}
for _, m in ipairs(active) do
  if m ~= EXCEPT then victims[#victims + 1] = m end
end
if #victims == 0 then
  if rebuilt then expire_user() end -- a rebuilt index expires like any other
  return reply{REVOKED = {}, EVENT_IDS = {}}
end

local value = revocation(REASON)
for i = 1, #victims, 500 do
  local pairs_ = {}
  for j = i, math.min(i + 499, #victims) do
    pairs_[#pairs_ + 1] = victims[j]
    pairs_[#pairs_ + 1] = value
  end
  redis.call('HSET', REV, unpack(pairs_)) -- the first is the first write: deny-oom
end
retire(victims, revoked_purge())
prune(now)
local retained = expire_user()
local ids = {}
for _, m in ipairs(victims) do
  ids[#ids + 1] = event(EV_REVOKED, USER_ID, m, E_REASON, REASON, E_ACTOR, ACTOR, E_CALL, CALL)
end
expire_events(retained, now, RETENTION)
announce(ANNOUNCE, victims)
return reply{REVOKED = victims, EVENT_IDS = ids}
