-- rotate: give an active session a new secret, keeping its id (renewal
-- after a privilege change; with REAUTHENTICATED, the credentials were just
-- checked again: the authentication time moves, and the level is AAL
-- unless that is empty). The old session token stops working; a
-- bearer session also gets a new refresh token of a new family
-- (REFRESH_FAMILY), and the tokens it held are forgotten without a grace
-- window: whoever held a pre-rotation token gets nothing, and cannot
-- revoke the session with it either (it is unknown, not reused).
-- Arguments and reply: rotateArgs and rotateReply in store/scripts.go.
local v, refused = lookup(MEMBER, '', NOW)
if not v then return refused end
local f = split(v)
if f[F_USER_ID] ~= USER_ID then return {S_NOT_FOUND} end -- another user's session
f[F_TOKEN_HASH] = TOKEN_HASH
local gen = num(f[F_REFRESH_GEN])
if f[F_REFRESH_HASH] ~= '' then -- a bearer session: its refresh token too
  gen = gen + 1
  f[F_REFRESH_HASH], f[F_REFRESH_GEN], f[F_REFRESH_AT] = REFRESH_HASH, tostring(gen), NOW_MS
  f[F_REFRESH_PREV], f[F_REFRESH_SEALED], f[F_REFRESH_FAMILY] = '', '', REFRESH_FAMILY
end
touched(f)
if REAUTHENTICATED then
  f[F_AUTH_AT] = NOW_MS
  if AAL ~= '' then f[F_AAL] = AAL end
end
local bad = unwritable(true, SEAL)
if bad then return bad end
local nv = join(f)
redis.call('HSET', ACT, MEMBER, nv) -- first write: deny-oom
if f[F_REFRESH_HASH] ~= '' then
  redis.call('HDEL', SEAL, MEMBER) -- the grace window's sealed secret, of a forgotten token
end
reindex(MEMBER, f)
prune(NOW)
expire_events(expire_user(), NOW, RETENTION) -- the trail, kept while a session is
-- A cache elsewhere may hold the old secret's hash: it must read again.
announce(ANNOUNCE, {MEMBER})
return reply{SESSION = nv, GENERATION = gen}
