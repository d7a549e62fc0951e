-- touch: authenticate (when a token hash is given) and record activity. It
-- writes nothing while the throttle holds and the address is unchanged.
-- With HOLD, an address change is reported (HELD) and nothing written, so
-- that the caller can locate the new address or decide on the change and
-- call again; with REVOKE, the caller has decided to end the session on
-- the change. Arguments and reply: touchArgs and touchReply in
-- store/scripts.go.
local now = NOW
if REVOKE then
  -- This very decision, run again after its reply was lost (go-redis
  -- resends a command whose connection dropped): answered as its first run
  -- was, from the trail entries that run wrote and the record it retired.
  local moved, revoked
  for _, e in ipairs(since(NOW)) do
    if e.f[E_CALL] == CALL and e.f[E_SESSION] == MEMBER then
      if e.f[E_TYPE] == EV_IP_CHANGED then moved = e elseif e.f[E_TYPE] == EV_REVOKED then revoked = e end
    end
  end
  local kept = revoked and redis.call('HGET', RET, MEMBER)
  if kept then
    local f = split(kept)
    local ids, previous, country = {}, f[F_LAST_IP], f[F_LOCATION_COUNTRY_CODE] or ''
    if previous == '' then previous = f[F_IP] end
    if moved then
      ids, previous, country = {moved.id}, moved.f[E_PREVIOUS_IP] or '', moved.f[E_PREVIOUS_COUNTRY] or ''
    end
    return reply{WRITTEN = moved ~= nil, IP_CHANGED = moved ~= nil, PREVIOUS_IP = previous, PREVIOUS_COUNTRY = country,
      SESSION = kept, EVENT_IDS = ids, HELD = false, REVOKED_EVENT = revoked.id}
  end
end
local v, refused = lookup(MEMBER, TOKEN_HASH, now)
if not v then return refused end
local h, rest = split(v, F_CREATED)

local current = h[F_LAST_IP]
if current == '' then current = h[F_IP] end
local changed = IP ~= '' and IP ~= current
local unchanged = reply{WRITTEN = false, IP_CHANGED = false, PREVIOUS_IP = '', PREVIOUS_COUNTRY = '',
  SESSION = v, EVENT_IDS = {}, HELD = false, REVOKED_EVENT = ''}
if not changed and not REVOKE and now - num(h[F_LAST_ACTIVITY]) < THROTTLE then return unchanged end
if changed and (HOLD or (FROM ~= '' and FROM ~= current)) then
  -- Nothing is recorded before the caller's decision: one that fails, and
  -- a request racing this one, find the change still to be made. A change
  -- decided from an address that another request has replaced since
  -- (FROM) is held again, to be decided from the one stored now.
  return reply{WRITTEN = false, IP_CHANGED = true, PREVIOUS_IP = current,
    PREVIOUS_COUNTRY = split(v)[F_LOCATION_COUNTRY_CODE] or '', SESSION = v, EVENT_IDS = {}, HELD = true,
    REVOKED_EVENT = ''}
end
-- move records in f, the whole session split, its use from IP: the
-- address, the count of changes and, when LOCATED, the location. It
-- returns the countries before and after.
local function move(f)
  local before = f[F_LOCATION_COUNTRY_CODE] or ''
  f[F_LAST_IP] = IP
  f[F_IP_CHANGES] = tostring(num(f[F_IP_CHANGES]) + 1)
  if LOCATED then
    f[F_LOCATION_LABEL], f[F_LOCATION_CITY], f[F_LOCATION_REGION] = LOCATION_LABEL, LOCATION_CITY, LOCATION_REGION
    f[F_LOCATION_COUNTRY], f[F_LOCATION_COUNTRY_CODE] = LOCATION_COUNTRY, LOCATION_COUNTRY_CODE
  end
  return before, f[F_LOCATION_COUNTRY_CODE] or ''
end
-- moved_event records f's move (see move) in the trail; in a support
-- session, actor (the operator) caused it.
local function moved_event(f, before, after, actor)
  return event(EV_IP_CHANGED, f[F_USER_ID], MEMBER, E_IP, IP, E_PREVIOUS_IP, current,
    E_COUNTRY, after, E_PREVIOUS_COUNTRY, before, E_ACTOR, actor, E_CALL, CALL)
end

