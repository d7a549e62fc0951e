-- link: attach a refresh token id to an active session.
-- ARGV: 1 now, 2 member, 3 refresh token id, 4 stream max, 5 retention ms
local now = tonumber(ARGV[1])
local v, refused = lookup(ARGV[2], '', now)
if not v then return refused end
local f = split(v)

f[11] = ARGV[3]
redis.call('HSET', ACT, ARGV[2], table.concat(f, '\31')) -- first write: deny-oom
local id = redis.call('XADD', EV, 'MAXLEN', ARGV[4], '*', 't', 'refresh_token_linked', 'u', f[8],
  's', ARGV[2], 'at', ARGV[1], 'rt', ARGV[3])
prune(now)
expire_events(expire_user(), now, tonumber(ARGV[5]))
return {'ok', f[8], id}
