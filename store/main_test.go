package store_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

// backends are the Redis deployments every store test runs against: one
// standalone node and a three-master Cluster, started once for the package.
var backends []backend

type backend struct {
	name   string
	client redis.UniversalClient
	// masters runs f against every master (for whole-database checks in tests).
	masters func(ctx context.Context, f func(ctx context.Context, c *redis.Client) error) error
	// fresh returns a new client of the deployment, closed when t ends.
	fresh func(t *testing.T) redis.UniversalClient
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	srv, err := redistest.StartServer(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()
	single := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer single.Close()
	backends = append(backends, backend{
		name:   "standalone",
		client: single,
		masters: func(ctx context.Context, f func(context.Context, *redis.Client) error) error {
			return f(ctx, single)
		},
		fresh: func(t *testing.T) redis.UniversalClient {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			return c
		},
	})

	cl, err := redistest.StartCluster(redistest.ClusterOptions{Masters: 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cl.Stop()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true, MaxRedirects: 8})
	defer cc.Close()
	var mu sync.Mutex
	backends = append(backends, backend{
		name:   "cluster",
		client: cc,
		masters: func(ctx context.Context, f func(context.Context, *redis.Client) error) error {
			return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				mu.Lock() // keep test helpers simple: one master at a time
				defer mu.Unlock()
				return f(ctx, c)
			})
		},
		fresh: func(t *testing.T) redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true, MaxRedirects: 8})
			t.Cleanup(func() { c.Close() })
			return c
		},
	})
	return m.Run()
}

// forEachBackend runs test on every backend as a subtest.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}
