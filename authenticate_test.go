package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/token"
)

// peekStore holds one session for Peek; every other Store method panics
// (nil embedded interface), so a test fails if Authenticate writes.
type peekStore struct {
	Store
	s  Session
	pk backend.Peeked
}

func (p *peekStore) Attach(backend.Env) {}

func (p *peekStore) Peek(_ context.Context, id uuid.UUID) (Session, backend.Peeked, error) {
	if id != p.s.ID {
		return Session{}, backend.Peeked{}, ErrNotFound
	}
	return p.s, p.pk, nil
}

// newPeekStore returns a peekStore holding one active session, last
// used from ip at now, and the session's token.
func newPeekStore(t *testing.T, now time.Time, ip netip.Addr) (*peekStore, string) {
	t.Helper()
	id, err := sessionid.New(uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	tok, hash, err := token.New(id)
	if err != nil {
		t.Fatal(err)
	}
	return &peekStore{
		s: Session{
			ID: id, UserID: uuid.New(), UserAgent: "ua", IPAddress: ip, LastIPAddress: ip,
			CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour),
		},
		pk: backend.Peeked{TokenHash: hash, Indexed: true},
	}, tok
}

// TestAuthenticateAllocs checks that the throttled request, which
// Authenticate answers from one Peek, allocates nothing of its own.
func TestAuthenticateAllocs(t *testing.T) {
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	ip := netip.MustParseAddr("203.0.113.7")
	st, tok := newPeekStore(t, now, ip)
	id := st.s.ID
	m, err := New(st, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	res, err := m.Authenticate(ctx, tok, ip)
	if err != nil || res.Session.ID != id || res.Written {
		t.Fatalf("Authenticate: %+v, %v", res, err)
	}
	wrong := []byte(tok)
	wrong[len(tok)-token.SecretBytes] ^= 'A' ^ 'B' // another secret, or a malformed one: ErrNotFound either way
	if _, err := m.Authenticate(ctx, string(wrong), ip); err != ErrNotFound {
		t.Fatalf("a wrong secret: got %v, want ErrNotFound", err)
	}
	if n := testing.AllocsPerRun(100, func() { m.Authenticate(ctx, tok, ip) }); n != 0 {
		t.Errorf("Authenticate: %v allocations, want 0", n)
	}
}

// failingPeek is a store whose Peek fails for want of the store.
type failingPeek struct{ Store }

func (failingPeek) Attach(backend.Env) {}

func (failingPeek) Peek(context.Context, uuid.UUID) (Session, backend.Peeked, error) {
	return Session{}, backend.Peeked{}, fmt.Errorf("%w: peek: connection refused", ErrUnavailable)
}

// TestAuthenticateCountsStoreFailures checks that a read that fails for
// want of the store is counted (sessionkit.store.errors, operation peek)
// when nothing traces the request, as when something does.
func TestAuthenticateCountsStoreFailures(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := New(failingPeek{}, WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	id, err := sessionid.New(uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := token.New(id)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := m.Authenticate(t.Context(), tok, netip.Addr{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Authenticate: got %v, want ErrUnavailable", err)
		}
	}
	if got := peekErrors(t, reader); got != 2 {
		t.Errorf("sessionkit.store.errors{peek}: got %d, want 2", got)
	}
}

// peekErrors is the count of sessionkit.store.errors{peek} reader holds.
func peekErrors(t *testing.T, reader *sdkmetric.ManualReader) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	want := attribute.NewSet(attribute.String(attrOperation, "peek"))
	var got int64
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if sum, ok := mt.Data.(metricdata.Sum[int64]); ok && mt.Name == "sessionkit.store.errors" {
				for _, p := range sum.DataPoints {
					if p.Attributes.Equals(&want) {
						got += p.Value
					}
				}
			}
		}
	}
	return got
}

// freshFailing answers Peek from memory (an Entry, as a store.Cache does)
// and fails the fresh read.
type freshFailing struct{ *peekStore }

func (freshFailing) PeekFresh(context.Context, uuid.UUID) (Session, backend.Peeked, error) {
	return Session{}, backend.Peeked{}, fmt.Errorf("%w: peek: connection refused", ErrUnavailable)
}

// TestPeekFreshFailureIsCounted: the fresh read a secret unknown to the
// cache's entry costs is a store read like Peek: when it fails for want of
// the store, sessionkit.store.errors{peek} counts it, as it counts Peek's.
func TestPeekFreshFailureIsCounted(t *testing.T) {
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	ip := netip.MustParseAddr("203.0.113.7")
	st, _ := newPeekStore(t, now, ip)
	st.pk.Entry = struct{}{}
	reader := sdkmetric.NewManualReader()
	m, err := New(freshFailing{st}, WithClock(func() time.Time { return now }),
		WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	other, _, err := token.New(st.s.ID) // the session's id, another secret
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(t.Context(), other, ip); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Authenticate: %v, want ErrUnavailable", err)
	}
	if got := peekErrors(t, reader); got != 1 {
		t.Errorf("sessionkit.store.errors{peek} after a failed fresh read: %d, want 1", got)
	}
}
