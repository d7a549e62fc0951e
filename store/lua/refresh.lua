-- refresh: rotate a bearer session's refresh token. The presented token is
-- named by its generation, hashed secret and hashed family. If it is the
-- current one, NEXT supersedes it and activity moves. If it is the one just
-- superseded, within the grace window the current one is handed out again
-- (its secret sealed with the presented one: the store never holds it
-- readable). Any other token of the session's family, the one just
-- superseded after the window or one superseded longer ago, is reuse
-- (RFC 9700 §4.14.2): the session is revoked as stolen (S_REUSED, then the
-- revocation's event id and the owner). A token whose family is not the
-- session's is S_NOT_FOUND, whether or not the session exists: a session's
-- id is public, its family secret is not. A session from before families
-- (no F_REFRESH_FAMILY) knows its current and previous tokens only, which
-- carry no family either. A genuine token of a session that is no longer
-- active is refused with the reason.
-- Arguments and reply: refreshArgs and refreshReply in store/scripts.go.
local v = redis.call('HGET', ACT, MEMBER)
local active = v ~= false
if not active then
  v = redis.call('HGET', RET, MEMBER)
  if not v then return {S_NOT_FOUND} end
end
local f = split(v)
if f[F_REFRESH_HASH] == '' then return {S_NOT_FOUND} end
local family = f[F_REFRESH_FAMILY]
if (FAMILY == '') ~= (family == '') then return {S_NOT_FOUND} end
if family ~= '' and not same(FAMILY, family) then return {S_NOT_FOUND} end
local gen = num(f[F_REFRESH_GEN])
local current = GENERATION == gen and same(PRESENTED, f[F_REFRESH_HASH])
local previous = GENERATION + 1 == gen and f[F_REFRESH_PREV] ~= '' and same(PRESENTED, f[F_REFRESH_PREV])
if not current and not previous and family == '' then return {S_NOT_FOUND} end

local why = refusal(f[F_EXPIRES], f[F_LAST_ACTIVITY], f[F_IDLE], NOW)
if not active then
  local rev = redis.call('HGET', REV, MEMBER)
  if rev or not why then return {S_REVOKED, rev or ''} end
end
if why then return {why} end

if previous and REFRESH_GRACE > 0 and NOW - num(f[F_REFRESH_AT]) <= REFRESH_GRACE then
  return reply{ROTATED = false, GENERATION = gen, SEALED = f[F_REFRESH_SEALED], SESSION = v}
end
if not current then -- superseded, whether just or long ago, or made up from one
  return {S_REUSED, revoke_now(MEMBER, f[F_USER_ID], REASON_REFRESH_REUSED, ANNOUNCE), f[F_USER_ID]}
end

f[F_REFRESH_PREV], f[F_REFRESH_HASH] = f[F_REFRESH_HASH], NEXT
f[F_REFRESH_GEN], f[F_REFRESH_SEALED], f[F_REFRESH_AT] = tostring(gen + 1), SEALED, NOW_MS
touched(f)
local nv = join(f)
redis.call('HSET', ACT, MEMBER, nv) -- first write: deny-oom
reindex(MEMBER, f)
prune(NOW)
expire_user()
announce(ANNOUNCE, {MEMBER}) -- caches elsewhere hold the superseded token's state
return reply{ROTATED = true, GENERATION = gen + 1, SEALED = '', SESSION = nv}
