// Package redistest starts and stops real redis-server processes for tests:
// standalone servers, Redis Cluster deployments built with redis-cli, a
// Sentinel deployment (a master, a replica and three redis-sentinel
// processes: [StartSentinel]), and a latency-injecting TCP proxy for timeout
// tests.
//
// Every process listens on a free loopback port, lives in its own temporary
// directory and its own process group, and is killed when the test binary
// dies (on Linux), so nothing outlives the tests. Servers may be shared by
// many tests: isolate them by key prefix ([Prefix]) and never FLUSHDB.
//
// In a single test:
//
//	srv := redistest.Start(t, redistest.Options{})
//	rdb := srv.Client(t)
//	prefix := redistest.Prefix(t)
//
// Shared by a whole package, from TestMain (os.Exit skips deferred calls,
// so stop explicitly):
//
//	func TestMain(m *testing.M) {
//		srv, err := redistest.StartServer(redistest.Options{})
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		sharedServer = srv
//		code := m.Run()
//		srv.Stop()
//		os.Exit(code)
//	}
package redistest
