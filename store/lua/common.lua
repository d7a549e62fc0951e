-- Shared helpers, after the generated names (see store/contract.go: the
-- keys ACT..SEEN, the header NOW..CHANNEL, the stored fields F_*, the audit
-- trail's E_*, EV_* and REASON_*, the statuses S_*) and before the
-- script's own arguments and its reply function. Rules every script keeps:
--  * all keys arrive in KEYS and share one hash tag (one Cluster slot);
--  * everything is checked before the first write, and the first write is a
--    deny-oom command (HSET/ZADD/LPUSH), so an out-of-memory server refuses the
--    script before it changes anything (Redis has no rollback);
--  * every key written gets an absolute expiry (PEXPIREAT) in the same script.
--
-- A session is one string (a field of ACT or RET): its fields joined by SEP,
-- which no stored value contains, in F_* order. The fields the hot path
-- needs come first (F_VERSION..F_USER_ID, HOT of them), so it splits only those.

local function int(n) return string.format('%d', n) end

-- num reads a stored number; an empty field is 0.
local function num(s) return tonumber(s) or 0 end

-- split returns the first n fields of s (all when n is nil, F_COUNT of
-- them: fields a record predates read as '') and the unsplit remainder
-- after them (nil when there is none).
local function split(s, n)
  local out, i = {}, 1
  while not n or #out < n do
    local j = string.find(s, SEP, i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      if not n then
        for k = #out + 1, F_COUNT do out[k] = '' end
      end
      return out, nil
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
  return out, string.sub(s, i)
end

-- join is split's inverse. Without rest it leaves out the trailing empty
-- fields, as codec.go's encodeSession does: they read as '' all the same.
local function join(head, rest)
  if rest then return table.concat(head, SEP) .. SEP .. rest end
  local n = #head
  while n > HOT and head[n] == '' do n = n - 1 end
  return table.concat(head, SEP, 1, n)
end

-- refusal returns the status refusing a stored session at now by its
-- timestamps (S_EXPIRED or S_IDLE), or nil. ea: expires ms, la: last activity ms, it: idle ms.
local function refusal(ea, la, it, now)
  if now >= num(ea) then return S_EXPIRED end
  local idle = num(it)
  if idle > 0 and now >= num(la) + idle then return S_IDLE end
  return nil
end

-- deadline is when a session with these timestamps stops being valid.
local function deadline(ea, la, it)
  local d = num(ea)
  local idle = num(it)
  if idle > 0 and num(la) + idle < d then d = num(la) + idle end
  return d
end

-- reindex moves member's score in the index to the deadline its fields f
-- give. Its purge is set when it is retired (see retire), so only retained
-- sessions are in ALL.
local function reindex(member, f)
  redis.call('ZADD', IDX, int(deadline(f[F_EXPIRES], f[F_LAST_ACTIVITY], f[F_IDLE])), member)
end

-- NOW_MS is NOW as written into records and events.
local NOW_MS = int(NOW)

-- mistyped returns an error reply when one of keys holds another type than
-- the store writes there (set by hand, or by another app sharing the key
-- prefix), nil otherwise. A script asks before its first write about each
-- key it may reach after it: a command failing on such a key then would
-- leave the change half-applied, as Redis has no rollback, and keys
-- written without their expiry. ACT is read before any write, LIM where it
-- is read, and EV and SEEN (of earlier layouts too) are replaced where
-- they are written, so none of them is asked about.
local function mistyped(...)
  for i = 1, select('#', ...) do
    local k = select(i, ...)
    local t = redis.call('TYPE', k).ok
    local want = (k == IDX or k == ALL) and 'zset' or 'hash'
    if t ~= 'none' and t ~= want then
      return redis.error_reply('sessionkit: ' .. k .. ' holds a ' .. t .. ', not a ' .. want ..
        ' (set by hand, or another app uses the key prefix): nothing was written')
    end
  end
  return nil
end

-- unwritable returns an error reply when a write could fail after its first
-- write, nil otherwise: a key it may reach holding another type (mistyped:
-- the keys of a script that retires, prunes or expires the user's sessions,
-- and more), or, when the write announces, an announcement this Redis user
-- may not publish on CHANNEL (an ACL without PUBLISH, or without the
-- channel), which scripts make last. (An in-memory server for development
-- may have no ACLs, and no redis.acl_check_cmd.)
local function unwritable(announces, ...)
  if announces and redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', CHANNEL, '') then
    return redis.error_reply('sessionkit: this Redis user may not PUBLISH on ' .. CHANNEL ..
      ', where the store announces revocations (see operations.md, The ACL user): nothing was written')
  end
  return mistyped(IDX, RET, ALL, REV, OWN, DATA, ...)
end

-- touched records activity at NOW in the split fields f (F_CREATED among
-- them). A record leaves its creation time empty while it is the last
-- activity (codec.go's encodeSession), so it is written out first.
local function touched(f)
  if (f[F_CREATED] or '') == '' then f[F_CREATED] = f[F_LAST_ACTIVITY] end
  f[F_LAST_ACTIVITY] = NOW_MS
end

-- reconcile rebuilds the index from the active sessions if the two
-- disagree (the index was lost or changed by hand): the index decides
-- evictions and expiry, so it must list exactly the active sessions. It
-- compares counts, and with thorough the members too: a stray member and a
-- missing one together keep the counts equal. That costs O(the user's
-- sessions), so only the scripts whose outcome the index decides (limits
-- and sign-out-everywhere) ask for it; any other write rebuilds on a count
-- mismatch. skip (or nil) is a member just written to ACT and not yet
-- indexed. It reports whether it wrote, and how many members the index
-- holds.
local function reconcile(skip, thorough)
  local expected = redis.call('HLEN', ACT)
  if skip then expected = expected - 1 end
  local agree = expected == redis.call('ZCOUNT', IDX, 0, '+inf')
  if agree and (expected == 0 or not thorough) then return false, expected end
  if agree then
    local members = redis.call('HKEYS', ACT)
    local indexed = 0
    for i = 1, #members, 500 do -- unpack has a stack limit
      local last = math.min(i + 499, #members)
      local scores = redis.call('ZMSCORE', IDX, unpack(members, i, last))
      for j = i, last do
        if scores[j - i + 1] and members[j] ~= skip then indexed = indexed + 1 end
      end
    end
    if indexed == expected then return false, expected end
  end
  local kv = redis.call('HGETALL', ACT)
  local live = {}
  for i = 1, #kv, 2 do
    local m = kv[i]
    if m ~= skip then
      local h = split(kv[i + 1], F_IDLE)
      redis.call('ZADD', IDX, int(deadline(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE])), m)
      live[m] = true
    end
  end
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', IDX, 0, '+inf')) do
    if not live[m] then redis.call('ZREM', IDX, m) end
  end
  return true, expected
end

-- retained_moved records that this script added members to the retained
-- sessions or purged some: only then can their keys' expiry move.
local retained_moved = false

-- retire moves active members to the retained sessions and out of the
-- index, to be purged at purge (ms): for a revocation, revoked_purge();
-- without it, for an expiry, RETENTION after the deadline the index holds
-- for each.
local function retire(members, purge)
  retained_moved = true
  for i = 1, #members, 500 do -- unpack has a stack limit
    local last = math.min(i + 499, #members)
    local values = redis.call('HMGET', ACT, unpack(members, i, last))
    local scores = purge or redis.call('ZMSCORE', IDX, unpack(members, i, last))
    local pairs_, purges = {}, {}
    for j = i, last do
      local v = values[j - i + 1]
      if v then
        pairs_[#pairs_ + 1] = members[j]
        pairs_[#pairs_ + 1] = v
        local at = purge
        if not at then
          local dl = scores[j - i + 1]
          at = (dl and tonumber(dl) or NOW) + RETENTION
        end
        purges[#purges + 1] = int(at)
        purges[#purges + 1] = members[j]
      end
    end
    if #pairs_ > 0 then
      redis.call('HSET', RET, unpack(pairs_))
      redis.call('ZADD', ALL, unpack(purges))
    end
    redis.call('HDEL', ACT, unpack(members, i, last))
    redis.call('ZREM', IDX, unpack(members, i, last))
    redis.call('HDEL', DATA, unpack(members, i, last)) -- a session's data goes with it
  end
end

-- revoked_purge is when a session revoked now is purged: RETENTION after
-- its revocation, whatever deadline it had (with no retention, at once).
local function revoked_purge()
  if RETENTION <= 0 then return NOW + 1 end
  return NOW + RETENTION
end

-- prune retires expired sessions and forgets sessions past retention
-- (their revocation record and owner too). skip: as for reconcile. It
-- returns how many members the index holds after it.
local function prune(now, skip, thorough)
  local _, indexed = reconcile(skip, thorough)
  if indexed > 0 then
    local expired = redis.call('ZRANGEBYSCORE', IDX, 0, now, 'LIMIT', 0, 500)
    if #expired > 0 then
      retire(expired)
      indexed = indexed - #expired
    end
  end
  local gone = redis.call('ZRANGEBYSCORE', ALL, '-inf', now, 'LIMIT', 0, 500)
  if #gone > 0 then
    retained_moved = true
    redis.call('HDEL', RET, unpack(gone))
    redis.call('HDEL', REV, unpack(gone))
    redis.call('HDEL', OWN, unpack(gone))
    redis.call('ZREM', ALL, unpack(gone))
  end
  return indexed
end

-- expire_user sets each per-user key to expire with its last member, and
-- the index no earlier than its newest sign-in leaves the new-sign-in
-- window (the index keeps those too: see create.lua). It returns until
-- when a session is kept for the audit: the last purge, or RETENTION after
-- the last deadline (0 when there is neither). only (or nil) is the
-- deadline of the one member the index holds, one that has no data: a
-- user's first session.
local function expire_user(only)
  local active = 0
  local top = {nil, only}
  if not only then top = redis.call('ZRANGE', IDX, -1, -1, 'WITHSCORES') end
  if top[2] and tonumber(top[2]) > 0 then
    active = tonumber(top[2])
    redis.call('PEXPIREAT', ACT, top[2])
    if not only then redis.call('PEXPIREAT', DATA, top[2]) end
  else
    redis.call('DEL', DATA) -- no active session: no data
  end
  local indexed_until = active
  local _, newest = unpack(redis.call('ZRANGE', IDX, 0, 0, 'WITHSCORES'))
  if newest and tonumber(newest) < 0 then
    indexed_until = math.max(indexed_until, SEEN_WINDOW - tonumber(newest))
  end
  if indexed_until > 0 then redis.call('PEXPIREAT', IDX, int(indexed_until)) end
  local retained = 0
  top = redis.call('ZRANGE', ALL, -1, -1, 'WITHSCORES')
  if top[2] then
    retained = tonumber(top[2])
    if retained_moved then
      for _, k in ipairs({ALL, RET, REV}) do redis.call('PEXPIREAT', k, top[2]) end
    end
  end
  -- Owner records are kept for active and retained members alike.
  local owners = math.max(active, retained)
  if owners > 0 then redis.call('PEXPIREAT', OWN, int(owners)) end
  if active > 0 then return math.max(retained, active + RETENTION) end
  return retained
end

-- owned returns the active members of uid, soonest deadline first. Users
-- share these keys only if their 60-bit tags collide; then every active
-- member has an owner record (see create.lua). A member without one counts
-- as uid's: no slot shared yet, or the hash lost, so revocation still
-- reaches it.
-- An impersonation session's owner record is the user id and IMP_SUFFIX:
-- with with_imp false (the limit) it is not the user's to count or evict.
local function owned(uid, members, with_imp)
  members = members or redis.call('ZRANGEBYSCORE', IDX, 0, '+inf')
  if #members == 0 then return {} end
  local mine = {}
  for i = 1, #members, 500 do -- unpack has a stack limit
    local last = math.min(i + 499, #members)
    local owners = redis.call('HMGET', OWN, unpack(members, i, last))
    for j = i, last do
      local o = owners[j - i + 1]
      if not o or o == uid or (with_imp and o == uid .. IMP_SUFFIX) then mine[#mine + 1] = members[j] end
    end
  end
  return mine
end

-- expire_events keeps the audit trail while any session is retained, and at
-- least retention past now.
local function expire_events(retained_until, now, retention)
  local t = now + retention
  if retained_until > t then t = retained_until end
  redis.call('PEXPIREAT', EV, int(t))
end

-- lookup returns member's value while the session is active, else nil and
-- the reply refusing it. With a token hash (not ''), a hash that differs is
-- answered as unknown. Comparing digests of the two hashes takes time
-- independent of where they differ (the double-hashing defence), without a
-- Lua byte loop.
local function lookup(member, hash, now)
  local v = redis.call('HGET', ACT, member)
  local retained = not v
  if retained then
    v = redis.call('HGET', RET, member)
    if not v then return nil, {S_NOT_FOUND} end
  end
  local h = split(v, HOT)
  if hash ~= '' then
    -- Stored: the hash's text, or its first 22 characters (codec.go).
    local stored = h[F_TOKEN_HASH]
    if (#stored ~= 22 and #stored ~= 43) or redis.sha1hex(stored) ~= redis.sha1hex(string.sub(hash, 1, #stored)) then
      return nil, {S_NOT_FOUND}
    end
  end
  local why = refusal(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE], now)
  if why then return nil, {why} end
  if retained then return nil, {S_REVOKED, redis.call('HGET', REV, member) or ''} end
  return v
end

-- The audit trail is a list, newest first. An entry is its id, then the
-- E_* names and values of its non-empty fields, joined by SEP. Ids are
-- "<ms>-<seq>", ordered as a stream's: ms is NOW, or the newest entry's if
-- that is later (another instance's clock ahead of this one), and seq
-- counts up within one ms. An entry names its owner by a 64-bit print of
-- the user id (USER_PRINT: users share a trail only if their tags collide,
-- and then the print tells them apart), and leaves out E_AT when it is the
-- id's ms.
--
-- A trail of one entry is a string, which costs about 100 bytes less than
-- a list of one (most users have one session and few events); the second
-- entry turns it into a list, newest first. trail is what EV holds:
-- false (nothing), 'string' or 'list'; nil until event first looks.
local last_ms, last_seq, trail
local prints = {}

local function user_print(uid)
  local p = prints[uid]
  if not p then
    p = string.sub(redis.sha1hex(uid), 1, 16)
    prints[uid] = p
  end
  return p
end

-- event appends an entry to the user's audit trail and returns its id:
-- kind is an EV_* type, then E_* name and value pairs beyond the type,
-- owner, session and time every entry has. Empty values are left out.
local function event(kind, uid, member, ...)
  if not last_ms then
    last_ms, last_seq = -1, 0
    -- One command on the common paths: LINDEX reads a list's head, and
    -- fails only on another type, which GET reads if it is a string.
    local head = redis.pcall('LINDEX', EV, 0)
    trail = head and 'list'
    if type(head) == 'table' and head.err then
      head, trail = redis.pcall('GET', EV), 'string'
      if type(head) == 'table' and head.err then
        -- Neither: not a trail, and one no read could use (written by
        -- hand). The script has written already, so failing now would
        -- leave its writes without their event: it starts a new trail.
        redis.call('DEL', EV)
        head, trail = false, false
      end
    end
    if head then
      local ms, seq = string.match(head, '^(%d+)%-(%d+)')
      if ms then last_ms, last_seq = tonumber(ms), tonumber(seq) end
    end
  end
  if NOW > last_ms then last_ms, last_seq = NOW, 0 else last_seq = last_seq + 1 end
  local id = int(last_ms) .. '-' .. int(last_seq)
  local parts = {id, E_TYPE, kind, E_USER, user_print(uid), E_SESSION, member}
  if last_ms ~= NOW then
    parts[#parts + 1] = E_AT
    parts[#parts + 1] = NOW_MS
  end
  local extra = {...}
  for i = 1, #extra, 2 do
    local v = extra[i + 1]
    if v ~= '' then
      if string.find(v, SEP, 1, true) then v = string.gsub(v, SEP, '') end
      parts[#parts + 1] = extra[i]
      parts[#parts + 1] = v
    end
  end
  local entry = table.concat(parts, SEP)
  if not trail or (trail == 'string' and STREAM_MAX == 1) then
    redis.call('SET', EV, entry, 'KEEPTTL')
    trail = 'string'
  elseif trail == 'string' then
    local first = redis.call('GET', EV)
    redis.call('DEL', EV)
    redis.call('RPUSH', EV, entry, first)
    trail = 'list'
  elseif redis.call('LPUSH', EV, entry) > STREAM_MAX then
    redis.call('LTRIM', EV, 0, STREAM_MAX - 1)
  end
  return id
end

-- announce tells every instance's cache that members stopped being valid.
-- head is the announcement's start for this user's slot (see internal/announce).
local function announce(head, members)
  if #members > 0 then redis.call('PUBLISH', CHANNEL, head .. table.concat(members, ANNOUNCE_SEP)) end
end

-- same compares two secrets' hashes in time independent of where they
-- differ (the double-hashing defence).
local function same(a, b) return redis.sha1hex(a) == redis.sha1hex(b) end

-- revoke_now soft-revokes an active member for reason and returns the
-- event id (see revoke.lua, whose whole work this is).
local revocation
local function revoke_now(member, uid, reason, head, actor, call)
  redis.call('HSET', REV, member, revocation(reason)) -- deny-oom
  retire({member}, revoked_purge())
  prune(NOW)
  local retained = expire_user()
  local id = event(EV_REVOKED, uid, member, E_REASON, reason, E_ACTOR, actor or '', E_CALL, call or '')
  expire_events(retained, NOW, RETENTION)
  announce(head, {member})
  return id
end

-- revocation is a REV record: when and why.
revocation = function(reason) return NOW_MS .. REV_SEP .. reason end

-- since returns the trail's entries whose id's time is t (ms) or later,
-- oldest first, each read into its id and its fields by E_* name (f). A
-- script run a second time for one call (go-redis resends a command whose
-- connection dropped before the reply came) runs with the first run's NOW,
-- and every entry that run wrote has an id at NOW or later (see event), so
-- since(NOW) finds them all, however many, while the trail keeps them
-- (STREAM_MAX): it is how such a run answers as the first would have. The
-- trail is newest first, so it reads only the entries since t, and in the
-- common case (no entry at NOW yet) one page of 8.
local function since(t)
  local out, from, size = {}, 0, 8
  while true do
    local page = redis.pcall('LRANGE', EV, from, from + size - 1)
    if page.err then
      page = redis.pcall('GET', EV)
      -- Not a trail (written by hand): nothing to find; event() replaces it.
      if type(page) ~= 'string' or from > 0 then page = {} else page = {page} end
    end
    for _, entry in ipairs(page) do
      local ms = string.match(entry, '^(%d+)%-')
      if not ms or tonumber(ms) < t then -- older (or not an entry): done
        page = {}
        break
      end
      local e, name = {f = {}}, nil
      for v in string.gmatch(entry, '[^' .. SEP .. ']+') do
        if not e.id then e.id = v elseif not name then name = v else e.f[name], name = v, nil end
      end
      out[#out + 1] = e
    end
    if #page < size then break end
    from, size = from + size, 64
  end
  local n = #out
  for i = 1, math.floor(n / 2) do out[i], out[n + 1 - i] = out[n + 1 - i], out[i] end
  return out
end

-- revoked_by returns the members call (a revocation's CALL) revoked and
-- their event ids, oldest first, as the trail holds them.
local function revoked_by(call)
  local members, ids = {}, {}
  if call == '' then return members, ids end
  for _, e in ipairs(since(NOW)) do
    if e.f[E_TYPE] == EV_REVOKED and e.f[E_CALL] == call then
      members[#members + 1], ids[#ids + 1] = e.f[E_SESSION], e.id
    end
  end
  return members, ids
end
