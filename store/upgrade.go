package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessionid"
)

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
	each := func(ctx context.Context, c *redis.Client) error {
		n, err := r.clearSealedOn(ctx, c)
		mu.Lock()
		total += n
		mu.Unlock()
		return err
	}
	var err error
	switch c := r.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, each)
	case *redis.Client:
		err = each(ctx, c)
	default:
		return 0, fmt.Errorf("%w: clearing sealed refresh secrets walks every master, which only a Client or a ClusterClient names", ErrUnsupported)
	}
	if err != nil && !errors.Is(err, sessionkit.ErrUnavailable) {
		err = unavailable("clear sealed refresh secrets", err) // the scan's
	}
	return total, err
}

// clearSealedOn clears the sealed refresh secrets of the sessions c holds,
// one user's slot at a time.
func (r *Redis) clearSealedOn(ctx context.Context, c *redis.Client) (int, error) {
	prefix := r.keys.Prefix()
	call := backend.Call{Now: time.Now(), Policy: &backend.Policy{}}
	total := 0
	iter := c.ScanType(ctx, 0, globEscape(prefix)+"{*}:act", 256, "hash").Iterator()
	for iter.Next(ctx) {
		hx := strings.TrimSuffix(strings.TrimPrefix(iter.Val(), prefix+"{"), "}:act")
		tag, ok := sessionid.ParseTag(hx)
		if !ok {
			continue // not a key of this layout
		}
		var out clearSealedReply
		if err := r.exec(ctx, scriptClear, r.keys.ForTag(tag), call, clearSealedArgs{}, &out); err != nil {
			return total, err
		}
		total += int(out.Cleared)
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
