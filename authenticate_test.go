package sessionkit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

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
