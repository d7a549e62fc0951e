package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/sessionid"
)

type otherKey struct{}

func TestSessionContext(t *testing.T) {
	m := &Manager{}
	s := Session{ID: uuid.New(), UserAgent: "secret-ish user agent"}
	parent := context.WithValue(context.Background(), otherKey{}, "parent value")
	ctx := newContext(parent, m, s)

	got, ok := FromContext(ctx)
	if !ok || got.ID != s.ID || got.UserAgent != s.UserAgent {
		t.Fatalf("FromContext: got %v, %v", got.ID, ok)
	}
	if gm, ok := ManagerFromContext(ctx); !ok || gm != m {
		t.Fatalf("ManagerFromContext: got %p, %v; want %p", gm, ok, m)
	}
	if v := ctx.Value(otherKey{}); v != "parent value" {
		t.Fatalf("a parent's value: got %v", v)
	}

	// Wrapped again, the session is still found; a newer session wins.
	wrapped := context.WithValue(ctx, otherKey{}, "child value")
	if got, ok := FromContext(wrapped); !ok || got.ID != s.ID {
		t.Fatalf("FromContext through WithValue: got %v, %v", got.ID, ok)
	}
	s2 := Session{ID: uuid.New()}
	if got, _ := FromContext(newContext(wrapped, nil, s2)); got.ID != s2.ID {
		t.Fatalf("the innermost session: got %v, want %v", got.ID, s2.ID)
	}
	if _, ok := ManagerFromContext(newContext(wrapped, nil, s2)); ok {
		t.Fatal("ManagerFromContext: ok with a nil Manager")
	}

	// The session is a copy: changing s does not change the context's.
	s.UserAgent = "changed"
	if got, _ := FromContext(ctx); got.UserAgent == "changed" {
		t.Fatal("the context shares the caller's session")
	}

	// And each FromContext returns its own: a handler changing the list
	// of providers it got does not change what the next one reads.
	withProviders := newContext(parent, m, Session{ID: uuid.New(), ProvidersAccessed: []string{"schwab"}})
	first, _ := FromContext(withProviders)
	first.ProvidersAccessed[0] = "changed"
	if got, _ := FromContext(withProviders); got.ProvidersAccessed[0] != "schwab" {
		t.Fatalf("FromContext shares the context's providers: got %q", got.ProvidersAccessed)
	}

	if _, ok := FromContext(parent); ok {
		t.Fatal("FromContext: ok without a session")
	}
	if _, ok := ManagerFromContext(parent); ok {
		t.Fatal("ManagerFromContext: ok without a session")
	}
	if err := RecordProvider(parent, "p"); err != ErrNoSession {
		t.Fatalf("RecordProvider without a session: got %v", err)
	}

	// Printing the context names it and never prints the session.
	if str := fmt.Sprint(ctx); strings.Contains(str, "secret-ish") || !strings.HasPrefix(str, "context.Background.WithValue") {
		t.Fatalf("String: %q", str)
	}
}

// TestNewContextOnlyFromAuthenticate checks that Manager.NewContext takes
// only what its own Authenticate verified.
func TestNewContextOnlyFromAuthenticate(t *testing.T) {
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	st, tok := newPeekStore(t, now, netip.Addr{})
	id := st.s.ID
	m, err := New(st, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(st, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := m.Authenticate(ctx, tok, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, err := m.NewContext(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := FromContext(sctx); !ok || got.ID != id {
		t.Fatalf("FromContext: got %v, %v; want %v", got.ID, ok, id)
	}
	if got, ok := ManagerFromContext(sctx); !ok || got != m {
		t.Fatalf("ManagerFromContext: got %p, %v; want %p", got, ok, m)
	}
	forged := res
	forged.Session.ID, _ = sessionid.New(uuid.New())
	moved := res
	moved.Session.UserID = uuid.New()
	raised := res
	raised.Session.AAL = AAL3
	supported := res
	supported.Session.ImpersonatedBy = "support (carol)"
	refused := map[string]struct {
		m   *Manager
		ctx context.Context
		res UpdateSessionActivityResult
	}{
		"built by hand":                     {m, ctx, UpdateSessionActivityResult{Session: res.Session}},
		"another Manager's":                 {other, ctx, res},
		"with its session swapped":          {m, ctx, forged},
		"with its session given away":       {m, ctx, moved},
		"with its assurance level raised":   {m, ctx, raised},
		"with its session made a support's": {m, ctx, supported},
		"a nil parent":                      {m, nil, res},
	}
	for name, c := range refused {
		if got, err := c.m.NewContext(c.ctx, c.res); !errors.Is(err, ErrInvalid) || got != nil {
			t.Errorf("%s: got %v, %v; want ErrInvalid", name, got, err)
		}
	}
}

func TestNewContextNilParent(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a nil parent")
		}
	}()
	//lint:ignore SA1012 the nil parent is what is tested
	newContext(nil, nil, Session{})
}

// TestNewContextCancellation checks that the parent's deadline and
// cancellation reach the session context and the contexts derived from
// it, and that deriving one starts no goroutine (the context package finds
// the parent's cancelCtx through Value).
func TestNewContextCancellation(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.Background(), deadline)
	ctx := newContext(parent, nil, Session{})
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Fatalf("Deadline: got %v, %v", d, ok)
	}

	// A context the package cannot see through gets a goroutine per
	// derived context, until one of them is cancelled.
	before := runtime.NumGoroutine()
	var cancels []context.CancelFunc
	for range 100 {
		_, c := context.WithCancel(ctx)
		cancels = append(cancels, c)
	}
	after := runtime.NumGoroutine()
	for _, c := range cancels {
		c()
	}
	if after-before >= 100 {
		t.Errorf("WithCancel below the session context starts a goroutine: %d before, %d after 100 of them", before, after)
	}

	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the parent did not reach the child")
	}
	if ctx.Err() != context.Canceled || child.Err() != context.Canceled {
		t.Fatalf("Err: got %v and %v", ctx.Err(), child.Err())
	}
	if context.Cause(child) != context.Canceled {
		t.Fatalf("Cause: %v", context.Cause(child))
	}
}
