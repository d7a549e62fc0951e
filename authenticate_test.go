package sessionkit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/token"
)

// peekStore is a Peeker holding one session; every other Store method
// panics (nil embedded interface), so a test fails if Authenticate writes.
type peekStore struct {
	Store
	pk Peeked
}

func (p *peekStore) Peek(_ context.Context, id uuid.UUID) (Peeked, error) {
	if id != p.pk.Session.ID {
		return Peeked{}, ErrNotFound
	}
	return p.pk, nil
}

// TestAuthenticateAllocs checks that the throttled request, which
// Authenticate answers from one Peek, allocates nothing of its own.
func TestAuthenticateAllocs(t *testing.T) {
	id, err := rediskey.NewSessionID(uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	tok, hash, err := token.New(id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	ip := netip.MustParseAddr("203.0.113.7")
	st := &peekStore{pk: Peeked{
		Session: Session{
			ID: id, UserID: uuid.New(), UserAgent: "ua", IPAddress: ip, LastIPAddress: ip,
			CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour),
		},
		TokenHash: hash, Indexed: true,
	}}
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
