package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// BenchmarkMiddlewareCached measures one request through the middleware
// over the verified-session cache: a hit costs no Redis round trip.
func BenchmarkMiddlewareCached(b *testing.B) {
	f := newFixture(b)
	res := f.login(b, uuid.New(), "203.0.113.7")
	st, err := store.NewRedis(f.rdb, store.Options{Prefix: f.prefix})
	if err != nil {
		b.Fatal(err)
	}
	c, err := store.NewCache(st, store.CacheOptions{TTL: store.MaxCacheTTL})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); !c.Stats().On; {
		if time.Now().After(deadline) {
			b.Fatal("the cache did not turn on")
		}
		time.Sleep(time.Millisecond)
	}
	m, err := sessionkit.New(c)
	if err != nil {
		b.Fatal(err)
	}
	a, err := middleware.NewAuthenticator(m, middleware.Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Middleware(noContent)
	r := request(cookie+res.Token, "203.0.113.7:4711")
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	f.calls.Reset()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.code != http.StatusNoContent {
		b.Fatalf("status: got %d, want %d", w.code, http.StatusNoContent)
	}
	b.ReportMetric(float64(f.calls.RoundTrips())/float64(b.N), "roundtrips/op")
}
