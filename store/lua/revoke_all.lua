-- revoke_all: soft-revoke every active session of a user but one.
-- KEYS: 1 idx, 2 all, 3 rev, 4 ev, 5 own
-- ARGV: 1 now, 2 member to keep or '', 3 reason, 4 stream max, 5 channel,
--       6 retention ms, 7 user id, 8 tag
local now = tonumber(ARGV[1])
local active = owned(KEYS[1], KEYS[5], ARGV[7], redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf'))
local victims = {}
for _, m in ipairs(active) do
  if m ~= ARGV[2] then victims[#victims + 1] = m end
end
if #victims == 0 then return {'ok', {}, {}} end

local value = ARGV[1] .. '|' .. ARGV[3]
for i = 1, #victims, 500 do
  local pairs_ = {}
  for j = i, math.min(i + 499, #victims) do
    pairs_[#pairs_ + 1] = victims[j]
    pairs_[#pairs_ + 1] = value
  end
  redis.call('HSET', KEYS[3], unpack(pairs_)) -- the first is the first write: deny-oom
end
for i = 1, #victims, 500 do
  redis.call('ZREM', KEYS[1], unpack(victims, i, math.min(i + 499, #victims)))
end
prune(KEYS[1], KEYS[2], KEYS[3], KEYS[5], now)
local retained = expire_user(KEYS[1], KEYS[2], KEYS[3], KEYS[5])
local ids = {}
for _, m in ipairs(victims) do
  ids[#ids + 1] = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[4], '*', 't', 'session_revoked', 'u', ARGV[7],
    's', m, 'at', ARGV[1], 'r', ARGV[3])
end
expire_events(KEYS[4], retained, now, tonumber(ARGV[6]))
redis.call('PUBLISH', ARGV[5], ARGV[8] .. ':' .. table.concat(victims, ','))
return {'ok', victims, ids}
