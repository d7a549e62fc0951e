package middleware_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// BenchmarkMiddlewareCached measures one request through the middleware
// over the verified-session cache: a hit costs no Redis round trip.
func BenchmarkMiddlewareCached(b *testing.B) {
	f := newFixture(b)
	res := f.Login(b, uuid.New())
	// A Manager over the cache, on f's client (whose round trips f counts) and prefix.
	m := sessiontest.New(b, sessiontest.Options{Client: f.Client, Prefix: f.Prefix, RealTime: true,
		Cache: &store.CacheOptions{TTL: store.MaxCacheTTL}}).M
	a, err := middleware.NewAuthenticator(m, middleware.Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Middleware(noContent)
	r := request(cookie+res.Token, "203.0.113.7:4711")
	h.ServeHTTP(&discard{h: http.Header{}}, r) // the first request reads Redis and fills the cache
	f.Calls.Reset()
	serve(b, h, r, http.StatusNoContent)
	b.ReportMetric(float64(f.Calls.RoundTrips())/float64(b.N), "roundtrips/op")
}
