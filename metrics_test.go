package sessionkit_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// TestMetricsAndSpans signs in, authenticates, refuses, revokes and reads
// the instruments and spans back from an SDK.
func TestMetricsAndSpans(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr, Cache: &store.CacheOptions{}},
		sessionkit.WithMeterProvider(mp), sessionkit.WithTracerProvider(tp), sessionkit.WithAuthenticationLatency(true))

	user := uuid.New()
	a, b := f.Login(t, user), f.Login(t, user)
	ip := netip.MustParseAddr(sessiontest.LoginIP)
	for range 2 {
		if _, err := f.M.Authenticate(ctx, a.Token, ip); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	}
	// Under a recording span, Authenticate and its store call get spans of their own.
	rctx, request := tp.Tracer("test").Start(ctx, "GET /")
	if _, err := f.M.Authenticate(rctx, a.Token, netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Fatalf("Authenticate from a new address: %v", err)
	}
	request.End()
	if _, err := f.M.Authenticate(ctx, "garbage", ip); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("a garbage token: got %v, want ErrNotFound", err)
	}
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: b.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.Authenticate(ctx, b.Token, ip); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("a revoked session: got %v, want ErrRevoked", err)
	}
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: a.Session.ID, UserID: user, Reason: "stolen laptop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: a.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("revoking again: got %v, want ErrNotFound", err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	refused := func(reason string) attribute.Set {
		return attribute.NewSet(attribute.String("sessionkit.outcome", "refused"), attribute.String("sessionkit.reason", reason))
	}
	ok := attribute.NewSet(attribute.String("sessionkit.outcome", "ok"))
	tests := []struct {
		name  string
		attrs attribute.Set
		want  int64
	}{
		{"sessionkit.authentications", ok, 3},
		{"sessionkit.authentications", refused("not_found"), 1},
		{"sessionkit.authentications", refused("revoked"), 1},
		{"sessionkit.authentication.duration", ok, 3},
		{"sessionkit.authentication.duration", refused("revoked"), 1},
		{"sessionkit.logins", ok, 2},
		{"sessionkit.login.duration", ok, 2},
		{"sessionkit.revocations", attribute.NewSet(attribute.String("sessionkit.reason", "logout")), 1},
		{"sessionkit.revocations", attribute.NewSet(attribute.String("sessionkit.reason", "other")), 1},
		{"sessionkit.ip_changes", attribute.NewSet(attribute.Bool("sessionkit.country_changed", false)), 1},
		{"sessionkit.hooks.dropped", attribute.NewSet(), 0},
		{"sessionkit.cache.on", attribute.NewSet(), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name+"{"+tt.attrs.Encoded(attribute.DefaultEncoder())+"}", func(t *testing.T) {
			got, found := point(rm, tt.name, tt.attrs)
			if !found {
				t.Fatalf("no data point")
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
	if _, found := point(rm, "sessionkit.store.errors", attribute.NewSet(attribute.String("sessionkit.operation", "peek"))); found {
		t.Errorf("sessionkit.store.errors: got a data point, want none (no store failed)")
	}
	hits, _ := point(rm, "sessionkit.cache.hits", attribute.NewSet())
	misses, _ := point(rm, "sessionkit.cache.misses", attribute.NewSet())
	if hits+misses < 4 {
		t.Errorf("cache hits + misses: got %d, want at least 4 (one per Peek)", hits+misses)
	}

	names := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		names[s.Name()] = s
	}
	for _, n := range []string{"sessionkit.CreateSession", "sessionkit.store.Create", "sessionkit.RevokeSession",
		"sessionkit.store.Revoke", "sessionkit.Authenticate", "sessionkit.store.Peek", "sessionkit.store.Touch"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no span %s among %v", n, slices.Sorted(maps.Keys(names)))
		}
	}
	if n := count(spans.Ended(), "sessionkit.Authenticate"); n != 1 {
		t.Errorf("sessionkit.Authenticate spans: got %d, want 1 (only under a recording span)", n)
	}
	var failed int
	for _, s := range spans.Ended() {
		if s.Name() == "sessionkit.RevokeSession" && s.Status().Code == codes.Error {
			failed++
		}
	}
	if failed != 0 {
		t.Errorf("RevokeSession spans with error status: got %d, want 0 (revoking again is a refusal, no failure)", failed)
	}
}

// TestAuthenticationLatencyIsOptIn checks that by default Authenticate
// is counted but not timed, while sign-ins are both: the latency
// histogram's clock reads and recording would be a fifth of a request
// served from a store.Cache.
func TestAuthenticationLatencyIsOptIn(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr},
		sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	login := f.Login(t, uuid.New())
	if _, err := f.M.Authenticate(ctx, login.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	ok := attribute.NewSet(attribute.String("sessionkit.outcome", "ok"))
	if got, found := point(rm, "sessionkit.authentications", ok); !found || got != 1 {
		t.Errorf("sessionkit.authentications{outcome=ok}: got %d (found %v), want 1", got, found)
	}
	if got, found := point(rm, "sessionkit.login.duration", ok); !found || got != 1 {
		t.Errorf("sessionkit.login.duration{outcome=ok}: got count %d (found %v), want 1", got, found)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "sessionkit.authentication.duration" {
				t.Errorf("sessionkit.authentication.duration: got the instrument without WithAuthenticationLatency, want none")
			}
		}
	}
}

