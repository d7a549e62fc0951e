-- data: put or delete one value of an active session's small data, kept
-- as a JSON object of strings in DATA under the session's member, within
-- MAX_KEYS keys and MAX_BYTES bytes (checked before any write). Arguments
-- and reply: dataArgs and dataReply in store/scripts.go.
local v, refused = lookup(MEMBER, '', NOW)
if not v then return refused end
local bad = mistyped(IDX, DATA)
if bad then return bad end
local raw = redis.call('HGET', DATA, MEMBER)
local data = {}
if raw then data = cjson.decode(raw) end
if DELETE then data[KEY] = nil else data[KEY] = VALUE end
local n, size = 0, 0
for k, x in pairs(data) do
  n = n + 1
  size = size + #k + #x
end
if n > MAX_KEYS then return {S_DATA_FULL, MAX_KEYS .. ' keys'} end
if size > MAX_BYTES then return {S_DATA_FULL, MAX_BYTES .. ' bytes'} end
if n == 0 then
  redis.call('HDEL', DATA, MEMBER)
else
  local h = split(v, HOT)
  local dl = deadline(h[F_EXPIRES], h[F_LAST_ACTIVITY], h[F_IDLE])
  local top = redis.call('ZRANGE', IDX, -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > dl then dl = tonumber(top[2]) end
  redis.call('HSET', DATA, MEMBER, cjson.encode(data)) -- the only write: deny-oom
  redis.call('PEXPIREAT', DATA, int(dl))
end
return reply{KEYS_STORED = n}
