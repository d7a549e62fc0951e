package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
)

// TestIndexKeyDeleted deletes one user's hash of active sessions by hand
// (as an operator's mistake or a data loss would). A session is active only
// as a field of that hash, so each of that user's sessions must then be
// refused by every command (through HTTP: 401 no_session), never served from
// a stale copy, while other users are untouched and the user can sign in
// again.
func TestIndexKeyDeleted(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	f := newFixture(t, rdb)
	web := newApp(t, f, appOptions{})
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	var aliceSessions []sessionkit.CreateSessionResult
	for range 3 {
		aliceSessions = append(aliceSessions, f.mustLogin(t, alice))
	}
	bobSession := f.mustLogin(t, bob)

	keys := f.KeyNames(t)
	if n, err := rdb.Del(ctx, keys.ForUser(alice).Active).Result(); err != nil || n != 1 {
		t.Fatalf("DEL active sessions: got %d, %v; want 1 key deleted", n, err)
	}

	for i, s := range aliceSessions {
		id := s.Session.ID
		refusals := []struct {
			name string
			run  func(ctx context.Context) error
		}{
			{"authenticate", func(ctx context.Context) error {
				_, err := f.M.Authenticate(ctx, s.Token, testAddr)
				return err
			}},
			{"HTTP request", func(ctx context.Context) error {
				r, err := web.do(http.MethodGet, "/app/data", s.Token, "", nil)
				switch {
				case err != nil:
					return err
				case r.status == http.StatusUnauthorized && r.reason() == middleware.ReasonNoSession:
					return sessionkit.ErrNotFound
				}
				return fmt.Errorf("got %d %q, want 401 no_session", r.status, r.reason())
			}},
			{"authenticate from a new address", func(ctx context.Context) error {
				_, err := f.M.Authenticate(ctx, s.Token, testAddr.Next())
				return err
			}},
			{"update activity", func(ctx context.Context) error {
				_, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: id, IPAddress: testIP})
				return err
			}},
			{"record provider", func(ctx context.Context) error {
				_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: "schwab"})
				return err
			}},
			{"link refresh token", func(ctx context.Context) error {
				_, err := f.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: id, RefreshTokenID: "rt-1"})
				return err
			}},
			{"revoke", func(ctx context.Context) error {
				_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: alice, Reason: sessionkit.ReasonUserRevoked})
				return err
			}},
			{"get", func(ctx context.Context) error {
				_, err := f.M.UserSession(ctx, alice, id)
				return err
			}},
		}
		for _, tc := range refusals {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctx, reqTimeout)
				defer cancel()
				if err := tc.run(ctx); !errors.Is(err, sessionkit.ErrNotFound) {
					t.Errorf("session %d: got %v, want %v", i, err, sessionkit.ErrNotFound)
				}
			})
		}
	}

	if list, err := f.M.ListUserSessions(ctx, alice, sessionkit.ListOptions{}); err != nil || len(list) != 0 {
		t.Errorf("active sessions listed: got %d, %v; want none", len(list), err)
	}
	if err := f.auth(bobSession.Token); err != nil {
		t.Errorf("another user's session: got %v, want served", err)
	}

	// Signing in again works, and the index is rebuilt to match.
	again := f.mustLogin(t, alice)
	if err := f.auth(again.Token); err != nil {
		t.Errorf("new session after the index was lost: got %v, want served", err)
	}
	for i, s := range aliceSessions {
		if err := f.auth(s.Token); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("old session %d after a new login: got %v, want ErrNotFound", i, err)
		}
	}
	if n, err := rdb.ZCount(ctx, keys.ForUser(alice).Index, "0", "+inf").Result(); err != nil || n != 1 {
		t.Errorf("deadline index after a new login: got %d members, %v; want 1", n, err)
	}
	sessiontest.CheckTTLs(t, rdb, f.Prefix)
}

// indexLimit is the session limit of the deadline-index tests.
const indexLimit = 3

// userAtLimit is a user signed in indexLimit times, one second apart on a
// fake clock, so that the order of evictions is known.
type userAtLimit struct {
	rdb      *redis.Client
	f        *fixture
	clock    *redistest.Clock
	id       uuid.UUID
	keys     rediskey.User
	sessions []sessionkit.CreateSessionResult
}

