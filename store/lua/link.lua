-- link: attach a refresh token id to an active session.
-- KEYS: 1 session, 2 idx, 3 rev, 4 ev, 5 all
-- ARGV: 1 now, 2 member, 3 refresh token id, 4 stream max, 5 retention ms
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'uid', 'ea', 'la', 'it')
if not f[1] then return {'nf'} end
local why = refusal(f[2], f[3], f[4], now)
if why then return {why} end
local refused = check_index(KEYS[2], KEYS[3], ARGV[2])
if refused then return refused end

redis.call('HSET', KEYS[1], 'rt', ARGV[3]) -- first write: deny-oom
local id = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[4], '*', 't', 'refresh_token_linked', 'u', f[1],
  's', ARGV[2], 'at', ARGV[1], 'rt', ARGV[3])
prune(KEYS[2], KEYS[5], KEYS[3], now)
expire_events(KEYS[4], expire_user(KEYS[2], KEYS[5], KEYS[3]), now, tonumber(ARGV[5]))
return {'ok', f[1], id}
