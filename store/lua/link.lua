-- link: attach a refresh token id to an active session. Arguments and
-- reply: linkArgs and linkReply in store/scripts.go.
local now = NOW
local v, refused = lookup(MEMBER, '', now)
if not v then return refused end
local f = split(v)

local bad = unwritable(false)
if bad then return bad end
f[F_REFRESH_TOKEN] = REFRESH_TOKEN_ID
redis.call('HSET', ACT, MEMBER, join(f)) -- first write: deny-oom
local id = event(EV_REFRESH_LINKED, f[F_USER_ID], MEMBER, E_REFRESH_TOKEN, REFRESH_TOKEN_ID)
prune(now)
expire_events(expire_user(), now, RETENTION)
return reply{USER_ID = f[F_USER_ID], EVENT_ID = id}
