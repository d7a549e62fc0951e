package sessionkit_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// goroutinesDown waits up to timeout for the goroutines to fall to want or
// below, and returns how many there are.
func goroutinesDown(want int, timeout time.Duration) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(timeout); n > want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestNewFailureLeaksNoGoroutine: a New that fails after starting the
// hooks' workers gave the caller no Manager to Close them with: each
// failed call left two goroutines behind.
func TestNewFailureLeaksNoGoroutine(t *testing.T) {
	st, err := store.NewRedis(backends[0].Client, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := goroutinesDown(0, 0)
	for range 20 {
		_, err := sessionkit.New(st, sessionkit.WithHook(func(context.Context, sessionkit.Event) {}),
			sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{})) // no issuer
		if !errors.Is(err, sessionkit.ErrInvalid) {
			t.Fatalf("New: %v, want ErrInvalid", err)
		}
	}
	if after := goroutinesDown(before, 2*time.Second); after > before {
		t.Errorf("goroutines: %d after 20 failed New calls, %d before", after, before)
	}
}

// stuckDevice is an Enricher whose Device returns only when release is
// closed: a parser stuck on some input, or one waiting on a remote service.
// With when set, it is stuck only while when holds.
type stuckDevice struct {
	release chan struct{}
	when    *atomic.Bool
}

func (s stuckDevice) Device(string) sessionkit.Device {
	if s.when == nil || s.when.Load() {
		<-s.release
	}
	return sessionkit.Device{Label: "ok"}
}
func (stuckDevice) Locate(context.Context, netip.Addr) sessionkit.Location {
	return sessionkit.Location{}
}
func (stuckDevice) Locates() bool { return false }

// TestStuckEnricherGoroutinesBounded: each enrichment is bounded in time,
// so sign-ins go on past a stuck Enricher; the goroutines it leaves
// running are bounded too. Before, each sign-in left one more, until the
// process ran out of memory.
func TestStuckEnricherGoroutinesBounded(t *testing.T) {
	release := make(chan struct{})
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client},
		sessionkit.WithEnricher(stuckDevice{release: release}), sessionkit.WithEnrichTimeout(time.Millisecond))
	before := goroutinesDown(0, 0)
	const logins = 400
	for range logins {
		f.Login(t, uuid.New())
	}
	if grown := runtime.NumGoroutine() - before; grown > 300 {
		t.Errorf("%d goroutines left running by %d sign-ins with a stuck Enricher", grown, logins)
	}
	close(release)
	if after := goroutinesDown(before, 5*time.Second); after > before {
		t.Errorf("goroutines: %d once the Enricher returned, %d before", after, before)
	}
}

// TestCancelledCallIsNoStoreFailure: a call whose caller went away (a
// client that hung up cancels its request's context) is not a failure of
// Redis: sessionkit.store.errors, which operators alert on, does not count
// it, and it writes nothing.
func TestCancelledCallIsNoStoreFailure(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client},
		sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	login := f.Login(t, uuid.New())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.M.Authenticate(ctx, login.Token, netip.MustParseAddr(sessiontest.LoginIP)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate: %v, want context.Canceled", err)
	}
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: login.Session.ID, UserID: login.Session.UserID, Reason: "user_revoked"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("RevokeSession: %v, want context.Canceled", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"peek", "revoke"} {
		if n, _ := point(rm, "sessionkit.store.errors", attribute.NewSet(attribute.String("sessionkit.operation", op))); n != 0 {
			t.Errorf("sessionkit.store.errors{%s}: %d, want 0", op, n)
		}
	}
	if _, err := f.M.Authenticate(t.Context(), login.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
		t.Errorf("after a cancelled revocation: %v, want the session active", err)
	}
}

// TestCancelledSignInIsNoEnricherTimeout: an Enricher's timeout is logged
// once per Manager. A sign-in whose caller hung up ended the enrichment
// too, and was logged as that timeout, so that an Enricher stuck for real
// afterwards was never logged.
func TestCancelledSignInIsNoEnricherTimeout(t *testing.T) {
	var logs logtest.Buffer
	release := make(chan struct{})
	defer close(release)
	var stuck atomic.Bool
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client}, sessionkit.WithLogger(logs.Logger()),
		sessionkit.WithEnricher(stuckDevice{release: release, when: &stuck}), sessionkit.WithEnrichTimeout(50*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateSession with a cancelled context: %v", err)
	}
	if n := logs.Count("reason=timeout"); n != 0 {
		t.Errorf("a cancelled sign-in was logged as the Enricher's timeout:\n%s", logs.String())
	}
	stuck.Store(true)
	if res := f.Login(t, uuid.New()); res.Session.Device.Label != "Unknown device" {
		t.Fatalf("device %+v, want Unknown device after the timeout", res.Session.Device)
	}
	if n := logs.Count("reason=timeout"); n != 1 {
		t.Errorf("the Enricher's real timeout: %d log lines, want 1:\n%s", n, logs.String())
	}
}

// TestRepeatedCloseLeavesNoWaiters: a Close whose deadline passes while a
// hook is stuck returns an error, and the app may call it again. Each call
// started a goroutine waiting for the hooks, left behind while the hook
// stayed stuck; now every call waits on one.
func TestRepeatedCloseLeavesNoWaiters(t *testing.T) {
	release := make(chan struct{})
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client},
		sessionkit.WithHook(func(context.Context, sessionkit.Event) { <-release }))
	f.Login(t, uuid.New())
	before := runtime.NumGoroutine()
	for range 50 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		if err := f.M.Close(ctx); err == nil {
			t.Fatal("Close with a stuck hook: nil error")
		}
		cancel()
	}
	if grown := runtime.NumGoroutine() - before; grown > 2 {
		t.Errorf("50 timed-out Close calls left %d more goroutines, want at most the one waiter", grown)
	}
	close(release)
	if err := f.M.Close(t.Context()); err != nil {
		t.Errorf("Close once the hook returned: %v", err)
	}
}

// TestNewOverAClosedCache: a closed Cache goes on as a Store, straight to
// Redis, so a Manager may be made over it; that registered it with the
// MeterProvider again, for good: held for ever, and, being off, it held
// sessionkit.cache.on at 0 for the provider's live caches.
func TestNewOverAClosedCache(t *testing.T) {
	st, err := store.NewRedis(backends[0].Client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	// The default health check: at 50 ms, a loaded machine could drop the
	// live cache a moment before the collection, which then read it off.
	live, err := store.NewCache(st, store.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	sessiontest.WaitCache(t, live, "on", func(s store.CacheStats) bool { return s.On })
	a, err := sessionkit.New(live, sessionkit.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	closed, err := store.NewCache(st, store.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	b, err := sessionkit.New(closed, sessionkit.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	b.Close(context.Background())
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	if on, _ := point(rm, "sessionkit.cache.on", *attribute.EmptySet()); on != 1 {
		t.Errorf("sessionkit.cache.on = %d with the provider's one open cache on, want 1: the closed cache is reported", on)
	}
}