// TestAuthenticationLatencyIsMeasured checks what the opt-in histogram
// records: one Authenticate, timed, neither zero nor absurd.
func TestAuthenticationLatencyIsMeasured(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr},
		sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		sessionkit.WithAuthenticationLatency(true))
	login := f.Login(t, uuid.New())
	before := time.Now()
	if _, err := f.M.Authenticate(ctx, login.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	took := time.Since(before).Seconds()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var points []metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "sessionkit.authentication.duration" {
				points = append(points, h.DataPoints...)
			}
		}
	}
	if len(points) != 1 || points[0].Count != 1 {
		t.Fatalf("sessionkit.authentication.duration: got %d points (%+v), want one with count 1", len(points), points)
	}
	if sum := points[0].Sum; sum <= 0 || sum > took {
		t.Errorf("sessionkit.authentication.duration: got %g s, want more than 0 and at most the %g s the call took", sum, took)
	}
}

// TestRefreshOutcomesAreCounted exchanges refresh tokens into each outcome
// but the store failing, and reads sessionkit.refreshes back.
func TestRefreshOutcomesAreCounted(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const grace = 10 * time.Second
	f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr},
		sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
			SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test", RefreshGrace: grace,
		}))
	login, err := f.M.CreateSession(ctx, sessionkit.CreateSession{
		UserID: uuid.New(), IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac, Bearer: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(token string) (sessionkit.RefreshSessionResult, error) {
		return f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: token})
	}
	first := login.Tokens.RefreshToken
	rotated, err := refresh(first) // rotated
	if err != nil || !rotated.Rotated {
		t.Fatalf("first refresh: rotated %v, %v", rotated.Rotated, err)
	}
	if again, err := refresh(first); err != nil || again.Rotated { // repeated, within the grace
		t.Fatalf("a retry within the grace: rotated %v, %v; want the current token again", again.Rotated, err)
	}
	if _, err := refresh("garbage"); !errors.Is(err, sessionkit.ErrNotFound) { // refused
		t.Fatalf("a garbage token: got %v, want ErrNotFound", err)
	}
	f.Clock.Advance(grace + time.Second)
	if _, err := refresh(first); !errors.Is(err, sessionkit.ErrRevoked) { // reused: the session is revoked
		t.Fatalf("a superseded token after the grace: got %v, want ErrRevoked", err)
	}
	if _, err := refresh(rotated.Tokens.RefreshToken); !errors.Is(err, sessionkit.ErrRevoked) { // refused
		t.Fatalf("the current token of a revoked session: got %v, want ErrRevoked", err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	for outcome, want := range map[string]int64{"rotated": 1, "repeated": 1, "refused": 2, "reused": 1} {
		got, found := point(rm, "sessionkit.refreshes", attribute.NewSet(attribute.String("sessionkit.outcome", outcome)))
		if !found || got != want {
			t.Errorf("sessionkit.refreshes{outcome=%s}: got %d (found %v), want %d", outcome, got, found, want)
		}
	}
	if _, found := point(rm, "sessionkit.refreshes", attribute.NewSet(attribute.String("sessionkit.outcome", "error"))); found {
		t.Errorf("sessionkit.refreshes{outcome=error}: got a data point, want none (no store failed)")
	}
}

// point returns the value of the named instrument's data point with
// exactly attrs: a sum's value, a gauge's, or a histogram's count.
func point(rm metricdata.ResourceMetrics, name string, attrs attribute.Set) (int64, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if p.Attributes.Equals(&attrs) {
						return p.Value, true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if p.Attributes.Equals(&attrs) {
						return p.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if p.Attributes.Equals(&attrs) {
						return int64(p.Count), true
					}
				}
			}
		}
	}
	return 0, false
}

