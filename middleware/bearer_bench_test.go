package middleware_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// BenchmarkBearer measures one request with a bearer session's access
// token beside one with a cookie, through the same middleware, over Redis
// and over the verified-session cache, one at a time and in parallel. The
// access token's signature is checked once and then found in the
// verified-token cache, as a client sends one token for minutes; the
// session's standing is checked on every request.
func BenchmarkBearer(b *testing.B) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tokens := sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
		SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test",
	})
	for _, cached := range []bool{false, true} {
		o := sessiontest.Options{Addr: shared.Addr(), RealTime: true}
		name := "redis"
		if cached {
			o.Cache, name = &store.CacheOptions{TTL: store.MaxCacheTTL}, "cache"
		}
		f := newFixtureWith(b, o, tokens)
		user := uuid.New()
		cookieSession := f.Login(b, user)
		bearerSession, err := f.M.CreateSession(b.Context(), sessionkit.CreateSession{
			UserID: user, IPAddress: "203.0.113.7", UserAgent: "bench", Bearer: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		h := f.auth(b, middleware.Options{AllowBearer: true}).Middleware(noContent)
		withCookie := request(cookie+cookieSession.Token, "203.0.113.7:4711")
		withBearer := request("", "203.0.113.7:4711")
		withBearer.Header.Set("Authorization", "Bearer "+bearerSession.Tokens.AccessToken)
		for _, c := range []struct {
			name string
			r    *http.Request
		}{{"cookie", withCookie}, {"bearer", withBearer}} {
			b.Run(name+"/"+c.name, func(b *testing.B) { serve(b, h, c.r, http.StatusNoContent) })
			b.Run(name+"/"+c.name+"/parallel", func(b *testing.B) { serveParallel(b, h, c.r, http.StatusNoContent) })
		}
	}
}

// BenchmarkRefresh measures RefreshSession: one script, one round trip. It
// reports the median time of one refresh and the Redis CPU it cost (the
// scripts' usec in INFO commandstats).
func BenchmarkRefresh(b *testing.B) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	f := newFixtureWith(b, sessiontest.Options{Addr: shared.Addr(), RealTime: true},
		sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test"}))
	res, err := f.M.CreateSession(b.Context(), sessionkit.CreateSession{UserID: uuid.New(), IPAddress: "203.0.113.7", Bearer: true})
	if err != nil {
		b.Fatal(err)
	}
	rt := res.Tokens.RefreshToken
	refresh := func() {
		out, err := f.M.RefreshSession(b.Context(), sessionkit.RefreshSession{RefreshToken: rt})
		if err != nil || !out.Rotated {
			b.Fatalf("refresh: %+v, %v", out, err)
		}
		rt = out.Tokens.RefreshToken
	}
	refresh() // load the script
	f.Calls.Reset()
	cpu := redistest.ScriptMicros(b, f.Client)
	var took []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		refresh()
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric((redistest.ScriptMicros(b, f.Client)-cpu)/float64(b.N), "redis-cpu-µs/op")
	b.ReportMetric(float64(f.Calls.RoundTrips())/float64(b.N), "roundtrips/op")
}
