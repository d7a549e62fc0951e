package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// discard is a ResponseWriter that keeps nothing, so a benchmark measures
// the middleware rather than a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func (d *discard) reset() {
	clear(d.h)
	d.code = 0
}

var noContent = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, ok := sessionkit.FromContext(r.Context()); !ok {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
})

// serve measures r through h, one at a time, after one request that warms
// the script cache, the pool and any cache; the last status must be want.
func serve(b *testing.B, h http.Handler, r *http.Request, want int) {
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.code != want {
		b.Fatalf("status: got %d, want %d", w.code, want)
	}
}

// serveParallel is serve from GOMAXPROCS goroutines; every status must be want.
func serveParallel(b *testing.B, h http.Handler, r *http.Request, want int) {
	h.ServeHTTP(&discard{h: http.Header{}}, r)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, r)
			if w.code != want {
				b.Errorf("status: got %d, want %d", w.code, want)
				return
			}
		}
	})
}

// BenchmarkMiddleware measures one request through the middleware against
// a real redis-server (one round trip, throttled: no write), next to a
// handler doing one plain GET on the same server, and the refusal of a
// malformed cookie (no round trip).
func BenchmarkMiddleware(b *testing.B) {
	f := newFixture(b)
	res := f.Login(b, uuid.New())
	h := f.auth(b, middleware.Options{}).Middleware(noContent)
	good := request(cookie+res.Token, "203.0.113.7:4711")
	bad := request(cookie+res.Token[:40]+"+"+res.Token[41:], "203.0.113.7:4711")
	if err := f.Client.Set(b.Context(), f.Prefix+"plain", "v", 0).Err(); err != nil {
		b.Fatal(err)
	}
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f.Client.Get(r.Context(), f.Prefix+"plain").Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	b.Run("session", func(b *testing.B) { serve(b, h, good, http.StatusNoContent) })
	b.Run("plain_get", func(b *testing.B) { serve(b, plain, good, http.StatusNoContent) })
	b.Run("session_parallel", func(b *testing.B) { serveParallel(b, h, good, http.StatusNoContent) })
	b.Run("plain_get_parallel", func(b *testing.B) { serveParallel(b, plain, good, http.StatusNoContent) })
	b.Run("reject_malformed", func(b *testing.B) { serve(b, h, bad, http.StatusUnauthorized) })
}

// BenchmarkReject measures the refusal of a request without a usable
// session cookie: no Redis call.
func BenchmarkReject(b *testing.B) {
	f := newFixture(b)
	h := f.auth(b, middleware.Options{}).Middleware(noContent)
	for _, c := range []struct{ name, cookie string }{
		{"no_cookie", ""},
		{"malformed", cookie + "0123456789"},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			if c.cookie != "" {
				r.Header.Set("Cookie", c.cookie)
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, r)
			}
			if w.code != http.StatusUnauthorized {
				b.Fatalf("status: got %d, want 401", w.code)
			}
			if n := f.Calls.Commands(); n != 0 {
				b.Fatalf("redis commands: got %d, want 0", n)
			}
		})
	}
}
