-- revoke_all: soft-revoke every active session of a user but one.
-- ARGV: 1 now, 2 member to keep or '', 3 reason, 4 stream max, 5 channel,
--       6 retention ms, 7 user id, 8 tag
local now = tonumber(ARGV[1])
reconcile() -- read-only unless the index was lost: then its writes are deny-oom ZADDs
local active = owned(ARGV[7], redis.call('ZRANGEBYSCORE', IDX, '(' .. ARGV[1], '+inf'))
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
  redis.call('HSET', REV, unpack(pairs_)) -- the first is the first write: deny-oom
end
retire(victims)
prune(now)
local retained = expire_user()
local ids = {}
for _, m in ipairs(victims) do
  ids[#ids + 1] = redis.call('XADD', EV, 'MAXLEN', ARGV[4], '*', 't', 'session_revoked', 'u', ARGV[7],
    's', m, 'at', ARGV[1], 'r', ARGV[3])
end
expire_events(retained, now, tonumber(ARGV[6]))
redis.call('PUBLISH', ARGV[5], ARGV[8] .. ':' .. table.concat(victims, ','))
return {'ok', victims, ids}
