package store_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	contract "github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/internal/token"
)

// collidingSession stores a session of bob's under alice's tag, as a
// colliding tag would, at the fixture's time, and returns its id and token.
func collidingSession(t *testing.T, f *sessiontest.Fixture, alice, bob uuid.UUID) (uuid.UUID, string) {
	t.Helper()
	id, err := sessionid.New(alice)
	if err != nil {
		t.Fatal(err)
	}
	tok, hash, err := token.New(id)
	if err != nil {
		t.Fatal(err)
	}
	now := f.M.Now()
	if _, _, err := f.Store.Create(t.Context(), contract.Call{Now: now, Policy: &contract.Policy{Retention: time.Hour, StreamMax: 100}},
		sessionkit.Session{ID: id, UserID: bob, IPAddress: netip.MustParseAddr("198.51.100.1"),
			LastIPAddress: netip.MustParseAddr("198.51.100.1"), CreatedAt: now, LastActivityAt: now,
			ExpiresAt: now.Add(time.Minute), Device: sessionkit.Device{Label: "Unknown device"}},
		contract.Credentials{TokenHash: hash}, contract.Limit{Max: 1}); err != nil {
		t.Fatal(err)
	}
	return id, tok
}

// Two users whose 60-bit tags collide share one slot's keys. Simulate it by
// storing bob's session under alice's tag, then check that alice's logins,
// evictions and sign-out-everywhere never touch it.
func TestTagCollisionKeepsUsersApart(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(2)))
		alice, bob := uuid.New(), uuid.New()
		first := f.Login(t, alice)

		f.Clock.Advance(time.Millisecond)
		bobID, bobToken := collidingSession(t, f, alice, bob)
		if _, err := f.M.Authenticate(ctx, first.Token, netip.Addr{}); err != nil {
			t.Fatalf("bob's login (limit 1) evicted alice's session: %v", err)
		}

		// alice at her limit of 2: her own oldest goes, never bob's.
		f.Clock.Advance(time.Millisecond)
		f.Login(t, alice)
		f.Clock.Advance(time.Millisecond)
		third := f.Login(t, alice)
		if len(third.Evicted) != 1 || third.Evicted[0] != first.Session.ID {
			t.Fatalf("eviction: got %v, want alice's first session %v", third.Evicted, first.Session.ID)
		}
		if _, err := f.M.Authenticate(ctx, bobToken, netip.Addr{}); err != nil {
			t.Fatalf("alice's eviction reached bob: %v", err)
		}
		list, _ := f.M.ListUserSessions(ctx, alice, sessionkit.ListOptions{IncludeRevoked: true})
		for _, s := range list {
			if s.UserID != alice {
				t.Fatalf("alice's list holds %v's session", s.UserID)
			}
		}

		res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: alice, Reason: "logout_everywhere"})
		if err != nil || res.Revoked != 2 {
			t.Fatalf("alice signs out everywhere: %+v, %v; want 2 revoked", res, err)
		}
		if _, err := f.M.Authenticate(ctx, bobToken, netip.Addr{}); err != nil {
			t.Fatalf("alice's sign-out-everywhere reached bob: %v", err)
		}
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: bobID, UserID: alice, Reason: "x"}); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("alice revoking bob's session by id: got %v, want ErrNotFound", err)
		}
		evs, err := f.M.Events(ctx, alice, sessionkit.EventQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.SessionID == bobID {
				t.Fatalf("alice's audit trail holds bob's event %+v", e)
			}
		}
		f.CheckTTLs(t)
	})
}

// TestOwnerRecordsOnlyOnceShared: a slot holding one user's sessions keeps
// no owner records; the first login of a second user into it records the
// owner of every active session, its own included.
func TestOwnerRecordsOnlyOnceShared(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		alice, bob := uuid.New(), uuid.New()
		a1, a2 := f.Login(t, alice), f.Login(t, alice)
		keys := f.KeyNames(t)
		own := keys.ForUser(alice).Owners
		if n, err := b.Client.Exists(ctx, own).Result(); err != nil || n != 0 {
			t.Fatalf("one user's slot: owner records exist (%d, %v), want none", n, err)
		}
		bobID, _ := collidingSession(t, f, alice, bob)
		got, err := b.Client.HGetAll(ctx, own).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			sessionid.Member(a1.Session.ID): alice.String(),
			sessionid.Member(a2.Session.ID): alice.String(),
			sessionid.Member(bobID):         bob.String(),
		}
		if len(got) != len(want) {
			t.Fatalf("owner records: got %v, want %v", got, want)
		}
		for m, o := range want {
			if got[m] != o {
				t.Errorf("owner of %s: got %q, want %q", m, got[m], o)
			}
		}
		a3 := f.Login(t, alice)
		if o, _ := b.Client.HGet(ctx, own, sessionid.Member(a3.Session.ID)).Result(); o != alice.String() {
			t.Errorf("a login into a shared slot: owner record %q, want %q", o, alice.String())
		}
		f.CheckTTLs(t)
	})
}
