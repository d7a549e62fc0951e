-- create: store a new session, evicting the user's sessions that expire first
-- while the user is at their limit. Arguments and reply: createArgs and
-- createReply in store/scripts.go.
local now = NOW

-- device names a device label among the recent sign-ins the index keeps
-- (see below): by a 48-bit print, 14 bytes where most labels take 16 to
-- 24, so a one-session user's index fits a 64-byte allocation rather than
-- an 80-byte one, and the index holds no label in clear.
local function device(label) return 'd:' .. string.sub(redis.sha1hex(label), 1, 12) end

-- A user with nothing stored (a first sign-in, or the first after all of
-- it expired): one EXISTS answers every read below, and the writes are
-- those the general path makes for a user without sessions, history,
-- trail or override (TestFirstLoginWritesWhatAnyLoginWrites).
if redis.call('EXISTS', ACT, IDX, RET, ALL, REV, OWN, EV, LIM, SEEN, DATA) == 0 then
  local h = split(VALUE, HOT)
  local dl = int(deadline(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE]))
  redis.call('HSET', ACT, MEMBER, VALUE) -- first write: deny-oom
  redis.call('PEXPIREAT', ACT, dl)
  if IMPERSONATED_BY ~= '' then
    redis.call('ZADD', IDX, dl, MEMBER)
    redis.call('PEXPIREAT', IDX, dl)
    redis.call('HSET', OWN, MEMBER, USER_ID .. IMP_SUFFIX)
    redis.call('PEXPIREAT', OWN, dl)
  elseif SEEN_WINDOW > 0 then
    local at = int(-now)
    if COUNTRY ~= '' then
      redis.call('ZADD', IDX, dl, MEMBER, at, device(DEVICE), at, 'c:' .. COUNTRY)
    else
      redis.call('ZADD', IDX, dl, MEMBER, at, device(DEVICE))
    end
    redis.call('PEXPIREAT', IDX, int(math.max(tonumber(dl), now + SEEN_WINDOW)))
  else
    redis.call('ZADD', IDX, dl, MEMBER)
    redis.call('PEXPIREAT', IDX, dl)
  end
  last_ms, last_seq, trail = -1, 0, false -- no trail yet
  local id = event(EV_CREATED, USER_ID, MEMBER, E_IP, IP, E_DEVICE, DEVICE, E_COUNTRY, COUNTRY, E_ACTOR, IMPERSONATED_BY)
  expire_events(tonumber(dl) + RETENTION, now, RETENTION)
  return reply{NEW_DEVICE = false, NEW_COUNTRY = false, EVICTED = {}, EVENT_IDS = {id}}
end

