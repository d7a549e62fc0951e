package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// clearSealed blanks the field at position ARGV[1] (from 1) of every
// record in the hash KEYS[1] whose field is set, leaving the record's
// other fields, and the key's expiry, as they were. It returns how many
// it blanked.
var clearSealed = redis.NewScript(`
local n, at, sep = 0, tonumber(ARGV[1]), ARGV[2]
local kv = redis.call('HGETALL', KEYS[1])
for i = 1, #kv, 2 do
  local parts, from = {}, 1
  while true do
    local j = string.find(kv[i + 1], sep, from, true)
    if not j then parts[#parts + 1] = string.sub(kv[i + 1], from) break end
    parts[#parts + 1] = string.sub(kv[i + 1], from, j - 1)
    from = j + 1
  end
  if parts[at] and parts[at] ~= '' then
    parts[at] = ''
    redis.call('HSET', KEYS[1], kv[i], table.concat(parts, sep))
    n = n + 1
  end
end
return n
`)

// ClearSealedRefreshSecrets removes from every stored session the sealed
// refresh secret that builds before the grace window's key of its own
// kept in the session's record, where it stayed until the session's next
// refresh: with a copy of Redis, the token that secret superseded gave the
// current one (see the CHANGELOG). Builds from this one on never write it
// there. Run it once, after every instance runs such a build; a refresh
// racing its own within the grace window may then be refused as unknown
// (401), never revoked. It returns how many records it cleared.
//
// It walks the keyspace (SCAN, on every master), so it is an upgrade step
// for an operator, never for a request path.
func (r *Redis) ClearSealedRefreshSecrets(ctx context.Context) (int, error) {
	var mu sync.Mutex
	var total int
	clear := func(ctx context.Context, c *redis.Client) error {
		n, err := r.clearSealedOn(ctx, c)
		mu.Lock()
		total += n
		mu.Unlock()
		return err
	}
	var err error
	switch c := r.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, clear)
	case *redis.Client:
		err = clear(ctx, c)
	default:
		return 0, fmt.Errorf("%w: clearing sealed refresh secrets walks every master, which only a Client or a ClusterClient names", ErrUnsupported)
	}
	if err != nil {
		return total, unavailable("clear sealed refresh secrets", err)
	}
	return total, nil
}

// clearSealedOn clears the sealed refresh secrets of the sessions c holds.
func (r *Redis) clearSealedOn(ctx context.Context, c *redis.Client) (int, error) {
	at := strconv.Itoa(pRefreshSealed + 1)
	total := 0
	iter := c.ScanType(ctx, 0, globEscape(r.keys.Prefix())+"{*}:act", 256, "hash").Iterator()
	for iter.Next(ctx) {
		n, err := clearSealed.Run(ctx, c, []string{iter.Val()}, at, sep).Int()
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, iter.Err()
}

// globEscape escapes the characters a SCAN MATCH pattern gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if strings.IndexByte(`*?[]\`, c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
