-- provider: remember that an active session reached a provider. The set is
-- kept most recently used last and bounded; a repeat within the throttle
-- writes nothing. Arguments and reply: providerArgs and providerReply in
-- store/scripts.go.
local now = NOW
local v, refused = lookup(MEMBER, '', now)
if not v then return refused end
local f = split(v)

local list, present = {}, false
for p in string.gmatch(f[F_PROVIDERS] or '', '[^,]+') do
  if p == PROVIDER then present = true else list[#list + 1] = p end
end
if present and f[F_LAST_PROVIDER] == PROVIDER and now - num(f[F_LAST_PROVIDER_AT]) < THROTTLE then
  return reply{WRITTEN = false, FIRST = false, USER_ID = f[F_USER_ID], EVENT_ID = '', ACTOR = ''}
end
list[#list + 1] = PROVIDER
while #list > MAX_PROVIDERS do table.remove(list, 1) end

f[F_LAST_PROVIDER], f[F_LAST_PROVIDER_AT], f[F_PROVIDERS] = PROVIDER, NOW_MS, table.concat(list, ',')
local bad = unwritable(false)
if bad then return bad end
redis.call('HSET', ACT, MEMBER, join(f)) -- first write: deny-oom
-- In a support session, the operator reached the provider: the event names them.
local actor = f[F_IMPERSONATED_BY] or ''
local id = event(EV_PROVIDER_ACCESSED, f[F_USER_ID], MEMBER, E_PROVIDER, PROVIDER, E_ACTOR, actor)
prune(now)
expire_events(expire_user(), now, RETENTION)
return reply{WRITTEN = true, FIRST = not present, USER_ID = f[F_USER_ID], EVENT_ID = id, ACTOR = actor}