func count(spans []sdktrace.ReadOnlySpan, name string) int {
	n := 0
	for _, s := range spans {
		if s.Name() == name {
			n++
		}
	}
	return n
}

// takenOnce is a store whose first Create finds the new session's id
// taken, as 62 random bits colliding with a live session would: another
// sign-in, with a secret of its own, stores the id first, so the Manager's
// own Create meets Redis's real refusal.
type takenOnce struct {
	sessionkit.Store
	taken bool
}

func (s *takenOnce) Create(ctx context.Context, c backend.Call, ss sessionkit.Session, cred backend.Credentials, limit backend.Limit) (backend.Created, []sessionkit.Event, error) {
	if !s.taken {
		s.taken = true
		other := cred
		other.TokenHash[0] ^= 1
		if out, events, err := s.Store.Create(ctx, c, ss, other, limit); err != nil {
			return out, events, err
		}
	}
	return s.Store.Create(ctx, c, ss, cred, limit)
}

// A session id that collides is drawn again (CreateSession): the store did
// not fail, so neither the store's error count nor a span says it did.
func TestSessionIDCollisionIsNoStoreFailure(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	st, err := store.NewRedis(backends[0].Client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	taken := &takenOnce{Store: st}
	m, err := sessionkit.New(taken, sessionkit.WithMeterProvider(mp), sessionkit.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac})
	if err != nil || !taken.taken {
		t.Fatalf("CreateSession after a collision: %v (collided: %v)", err, taken.taken)
	}
	if _, err := m.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
		t.Fatalf("the session created after the collision: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n, found := point(rm, "sessionkit.store.errors", attribute.NewSet(attribute.String("sessionkit.operation", "create"))); found {
		t.Errorf("sessionkit.store.errors{create}: got %d, want no data point", n)
	}
	if n, _ := point(rm, "sessionkit.logins", attribute.NewSet(attribute.String("sessionkit.outcome", "ok"))); n != 1 {
		t.Errorf("sessionkit.logins{ok}: got %d, want 1", n)
	}
	creates, events := 0, 0
	for _, s := range spans.Ended() {
		if s.Name() != "sessionkit.store.Create" {
			continue
		}
		creates++
		if s.Status().Code == codes.Error {
			t.Errorf("a sessionkit.store.Create span has error status %q", s.Status().Description)
		}
		for _, e := range s.Events() {
			if e.Name == "sessionkit.session_id_taken" {
				events++
			}
		}
	}
	if creates != 2 || events != 1 {
		t.Errorf("sessionkit.store.Create spans: got %d, %d with the event sessionkit.session_id_taken; want 2 (the collision, then the new id), 1", creates, events)
	}
}

