package middleware_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// BenchmarkMiddlewareMetrics measures one request through the middleware
// with metrics off (the global no-op provider), on (an SDK MeterProvider
// with a reader: the default instruments) and on with the authentication
// duration histogram (WithAuthenticationLatency), side by side, over Redis
// (one round trip) and over the cache (none: where the metrics' own cost
// shows most).
func BenchmarkMiddlewareMetrics(b *testing.B) {
	f := newFixture(b)
	res := f.Login(b, uuid.New())
	r := request(cookie+res.Token, "203.0.113.7:4711")
	for _, backend := range []struct {
		name  string
		cache *store.CacheOptions
	}{
		{"redis", nil},
		{"cached", &store.CacheOptions{TTL: store.MaxCacheTTL}},
	} {
		for _, mode := range []string{"off", "on", "on_latency"} {
			var opts []sessionkit.Option
			if mode != "off" {
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				b.Cleanup(func() { mp.Shutdown(context.Background()) })
				opts = append(opts, sessionkit.WithMeterProvider(mp),
					sessionkit.WithAuthenticationLatency(mode == "on_latency"))
			}
			b.Run(backend.name+"/"+mode, func(b *testing.B) {
				m := sessiontest.New(b, sessiontest.Options{Client: f.Client, Prefix: f.Prefix, RealTime: true,
					Cache: backend.cache}, opts...).M
				a, err := middleware.NewAuthenticator(m, middleware.Options{})
				if err != nil {
					b.Fatal(err)
				}
				serve(b, a.Middleware(noContent), r, http.StatusNoContent)
			})
		}
	}
}
