-- Shared helpers, prepended to every script. Rules every script keeps:
--  * all keys arrive in KEYS and share one hash tag (one Cluster slot);
--  * everything is checked before the first write, and the first write is a
--    deny-oom command (HSET/ZADD/XADD), so an out-of-memory server refuses the
--    script before it changes anything (Redis has no rollback);
--  * every key written gets an absolute expiry (PEXPIREAT) in the same script.

-- Session hash fields, in the order the Go side decodes them.
local FIELDS = {'uid', 'th', 'ca', 'la', 'ea', 'it', 'ip', 'lip', 'ic', 'rt', 'lp', 'lpa', 'pa',
  'dl', 'db', 'dbv', 'do', 'dov', 'dp', 'df', 'll', 'lci', 'lr', 'lco', 'cc',
  'u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'}

local function int(n) return string.format('%d', n) end

-- pack joins a session's fields with the unit separator (no stored value
-- contains control characters): one reply string instead of one per field.
local function pack(f)
  local out = {}
  for i = 1, #FIELDS do out[i] = f[i] or '' end
  return table.concat(out, '\31')
end

-- same compares two strings in time independent of where they differ.
local function same(a, b)
  if not a or #a ~= #b then return false end
  local d = 0
  for i = 1, #b do d = d + math.abs(string.byte(a, i) - string.byte(b, i)) end
  return d == 0
end

-- refusal returns the reason a stored session is unusable at now by its
-- timestamps ('exp' or 'idle'), or nil. ea: expires ms, la: last activity ms, it: idle ms.
local function refusal(ea, la, it, now)
  if now >= tonumber(ea) then return 'exp' end
  local idle = tonumber(it or '0')
  if idle > 0 and now >= tonumber(la) + idle then return 'idle' end
  return nil
end

-- deadline is when a session with these timestamps stops being valid.
local function deadline(ea, la, it)
  local d = tonumber(ea)
  local idle = tonumber(it or '0')
  if idle > 0 and tonumber(la) + idle < d then d = tonumber(la) + idle end
  return d
end

-- prune drops expired members of the active index and forgets sessions past retention.
local function prune(idx, all, rev, now)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  local gone = redis.call('ZRANGEBYSCORE', all, '-inf', now, 'LIMIT', 0, 500)
  if #gone > 0 then
    redis.call('HDEL', rev, unpack(gone))
    redis.call('ZREM', all, unpack(gone))
  end
end

-- expire_user sets each per-user key to expire with its last member; returns
-- the expiry of the retained set (0 when empty).
local function expire_user(idx, all, rev)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', idx, top[2]) end
  top = redis.call('ZRANGE', all, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', all, top[2])
    redis.call('PEXPIREAT', rev, top[2])
    return tonumber(top[2])
  end
  return 0
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
