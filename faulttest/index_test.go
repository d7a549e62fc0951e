package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/middleware"
)

// TestIndexKeyDeleted deletes one user's index key by hand (as an operator's
// mistake or a data loss would). Each of that user's sessions must then be
// refused as revoked by every command (through HTTP: 401 session_revoked),
// never served from the session key alone, while other users are untouched
// and the user can sign in again.
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

	keys, err := rediskey.New(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Del(ctx, keys.ForUser(alice).Index).Result(); err != nil || n != 1 {
		t.Fatalf("DEL index: got %d, %v; want 1 key deleted", n, err)
	}

	for i, s := range aliceSessions {
		id := s.Session.ID
		refusals := []struct {
			name string
			run  func(ctx context.Context) error
			want error
		}{
			{"authenticate", func(ctx context.Context) error {
				_, err := f.m.Authenticate(ctx, s.Token, testAddr)
				return err
			}, sessionkit.ErrRevoked},
			{"HTTP request", func(ctx context.Context) error {
				r, err := web.do(http.MethodGet, "/app/data", s.Token, "", nil)
				switch {
				case err != nil:
					return err
				case r.status == http.StatusUnauthorized && r.reason() == middleware.ReasonSessionRevoked:
					return sessionkit.ErrRevoked
				}
				return fmt.Errorf("got %d %q, want 401 session_revoked", r.status, r.reason())
			}, sessionkit.ErrRevoked},
			{"authenticate from a new address", func(ctx context.Context) error {
				_, err := f.m.Authenticate(ctx, s.Token, testAddr.Next())
				return err
			}, sessionkit.ErrRevoked},
			{"update activity", func(ctx context.Context) error {
				_, err := f.m.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: id, IPAddress: testIP})
				return err
			}, sessionkit.ErrRevoked},
			{"record provider", func(ctx context.Context) error {
				_, err := f.m.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: "schwab"})
				return err
			}, sessionkit.ErrRevoked},
			{"link refresh token", func(ctx context.Context) error {
				_, err := f.m.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: id, RefreshTokenID: "rt-1"})
				return err
			}, sessionkit.ErrRevoked},
			{"revoke", func(ctx context.Context) error {
				_, err := f.m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: alice, Reason: sessionkit.ReasonUserRevoked})
				return err
			}, sessionkit.ErrNotFound},
			{"get shows it revoked", func(ctx context.Context) error {
				got, err := f.m.UserSession(ctx, alice, id)
				if err != nil {
					return err
				}
				if st := got.StateAt(f.m.Now()); st != sessionkit.StateRevoked {
					return errors.New("state " + st.String())
				}
				return sessionkit.ErrRevoked
			}, sessionkit.ErrRevoked},
		}
		for _, tc := range refusals {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctx, reqTimeout)
				defer cancel()
				if err := tc.run(ctx); !errors.Is(err, tc.want) {
					t.Errorf("session %d: got %v, want %v", i, err, tc.want)
				}
			})
		}
	}

	if list, err := f.m.ListUserSessions(ctx, alice, sessionkit.ListOptions{}); err != nil || len(list) != 0 {
		t.Errorf("active sessions listed: got %d, %v; want none", len(list), err)
	}
	if err := f.auth(bobSession.Token); err != nil {
		t.Errorf("another user's session: got %v, want served", err)
	}

	// Signing in again rebuilds the index with the new session only.
	again := f.mustLogin(t, alice)
	if err := f.auth(again.Token); err != nil {
		t.Errorf("new session after the index was lost: got %v, want served", err)
	}
	for i, s := range aliceSessions {
		if err := f.auth(s.Token); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("old session %d after a new login: got %v, want ErrRevoked", i, err)
		}
	}
	// The lost index makes the old sessions inconsistent on purpose; what
	// must still hold is that no key lives forever.
	checkTTLs(t, rdb, f.prefix)
}
