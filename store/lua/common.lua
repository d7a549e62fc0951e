-- Shared helpers, prepended to every script. Rules every script keeps:
--  * all keys arrive in KEYS and share one hash tag (one Cluster slot);
--  * everything is checked before the first write, and the first write is a
--    deny-oom command (SET/HSET/ZADD/XADD), so an out-of-memory server refuses the
--    script before it changes anything (Redis has no rollback);
--  * every key written gets an absolute expiry (PEXPIREAT) in the same script.

-- A session is one string: its fields joined by the unit separator (\31),
-- which no stored value contains. The fields the hot path needs come first,
-- so it splits only those:
--  1 format version, 2 token hash (base64url of SHA-256), 3 expires ms,
--  4 last activity ms, 5 idle timeout ms, 6 ip, 7 last ip, 8 user id,
--  9 created ms, 10 ip changes, 11 refresh token id, 12 last provider,
--  13 last provider ms, 14 providers (comma-separated), 15-21 device
--  (label, browser, version, os, os version, platform, flags),
--  22-26 location (label, city, region, country, country code), 27 user agent.
local HOT = 8

local function int(n) return string.format('%d', n) end

-- num reads a stored number; an empty field is 0.
local function num(s) return tonumber(s) or 0 end

-- split returns the first n fields of s (all when n is nil) and the
-- unsplit remainder after them (nil when there is none).
local function split(s, n)
  local out, i = {}, 1
  while not n or #out < n do
    local j = string.find(s, '\31', i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      return out, nil
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
  return out, string.sub(s, i)
end

local function join(head, rest)
  local s = table.concat(head, '\31')
  if rest then s = s .. '\31' .. rest end
  return s
end

-- refusal returns the reason a stored session is unusable at now by its
-- timestamps ('exp' or 'idle'), or nil. ea: expires ms, la: last activity ms, it: idle ms.
local function refusal(ea, la, it, now)
  if now >= num(ea) then return 'exp' end
  local idle = num(it)
  if idle > 0 and now >= num(la) + idle then return 'idle' end
  return nil
end

-- deadline is when a session with these timestamps stops being valid.
local function deadline(ea, la, it)
  local d = num(ea)
  local idle = num(it)
  if idle > 0 and num(la) + idle < d then d = num(la) + idle end
  return d
end

-- prune drops expired members of the active index and forgets sessions past
-- retention (their revocation record and owner too).
local function prune(idx, all, rev, own, now)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  local gone = redis.call('ZRANGEBYSCORE', all, '-inf', now, 'LIMIT', 0, 500)
  if #gone > 0 then
    redis.call('HDEL', rev, unpack(gone))
    redis.call('HDEL', own, unpack(gone))
    redis.call('ZREM', all, unpack(gone))
  end
end

-- expire_user sets each per-user key to expire with its last member; returns
-- the expiry of the retained set (0 when empty).
local function expire_user(idx, all, rev, own)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', idx, top[2]) end
  top = redis.call('ZRANGE', all, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', all, top[2])
    redis.call('PEXPIREAT', rev, top[2])
    redis.call('PEXPIREAT', own, top[2])
    return tonumber(top[2])
  end
  return 0
end

-- owned returns the active members of uid, soonest deadline first. Users
-- share these keys only if their 60-bit tags collide; a member without an
-- owner record (the hash lost) counts as uid's, so revocation still reaches it.
local function owned(idx, own, uid, members)
  members = members or redis.call('ZRANGE', idx, 0, -1)
  if #members == 0 then return {} end
  local mine = {}
  for i = 1, #members, 500 do -- unpack has a stack limit
    local last = math.min(i + 499, #members)
    local owners = redis.call('HMGET', own, unpack(members, i, last))
    for j = i, last do
      local o = owners[j - i + 1]
      if not o or o == uid then mine[#mine + 1] = members[j] end
    end
  end
  return mine
end

-- expire_events keeps the audit trail while any session is retained, and at
-- least retention past now.
local function expire_events(ev, retained_until, now, retention)
  local t = now + retention
  if retained_until > t then t = retained_until end
  redis.call('PEXPIREAT', ev, int(t))
end

-- active_or_refusal checks a session member against the index: nil when
-- active, else a reply refusing it.
local function check_index(idx, rev, member)
  if redis.call('ZSCORE', idx, member) then return nil end
  return {'rev', redis.call('HGET', rev, member) or ''}
end