// Two Managers on one MeterProvider add up in sessionkit.authentications,
// and closing one takes nothing away: a counter that fell would read as a
// reset (Prometheus's rate() counts the whole new value again).
func TestTwoManagersOnOneMeterProvider(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	a := sessiontest.New(t, sessiontest.Options{Addr: redisAddr}, sessionkit.WithMeterProvider(mp))
	b := sessiontest.New(t, sessiontest.Options{Addr: redisAddr}, sessionkit.WithMeterProvider(mp))
	authenticate := func(f *sessiontest.Fixture, n int) {
		res := f.Login(t, uuid.New())
		for range n {
			if _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ok := attribute.NewSet(attribute.String("sessionkit.outcome", "ok"))
	authentications := func() int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		n, _ := point(rm, "sessionkit.authentications", ok)
		return n
	}
	authenticate(a, 3)
	authenticate(b, 5)
	if n := authentications(); n != 8 {
		t.Fatalf("both Managers: got %d, want 8", n)
	}
	if err := b.M.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := authentications(); n != 8 {
		t.Errorf("after one Manager closed: got %d, want still 8", n)
	}
	authenticate(a, 1)
	if n := authentications(); n != 9 {
		t.Errorf("the other Manager after: got %d, want 9", n)
	}
}

// Two caches on one MeterProvider, under two Managers, add up in the
// cache's counters, and closing one (its Manager, then it) takes nothing
// away from them; the gauge stays 1 while the caches left are on.
func TestTwoCachesOnOneMeterProvider(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	a := sessiontest.New(t, sessiontest.Options{Addr: redisAddr, Cache: &store.CacheOptions{}}, sessionkit.WithMeterProvider(mp))
	b := sessiontest.New(t, sessiontest.Options{Addr: redisAddr, Cache: &store.CacheOptions{}}, sessionkit.WithMeterProvider(mp))
	for _, f := range []*sessiontest.Fixture{a, b} {
		res := f.Login(t, uuid.New())
		for range 3 {
			if _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func() (requests, on int64) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		hits, _ := point(rm, "sessionkit.cache.hits", attribute.NewSet())
		misses, _ := point(rm, "sessionkit.cache.misses", attribute.NewSet())
		on, _ = point(rm, "sessionkit.cache.on", attribute.NewSet())
		return hits + misses, on
	}
	before, on := read()
	if before < 6 || on != 1 {
		t.Fatalf("both caches: %d hits and misses, on %d; want at least 6, and 1", before, on)
	}
	b.Close()
	if after, on := read(); after != before || on != 1 {
		t.Errorf("after one cache closed: %d hits and misses, on %d; want still %d, and 1", after, on, before)
	}
}

// unkeyedProvider is a MeterProvider of a type that cannot be a map key;
// hiddenUnkeyed is one whose type can, but not the value inside it.
type (
	unkeyedProvider struct {
		metric.MeterProvider
		tags []string
	}
	hiddenUnkeyed struct{ metric.MeterProvider }
)

// A MeterProvider of a type that cannot be a map key still works: each
// Manager and cache on it reports on its own, as before they shared.
func TestMeterProviderThatIsNoMapKey(t *testing.T) {
	ctx := t.Context()
	for name, wrap := range map[string]func(metric.MeterProvider) metric.MeterProvider{
		"its type":          func(mp metric.MeterProvider) metric.MeterProvider { return unkeyedProvider{mp, []string{"x"}} },
		"a value inside it": func(mp metric.MeterProvider) metric.MeterProvider { return hiddenUnkeyed{unkeyedProvider{mp, nil}} },
	} {
		t.Run(name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := wrap(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
			f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr, Cache: &store.CacheOptions{}}, sessionkit.WithMeterProvider(mp))
			res := f.Login(t, uuid.New())
			if _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
				t.Fatal(err)
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err != nil {
				t.Fatal(err)
			}
			if n, _ := point(rm, "sessionkit.authentications", attribute.NewSet(attribute.String("sessionkit.outcome", "ok"))); n != 1 {
				t.Errorf("sessionkit.authentications{ok}: got %d, want 1", n)
			}
			if err := f.M.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			f.Close()
		})
	}
}
