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
// with a reader) and on without the authentication duration histogram (a
// view drops it), side by side, over Redis (one round trip) and over the
// cache (none: where the metrics' own cost shows most).
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
		for _, mode := range []string{"off", "on", "on_counts_only"} {
			var opts []sessionkit.Option
			if mode != "off" {
				mpOpts := []sdkmetric.Option{sdkmetric.WithReader(sdkmetric.NewManualReader())}
				if mode == "on_counts_only" {
					mpOpts = append(mpOpts, sdkmetric.WithView(sdkmetric.NewView(
						sdkmetric.Instrument{Name: "sessionkit.authentication.duration"},
						sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}})))
				}
				mp := sdkmetric.NewMeterProvider(mpOpts...)
				b.Cleanup(func() { mp.Shutdown(context.Background()) })
				opts = append(opts, sessionkit.WithMeterProvider(mp))
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