if REVOKE then
  -- The caller ends the session on this address change: the change is
  -- recorded and the session revoked in one step, so that neither happens
  -- without the other. A change another request recorded meanwhile is not
  -- recorded twice, and the session is revoked all the same.
  local f = split(v)
  local actor = f[F_IMPERSONATED_BY] or ''
  local before, after = f[F_LOCATION_COUNTRY_CODE] or '', ''
  local ids = {}
  local bad = unwritable(true)
  if bad then return bad end
  if changed then
    before, after = move(f)
    redis.call('HSET', ACT, MEMBER, join(f)) -- first write: deny-oom, and then nothing is written
    ids[#ids + 1] = moved_event(f, before, after, actor)
  end
  local rid = revoke_now(MEMBER, f[F_USER_ID], REASON_IP_CHANGED, ANNOUNCE, actor, CALL)
  return reply{WRITTEN = changed, IP_CHANGED = changed, PREVIOUS_IP = current, PREVIOUS_COUNTRY = before,
    SESSION = join(f), EVENT_IDS = ids, HELD = false, REVOKED_EVENT = rid}
end

local prev_cc, cc = '', ''
local nv
local moves = true -- whether the session's deadline may move
if changed then
  -- The rare path: the whole session is split, so every field is by name.
  local f = split(v)
  touched(f)
  prev_cc, cc = move(f)
  h = f
  nv = join(f)
else
  -- Without an idle timeout the deadline is the expiry: it cannot move.
  moves = num(h[F_IDLE]) > 0
  touched(h)
  nv = join(h, rest)
end
-- The common write (no address change, no event) reaches only ACT and, as
-- the deadline moves, IDX, whose type ZSCORE checks. A session missing from
-- the index (lost by hand, or evicted under maxmemory) takes the full path
-- instead, which rebuilds it and sets every key's expiry: written by the
-- common write, an index made anew would have none. Any other write may
-- reach every key of the slot, each checked first.
local common = not changed and not ACTIVITY_EVENTS
if common and moves then
  local score = redis.pcall('ZSCORE', IDX, MEMBER)
  if type(score) == 'table' and score.err then return mistyped(IDX) or score end
  common = score ~= false
end
if not common then
  local bad = unwritable(changed) -- an address change is announced
  if bad then return bad end
end
-- First write, deny-oom. If the server is out of memory the session is still
-- valid: it is not refused, but nothing is recorded. An address change is
-- still reported (WRITTEN false), so that a policy acting on it fails
-- closed rather than serve the new address unseen.
local written = redis.pcall('HSET', ACT, MEMBER, nv)
if type(written) == 'table' and written.err then
  if not changed then return unchanged end
  return reply{WRITTEN = false, IP_CHANGED = true, PREVIOUS_IP = current, PREVIOUS_COUNTRY = prev_cc,
    SESSION = v, EVENT_IDS = {}, HELD = false, REVOKED_EVENT = ''}
end
if common then
  -- The common write: no event, and only this session's deadline moves,
  -- never earlier (with an idle timeout; else it stays). Each key holding
  -- it expires at the later of its expiry and that deadline: the owner
  -- records too (kept while their sessions are; without them a support
  -- session would count toward the limit, and colliding users' sessions
  -- would be each other's), and the audit trail the retention past it (as
  -- expire_user and expire_events keep them). The user's other expired
  -- sessions stay refused, by their timestamps, until the next login or
  -- sign-out retires them.
  if moves then
    reindex(MEMBER, h)
    local dl = int(deadline(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE]))
    for _, k in ipairs({ACT, IDX, DATA, OWN}) do redis.call('PEXPIREAT', k, dl, 'GT') end
    redis.call('PEXPIREAT', EV, int(dl + RETENTION), 'GT')
  end
  return reply{WRITTEN = true, IP_CHANGED = false, PREVIOUS_IP = current, PREVIOUS_COUNTRY = prev_cc,
    SESSION = nv, EVENT_IDS = {}, HELD = false, REVOKED_EVENT = ''}
end
reindex(MEMBER, h)
prune(now)
local retained = expire_user()

local ids = {}
-- In a support session, the operator caused the events: they name them.
-- The field is in the rare part, which only the address change has split.
local actor = (changed and h or split(nv))[F_IMPERSONATED_BY] or ''
if changed then ids[#ids + 1] = moved_event(h, prev_cc, cc, actor) end
if ACTIVITY_EVENTS then
  ids[#ids + 1] = event(EV_ACTIVITY, h[F_USER_ID], MEMBER, E_IP, changed and IP or current, E_ACTOR, actor)
end
-- The trail's expiry follows the deadlines, events or none (the common
-- write's PEXPIREAT GT, on a session missing from the index).
expire_events(retained, now, RETENTION)
-- Caches elsewhere hold the previous address: a request from it there
-- must be seen as the change it now is, not served undecided.
if changed then announce(ANNOUNCE, {MEMBER}) end
return reply{WRITTEN = true, IP_CHANGED = changed, PREVIOUS_IP = current, PREVIOUS_COUNTRY = prev_cc,
  SESSION = nv, EVENT_IDS = ids, HELD = false, REVOKED_EVENT = ''}