-- This very sign-in, stored already: the client sent the script again
-- after losing its reply (go-redis resends a command whose connection
-- dropped). VALUE holds the new token's hash, so only a second run of the
-- same call matches. It is answered as the first run was, from the
-- trail, rather than as an id in use: the Manager would then store another
-- session, and this one, whose token no one holds, would count toward the
-- limit until it expired.
if redis.call('HGET', ACT, MEMBER) == VALUE then
  local evicted, ids, created, nd, nc = {}, {}, '', false, false
  for _, e in ipairs(since(NOW)) do
    local f = e.f
    if f[E_TYPE] == EV_EVICTED and f[E_BY] == MEMBER then
      evicted[#evicted + 1], ids[#ids + 1] = f[E_SESSION], e.id
    elseif f[E_TYPE] == EV_CREATED and f[E_SESSION] == MEMBER then
      created, nd, nc = e.id, f[E_NEW_DEVICE] == '1', f[E_NEW_COUNTRY] == '1'
    end
  end
  ids[#ids + 1] = created
  return reply{NEW_DEVICE = nd, NEW_COUNTRY = nc, EVICTED = evicted, EVENT_IDS = ids}
end
-- Every key the rest may reach holds what the store writes there.
local bad = unwritable(true) -- an eviction is announced
if bad then return bad end
if redis.call('HEXISTS', RET, MEMBER) == 1 then return {S_DUPLICATE} end
local limit = LIMIT
local override = redis.call('GET', LIM)
if override then
  -- Written by SetLimit as an integer; anything else was set by hand. It is
  -- refused here, before the first write, never half-applied.
  limit = tonumber(override)
  if not limit or limit ~= math.floor(limit) or (limit < 1 and limit ~= -1) then
    return redis.error_reply('sessionkit: the per-user limit override is not a limit: ' .. string.sub(override, 1, 32))
  end
end

if IMPERSONATED_BY ~= '' then limit = -1 end -- never counted, never evicting
if REJECT and limit >= 1 then
  -- Counted before anything is written: a refused sign-in writes nothing
  -- (but the repair of a damaged index, which is not the sign-in's).
  local rebuilt = reconcile(nil, true)
  local active = #owned(USER_ID, redis.call('ZRANGEBYSCORE', IDX, '(' .. NOW_MS, '+inf'))
  if active >= limit then
    if rebuilt then expire_user() end -- a rebuilt index expires like any other
    return {S_LIMIT_REACHED, active, limit}
  end
end

-- Owner records (OWN) are kept only while some are needed: once two users'
-- tags collide in this slot, or for an impersonation session (see owned).
-- Until then every active member is one user's, and none has a record.
-- Entering that state records the owner of every active member first.
local active_before = redis.call('HLEN', ACT)
local shared = redis.call('EXISTS', OWN) == 1
local backfill = false
if not shared then
  backfill = IMPERSONATED_BY ~= ''
  if not backfill and active_before > 0 then
    local _, any = unpack(redis.call('HRANDFIELD', ACT, 1, 'WITHVALUES'))
    backfill = any ~= nil and split(any, HOT)[F_USER_ID] ~= USER_ID
  end
end

local h = split(VALUE, HOT)
if redis.call('HSETNX', ACT, MEMBER, VALUE) == 0 then return {S_DUPLICATE} end -- first write: deny-oom
if backfill then
  local kv = redis.call('HGETALL', ACT)
  for i = 1, #kv, 2 do
    if kv[i] ~= MEMBER then
      local f = split(kv[i + 1])
      local o = f[F_USER_ID]
      if f[F_IMPERSONATED_BY] ~= '' then o = o .. IMP_SUFFIX end
      redis.call('HSET', OWN, kv[i], o)
    end
  end
  shared = true
end
local indexed = prune(now, MEMBER, true) -- thorough: the index picks whom the limit evicts
local dl = deadline(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE])
if override then redis.call('PEXPIRE', LIM, LIMIT_TTL) end

local evicted = {}
if limit >= 1 and indexed > 0 then
  local mine = owned(USER_ID)
  while #mine >= limit do
    local m = table.remove(mine, 1)
    redis.call('HSET', REV, m, revocation(REASON_LIMIT_EXCEEDED))
    evicted[#evicted + 1] = m
  end
  if #evicted > 0 then retire(evicted, revoked_purge()) end
end
redis.call('ZADD', IDX, int(dl), MEMBER)
if IMPERSONATED_BY ~= '' then
  redis.call('HSET', OWN, MEMBER, USER_ID .. IMP_SUFFIX)
elseif shared then
  redis.call('HSET', OWN, MEMBER, USER_ID)
end
local first = nil -- the only session, and no data: expire_user need not look
if indexed == 0 and active_before == 0 then first = int(dl) end
local retained = expire_user(first)

-- New-device and new-country signals, from a bounded recent history: the
-- index also holds the devices (by print: device) and countries ('c:' ..)
-- signed in from within the window, the 64 most recent, each scored by
-- minus the last time (ms), below every session's deadline. A user with
-- one session then holds one key fewer (each costs about 130 bytes of
-- Redis's own). Earlier releases kept them in SEEN, scored by the time
-- and the labels in clear: moved here at the user's next sign-in.
local nd, nc = false, false
if SEEN_WINDOW > 0 and IMPERSONATED_BY == '' then
  local earlier = redis.pcall('ZRANGE', SEEN, 0, -1, 'WITHSCORES')
  if earlier.err then -- not a history (written by hand): the script has written already
    redis.call('DEL', SEEN)
    earlier = {}
  end
  for i = 1, #earlier, 2 do
    local m = earlier[i]
    if string.sub(m, 1, 2) == 'd:' then m = device(string.sub(m, 3)) end
    redis.call('ZADD', IDX, 'LT', int(-tonumber(earlier[i + 1])), m)
  end
  if #earlier > 0 then redis.call('DEL', SEEN) end
  redis.call('ZREMRANGEBYSCORE', IDX, int(SEEN_WINDOW - now), '(0')
  local d, c = device(DEVICE), 'c:' .. COUNTRY
  local device_seen, country_seen = unpack(redis.call('ZMSCORE', IDX, d, c))
  local n = redis.call('ZCOUNT', IDX, '-inf', '(0')
  if n > 0 then -- a history to compare with
    nd = not device_seen
    nc = COUNTRY ~= '' and not country_seen
  end
  local at = int(-now)
  if COUNTRY ~= '' then
    n = n + redis.call('ZADD', IDX, at, d, at, c)
  else
    n = n + redis.call('ZADD', IDX, at, d)
  end
  if n > 64 then redis.call('ZREMRANGEBYRANK', IDX, 64, n - 1) end
  redis.call('PEXPIREAT', IDX, int(now + SEEN_WINDOW), 'GT')
end

local ids = {}
for _, m in ipairs(evicted) do
  ids[#ids + 1] = event(EV_EVICTED, USER_ID, m, E_REASON, REASON_LIMIT_EXCEEDED, E_BY, MEMBER)
end
ids[#ids + 1] = event(EV_CREATED, USER_ID, MEMBER, E_IP, IP, E_DEVICE, DEVICE, E_COUNTRY, COUNTRY,
  E_NEW_DEVICE, nd and '1' or '', E_NEW_COUNTRY, nc and '1' or '', E_ACTOR, IMPERSONATED_BY)
expire_events(retained, now, RETENTION)
announce(ANNOUNCE, evicted)
return reply{NEW_DEVICE = nd, NEW_COUNTRY = nc, EVICTED = evicted, EVENT_IDS = ids}
