-- link: attach a refresh token id to an active session.
-- KEYS: 1 session, 2 idx, 3 rev, 4 ev, 5 all, 6 own
-- ARGV: 1 now, 2 member, 3 refresh token id, 4 stream max, 5 retention ms
local now = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if not v then return {'nf'} end
local f = split(v)
local why = refusal(f[3], f[4], f[5], now)
if why then return {why} end
local refused = check_index(KEYS[2], KEYS[3], ARGV[2])
if refused then return refused end

f[11] = ARGV[3]
redis.call('SET', KEYS[1], table.concat(f, '\31'), 'KEEPTTL') -- first write: deny-oom
local id = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[4], '*', 't', 'refresh_token_linked', 'u', f[8],
  's', ARGV[2], 'at', ARGV[1], 'rt', ARGV[3])
prune(KEYS[2], KEYS[5], KEYS[3], KEYS[6], now)
expire_events(KEYS[4], expire_user(KEYS[2], KEYS[5], KEYS[3], KEYS[6]), now, tonumber(ARGV[5]))
return {'ok', f[8], id}
