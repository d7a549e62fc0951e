package sessiontest

import (
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

// Backend is a Redis deployment a package's tests share, each on its own
// key prefix: one standalone node, or a three-master Cluster.
type Backend struct {
	Name   string   // "standalone" or "cluster", the subtest name
	Addrs  []string // its nodes' addresses (the one node's, for standalone)
	Client redis.UniversalClient
}

// NewClient returns a new client to the deployment, closed when tb ends,
// for a test that hooks its client or must not share its pool.
func (b Backend) NewClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	c, err := cloneClient(b.Client)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// StartBackends starts a standalone server and a three-master Cluster, and
// returns them, in that order, with a function that stops both.
func StartBackends() (backends []Backend, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	srv, err := redistest.StartServer(redistest.Options{})
	if err != nil {
		return nil, stop, err
	}
	single := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	stops = append(stops, func() { srv.Stop() }, func() { single.Close() })
	cl, err := redistest.StartCluster(redistest.ClusterOptions{Masters: 3})
	if err != nil {
		return nil, stop, err
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true, MaxRedirects: 8})
	stops = append(stops, func() { cl.Stop() }, func() { cc.Close() })
	return []Backend{
		{Name: "standalone", Addrs: []string{srv.Addr()}, Client: single},
		{Name: "cluster", Addrs: cl.Addrs(), Client: cc},
	}, stop, nil
}

// RunWithBackends is a TestMain for packages whose tests run on both
// deployments: it starts them, hands them to use, runs the tests and stops
// them. It returns the exit code for os.Exit.
func RunWithBackends(m *testing.M, use func([]Backend)) int {
	backends, stop, err := StartBackends()
	defer stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	use(backends)
	return m.Run()
}

// ForEachBackend runs test on every backend, each as a subtest named after it.
func ForEachBackend(t *testing.T, backends []Backend, test func(t *testing.T, b Backend)) {
	t.Helper()
	if len(backends) == 0 {
		t.Fatal("sessiontest: no backends: did TestMain call RunWithBackends?")
	}
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) { test(t, b) })
	}
}

// cloneClient opens a new client to the deployment of c, with its retries.
func cloneClient(c redis.UniversalClient) (redis.UniversalClient, error) {
	switch c := c.(type) {
	case *redis.Client:
		retries := c.Options().MaxRetries
		if retries == 0 { // how go-redis keeps "none" (-1) once it has set defaults
			retries = -1
		}
		return redis.NewClient(&redis.Options{Addr: c.Options().Addr, ContextTimeoutEnabled: true, MaxRetries: retries}), nil
	case *redis.ClusterClient:
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Options().Addrs, ContextTimeoutEnabled: true, MaxRedirects: 8}), nil
	}
	return nil, fmt.Errorf("sessiontest: cannot open another client like a %T", c)
}