func atLimit(t *testing.T) userAtLimit {
	t.Helper()
	u := userAtLimit{rdb: sharedServer(t).Client(t), clock: redistest.NewClock(), id: uuid.New()}
	u.f = newFixture(t, u.rdb, sessionkit.WithLimit(sessionkit.FixedLimit(indexLimit)), sessionkit.WithClock(u.clock.Now))
	for range indexLimit {
		u.sessions = append(u.sessions, u.f.mustLogin(t, u.id))
		u.clock.Advance(time.Second)
	}
	keys, err := rediskey.New(u.f.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	u.keys = keys.ForUser(u.id)
	return u
}

// TestDeadlineIndexDeleted deletes one user's deadline index (the ZSET that
// orders the active sessions for expiry and evictions). The sessions and
// their standing live in the hash of active sessions, so they stay valid;
// the next write rebuilds the index from that hash, and the session limit
// still holds: a login past it evicts the oldest session, not one at random
// and not none.
func TestDeadlineIndexDeleted(t *testing.T) {
	u := atLimit(t)
	rdb, f, sessions := u.rdb, u.f, u.sessions
	ctx := context.Background()
	if n, err := rdb.Del(ctx, u.keys.Index).Result(); err != nil || n != 1 {
		t.Fatalf("DEL index: got %d, %v; want 1 key deleted", n, err)
	}
	for i, s := range sessions {
		if err := f.auth(s.Token); err != nil {
			t.Errorf("session %d with the index lost: got %v, want served", i, err)
		}
	}
	next := f.mustLogin(t, u.id)
	if len(next.Evicted) != 1 || next.Evicted[0] != sessions[0].Session.ID {
		t.Fatalf("login past the limit with the index lost: evicted %v, want the oldest %v", next.Evicted, sessions[0].Session.ID)
	}
	if err := f.auth(sessions[0].Token); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Errorf("evicted session: got %v, want ErrRevoked", err)
	}
	for i, s := range append(sessions[1:], next) {
		if err := f.auth(s.Token); err != nil {
			t.Errorf("session %d after the rebuild: got %v, want served", i+1, err)
		}
	}
	if n, err := rdb.ZCount(ctx, u.keys.Index, "0", "+inf").Result(); err != nil || n != indexLimit {
		t.Errorf("rebuilt index: got %d members, %v; want %d", n, err, indexLimit)
	}
	sessiontest.CheckTTLs(t, rdb, f.Prefix)
}

// TestDeadlineIndexStrayMember adds a member to a user's deadline index by
// hand that names no active session, due after every real one. Left there,
// it would count toward the limit and make a login evict two real sessions;
// the next login rebuilds the index from the active sessions instead, and
// evicts only the oldest.
func TestDeadlineIndexStrayMember(t *testing.T) {
	u := atLimit(t)
	rdb, f, sessions := u.rdb, u.f, u.sessions
	ctx := context.Background()
	stray := redis.Z{Score: float64(u.clock.Now().Add(365 * 24 * time.Hour).UnixMilli()), Member: "00000000000000ff"}
	if err := rdb.ZAdd(ctx, u.keys.Index, stray).Err(); err != nil {
		t.Fatal(err)
	}
	next := f.mustLogin(t, u.id)
	if len(next.Evicted) != 1 || next.Evicted[0] != sessions[0].Session.ID {
		t.Fatalf("login past the limit with a stray index member: evicted %v, want only the oldest %v", next.Evicted, sessions[0].Session.ID)
	}
	indexed, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: u.keys.Index, Start: "0", Stop: "+inf", ByScore: true}).Result()
	if err != nil {
		t.Fatal(err)
	}
	active, err := rdb.HKeys(ctx, u.keys.Active).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(indexed)
	slices.Sort(active)
	if !slices.Equal(indexed, active) || len(active) != indexLimit {
		t.Errorf("after the login: index %v, active sessions %v; want the same %d", indexed, active, indexLimit)
	}
	list, err := f.M.ListUserSessions(ctx, u.id, sessionkit.ListOptions{})
	if err != nil || len(list) != indexLimit {
		t.Errorf("listed: %d sessions, %v; want %d", len(list), err, indexLimit)
	}
}
