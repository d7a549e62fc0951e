package middleware_test

import (
	"math"
	"net/http"
	"runtime"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// cachedAuthenticator returns a fixture and an Authenticator over a Manager
// over the cache, on the fixture's client (whose round trips it counts)
// and prefix: sessions the fixture signs in, the cache answers for.
func cachedAuthenticator(t testing.TB) (*fixture, *middleware.Authenticator) {
	t.Helper()
	f := newFixture(t)
	m := sessiontest.New(t, sessiontest.Options{Client: f.Client, Prefix: f.Prefix, RealTime: true,
		Cache: &store.CacheOptions{TTL: store.MaxCacheTTL}}).M
	a, err := middleware.NewAuthenticator(m, middleware.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f, a
}

// BenchmarkMiddlewareCached measures one request through the middleware
// over the verified-session cache: a hit costs no Redis round trip.
func BenchmarkMiddlewareCached(b *testing.B) {
	f, a := cachedAuthenticator(b)
	res := f.Login(b, uuid.New())
	h := a.Middleware(noContent)
	r := request(cookie+res.Token, "203.0.113.7:4711")
	h.ServeHTTP(&discard{h: http.Header{}}, r) // the first request reads Redis and fills the cache
	f.Calls.Reset()
	serve(b, h, r, http.StatusNoContent)
	b.ReportMetric(float64(f.Calls.RoundTrips())/float64(b.N), "roundtrips/op")
}

// TestCachedHitAllocations: a request the cache answers costs the request
// copy net/http's WithContext makes, a small context, the response
// headers' values and the request's copy of the cache's compact entry (160
// bytes), not a copy of the session: the context holds the entry's copy.
// Measured from runtime.MemStats, the least of three runs, so that an
// allocation by another goroutine does not count.
func TestCachedHitAllocations(t *testing.T) {
	f, a := cachedAuthenticator(t)
	res := f.Login(t, uuid.New())
	var got sessionkit.Session
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = sessionkit.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	r := request(cookie+res.Token, "203.0.113.7:4711")
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r) // the first request reads Redis and fills the cache
	f.Calls.Reset()
	const n = 2000
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			w.reset()
			h.ServeHTTP(w, r)
		}
		runtime.ReadMemStats(&after)
		least = min(least, (after.TotalAlloc-before.TotalAlloc)/n)
	}
	if w.code != http.StatusNoContent || got.ID != res.Session.ID || got.UserID != res.Session.UserID || got.UserAgent != res.Session.UserAgent {
		t.Fatalf("status %d, session %v of user %v; want 204 and session %v", w.code, got.ID, got.UserID, res.Session.ID)
	}
	if trips := f.Calls.RoundTrips(); trips != 0 {
		t.Fatalf("%d round trips: the requests were not cache hits", trips)
	}
	// 576 bytes; a copy of the session would be 576 more.
	if least > 640 {
		t.Errorf("a cache hit allocates %d bytes, want at most 640", least)
	}
}
