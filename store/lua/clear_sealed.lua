-- clear_sealed: blank, in every record of ACT, the sealed refresh secret
-- that builds before SEAL kept in the record (an upgrade step: see
-- Redis.ClearSealedRefreshSecrets). The records' other fields, and the
-- key's expiry, stay as they were.
-- Arguments and reply: clearSealedArgs and clearSealedReply in store/scripts.go.
local n = 0
local kv = redis.call('HGETALL', ACT)
for i = 1, #kv, 2 do
  local f = split(kv[i + 1])
  if f[F_REFRESH_SEALED] ~= '' then
    f[F_REFRESH_SEALED] = ''
    redis.call('HSET', ACT, kv[i], join(f))
    n = n + 1
  end
end
return reply{CLEARED = n}
