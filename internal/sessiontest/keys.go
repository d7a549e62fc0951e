package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// keysTimeout bounds a whole scan or check: a soak test leaves many keys.
const keysTimeout = 5 * time.Minute

// ForEachMaster runs fn on every master of c, one at a time: the node
// itself, or each master of a Cluster.
func ForEachMaster(ctx context.Context, c redis.UniversalClient, fn func(ctx context.Context, n *redis.Client) error) error {
	switch c := c.(type) {
	case *redis.Client:
		return fn(ctx, c)
	case *redis.ClusterClient:
		var mu sync.Mutex // one master at a time keeps callers simple
		return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return fn(ctx, n)
		})
	}
	return fmt.Errorf("sessiontest: unsupported client %T", c)
}

// Keys returns every key under prefix on every master, sorted, with SCAN
// (only tests scan; sessionkit itself never does).
func Keys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
	defer cancel()
	var out []string
	err := ForEachMaster(ctx, c, func(ctx context.Context, n *redis.Client) error {
		it := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			out = append(out, it.Val())
		}
		return it.Err()
	})
	if err != nil {
		tb.Fatalf("scan %s*: %v", prefix, err)
	}
	slices.Sort(out)
	return out
}

// CheckTTLs fails the test for every key under prefix without an expiry
// (naming the first 30), and returns the keys.
func CheckTTLs(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	all := Keys(tb, c, prefix)
	ttls := pipelined(tb, c, all, func(ctx context.Context, p redis.Pipeliner, k string) *redis.DurationCmd { return p.PTTL(ctx, k) })
	bad := 0
	for i, k := range all {
		if d := ttls[i].Val(); d <= 0 {
			if bad++; bad <= 30 {
				tb.Errorf("key %s: got PTTL %v, want > 0", k, d)
			}
		}
	}
	return all
}

// Dump returns every key under prefix with its serialized value (DUMP) and
// whether it has an expiry: two dumps that differ show that something
// wrote, even where a refused command must have written nothing.
func Dump(tb testing.TB, c redis.UniversalClient, prefix string) map[string]string {
	tb.Helper()
	all := Keys(tb, c, prefix)
	vals := pipelined(tb, c, all, func(ctx context.Context, p redis.Pipeliner, k string) *redis.StringCmd { return p.Dump(ctx, k) })
	ttls := pipelined(tb, c, all, func(ctx context.Context, p redis.Pipeliner, k string) *redis.DurationCmd { return p.PTTL(ctx, k) })
	out := make(map[string]string, len(all))
	for i, k := range all {
		out[k] = fmt.Sprintf("ttl=%t %x", ttls[i].Val() > 0, vals[i].Val())
	}
	return out
}

// Diff lists, sorted, the keys created, deleted or changed between two dumps.
func Diff(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		w, ok := after[k]
		switch {
		case !ok:
			d = append(d, "deleted "+k)
		case v != w:
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "created "+k)
		}
	}
	slices.Sort(d)
	return d
}

// pipelined sends cmd for every key, 1,000 to a pipeline, and fails the
// test on any error (a key deleted meanwhile is not one: its command
// answers a zero value).
func pipelined[C redis.Cmder](tb testing.TB, c redis.UniversalClient, keys []string, cmd func(context.Context, redis.Pipeliner, string) C) []C {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
	defer cancel()
	out := make([]C, len(keys))
	for lo := 0; lo < len(keys); lo += 1000 {
		hi := min(lo+1000, len(keys))
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				out[i] = cmd(ctx, p, keys[i])
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			tb.Fatalf("pipeline of %d commands: %v", hi-lo, err)
		}
	}
	return out
}
