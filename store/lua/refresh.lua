-- refresh: rotate a bearer session's refresh token. The presented token is
-- named by its generation, hashed secret and hashed family. If it is the
-- current one, NEXT supersedes it and activity moves. If it is the one just
-- superseded, within the grace window the current one is handed out again
-- (its secret sealed with the presented one, kept in SEAL for the window
-- only: the store never holds it readable, and once the window has passed
-- the superseded token and a copy of Redis together do not give it either).
-- Any other token of the session's family, the one just
-- superseded after the window or one superseded longer ago, is reuse
-- (RFC 9700 §4.14.2): the session is revoked as stolen (S_REUSED, then the
-- revocation's event id and the owner). A token whose family is not the
-- session's is S_NOT_FOUND, whether or not the session exists: a session's
-- id is public, its family secret is not. A session from before families
-- (no F_REFRESH_FAMILY) knows its current and previous tokens only, which
-- carry no family either. A genuine token of a session that is no longer
-- active is refused with the reason.
-- Arguments and reply: refreshArgs and refreshReply in store/scripts.go.
-- sealed_for returns member's current secret as sealed when it was
-- rotated to generation gen, while the grace window of that rotation lasts.
local function sealed_for(member, gen)
  local e = redis.call('HGET', SEAL, member)
  if not e then return nil end
  local until_ms, g, sealed = string.match(e, '^(%d+)|(%d+)|(.*)$')
  if num(g) ~= gen or num(until_ms) < NOW then return nil end
  return sealed
end

-- keep_sealed keeps SEALED, member's new secret sealed with the token it
-- supersedes, for the grace window (none without one), and drops the
-- user's entries whose window has passed. Redis drops the whole key a
-- second after the last window it was written for ends, so an entry of a
-- session never refreshed again outlives its window by at most one more.
local function keep_sealed(member, gen)
  local entries = redis.call('HGETALL', SEAL)
  for i = 1, #entries, 2 do
    if entries[i] ~= member and num(string.match(entries[i + 1], '^(%d+)|')) < NOW then
      redis.call('HDEL', SEAL, entries[i])
    end
  end
  if REFRESH_GRACE <= 0 then
    redis.call('HDEL', SEAL, member)
    return
  end
  redis.call('HSET', SEAL, member, int(NOW + REFRESH_GRACE) .. '|' .. int(gen) .. '|' .. SEALED)
  redis.call('PEXPIRE', SEAL, int(REFRESH_GRACE + 1000))
end

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
  if rev then
    -- Revoked for reuse by this very call, sent again after its reply was
    -- lost? Answered as the first run was, so that the reuse is reported
    -- (and counted, and handed to the hooks) once.
    local members, ids = revoked_by(CALL)
    for i, m in ipairs(members) do
      if m == MEMBER then return {S_REUSED, ids[i], f[F_USER_ID]} end
    end
  end
  if rev or not why then return {S_REVOKED, rev or ''} end
end
if why then return {why} end

if previous and REFRESH_GRACE > 0 and NOW - num(f[F_REFRESH_AT]) <= REFRESH_GRACE then
  -- The record holds the sealed secret only as builds before SEAL wrote it.
  local sealed = sealed_for(MEMBER, gen) or f[F_REFRESH_SEALED]
  -- Gone while this clock still counts the window: Redis's clock, which
  -- expires SEAL, runs ahead. Refused as unknown, not as reuse.
  if sealed == '' then return {S_NOT_FOUND} end
  return reply{ROTATED = false, GENERATION = gen, SEALED = sealed, SESSION = v}
end
local bad = unwritable(true, SEAL)
if bad then return bad end
if not current then -- superseded, whether just or long ago, or made up from one
  return {S_REUSED, revoke_now(MEMBER, f[F_USER_ID], REASON_REFRESH_REUSED, ANNOUNCE, '', CALL), f[F_USER_ID]}
end

f[F_REFRESH_PREV], f[F_REFRESH_HASH] = f[F_REFRESH_HASH], NEXT
f[F_REFRESH_GEN], f[F_REFRESH_SEALED], f[F_REFRESH_AT] = tostring(gen + 1), '', NOW_MS
touched(f)
local nv = join(f)
redis.call('HSET', ACT, MEMBER, nv) -- first write: deny-oom
keep_sealed(MEMBER, gen + 1)
reindex(MEMBER, f)
prune(NOW)
expire_events(expire_user(), NOW, RETENTION) -- the trail, kept while a session is
announce(ANNOUNCE, {MEMBER}) -- caches elsewhere hold the superseded token's state
return reply{ROTATED = true, GENERATION = gen + 1, SEALED = '', SESSION = nv}
