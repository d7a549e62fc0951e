// Package sessiontest builds, for a test, the chain every sessionkit test
// stands on: a Redis client, a *store.Redis on the test's own key prefix,
// optionally a *store.Cache over it, and a *sessionkit.Manager on a clock
// the test moves (redistest.Clock), with the commands the client sends
// counted (redistest.Counter). It also holds what tests of every package
// repeat: signing a user in, reading a session back, listing, dumping and
// checking the keys under a prefix, and running a test on a standalone
// server and on a three-master Cluster.
//
// One fixture per test, on the shared server of the package:
//
//	f := sessiontest.New(t, sessiontest.Options{Addr: shared.Addr()}, sessionkit.WithLimit(sessionkit.FixedLimit(2)))
//	res := f.Login(t, uuid.New())
//	f.Clock.Advance(time.Minute)
//	f.CheckTTLs(t)
//
// On both deployments, started once by TestMain:
//
//	var backends []sessiontest.Backend
//
//	func TestMain(m *testing.M) {
//		os.Exit(sessiontest.RunWithBackends(m, func(b []sessiontest.Backend) { backends = b }))
//	}
//
//	func TestX(t *testing.T) {
//		sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
//			f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
//			...
//		})
//	}
package sessiontest
