package faulttest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// TestRedisOutOfMemory runs every command against a Redis that is out of
// memory under the noeviction policy. Login and every other write fail with
// ErrUnavailable (an HTTP login: 503 with no cookie) and leave every key
// exactly as it was (the scripts' first
// write is a deny-oom command, checked before anything changes). Existing
// sessions still validate: the hot path writes nothing while the activity
// throttle holds, and when it would write (a new address) the refused write
// leaves the session valid and unchanged; reads keep working.
func TestRedisOutOfMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{MaxMemoryPolicy: "noeviction"})
	rdb := srv.Client(t)
	f := newFixture(t, rdb)
	web := newApp(t, f, appOptions{})
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	var aliceSessions []sessionkit.CreateSessionResult
	for range 3 {
		aliceSessions = append(aliceSessions, f.mustLogin(t, alice))
	}
	bobSession := f.mustLogin(t, bob)
	a0 := aliceSessions[0]

	// A maxmemory far below what the server already uses: every deny-oom
	// command is refused from now on.
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.ConfigSet(context.Background(), "maxmemory", "0") })
	if err := rdb.Set(ctx, f.Prefix+"probe", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("SET on the full server: got %v, want an OOM error", err)
	}
	before := sessiontest.Dump(t, rdb, f.Prefix)

	refused := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"login of a user with sessions", func(ctx context.Context) error {
			_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: alice, IPAddress: testIP, UserAgent: testUA})
			return err
		}},
		{"login of a new user", func(ctx context.Context) error {
			_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: testIP, UserAgent: testUA})
			return err
		}},
		{"revoke", func(ctx context.Context) error {
			_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: a0.Session.ID, UserID: alice, Reason: sessionkit.ReasonUserRevoked})
			return err
		}},
		{"revoke all", func(ctx context.Context) error {
			_, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: alice, Reason: sessionkit.ReasonLogoutAll})
			return err
		}},
		{"record provider", func(ctx context.Context) error {
			_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: a0.Session.ID, ProviderName: "schwab"})
			return err
		}},
		{"link refresh token", func(ctx context.Context) error {
			_, err := f.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: a0.Session.ID, RefreshTokenID: "rt-1"})
			return err
		}},
	}
	// Through the HTTP layer: 503 with no cookie, and nothing written.
	for _, tc := range []struct {
		name, token string
	}{{"HTTP login", ""}, {"HTTP login carrying a session", a0.Token}} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			wantUnavailable(t, "POST /sessions", web.signIn(t, "alice", tc.token))
			if d := sessiontest.Diff(before, sessiontest.Dump(t, rdb, f.Prefix)); len(d) > 0 {
				t.Errorf("keys changed by a refused login: %v", d)
			}
		})
	}
	t.Run("served/HTTP request with an existing session", func(t *testing.T) {
		if r := web.mustDo(t, http.MethodGet, "/app/data", bobSession.Token, "", nil); r.status != http.StatusOK {
			t.Errorf("got %d %s, want 200", r.status, r.body)
		}
		if d := sessiontest.Diff(before, sessiontest.Dump(t, rdb, f.Prefix)); len(d) > 0 {
			t.Errorf("keys changed by a request: %v", d)
		}
	})
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, reqTimeout)
			defer cancel()
			if err := tc.run(ctx); !errors.Is(err, sessionkit.ErrUnavailable) {
				t.Errorf("got %v, want ErrUnavailable", err)
			}
			if d := sessiontest.Diff(before, sessiontest.Dump(t, rdb, f.Prefix)); len(d) > 0 {
				t.Errorf("keys changed by a refused write: %v", d)
			}
		})
	}

	served := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"authenticate each session", func(ctx context.Context) error {
			for _, s := range append(aliceSessions, bobSession) {
				res, err := f.M.Authenticate(ctx, s.Token, testAddr)
				if err != nil {
					return err
				}
				if res.Written || res.Session.ID != s.Session.ID {
					return errors.New("authenticate wrote or returned another session")
				}
			}
			return nil
		}},
		// A valid session stays valid when its activity cannot be recorded
		// (SECURITY-NOTES 19): served, with nothing written.
		{"authenticate from a new address", func(ctx context.Context) error {
			res, err := f.M.Authenticate(ctx, a0.Token, testAddr.Next())
			if err == nil && res.Written {
				err = errors.New("reported a write")
			}
			return err
		}},
		{"activity from a new address", func(ctx context.Context) error {
			res, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: a0.Session.ID, IPAddress: "198.51.100.20"})
			if err == nil && res.Written {
				err = errors.New("reported a write")
			}
			return err
		}},
		{"get", func(ctx context.Context) error {
			s, err := f.M.UserSession(ctx, alice, a0.Session.ID)
			if err == nil && s.StateAt(f.M.Now()) != sessionkit.StateActive {
				err = errors.New("session not active: " + s.StateAt(f.M.Now()).String())
			}
			return err
		}},
		{"list", func(ctx context.Context) error {
			list, err := f.M.ListUserSessions(ctx, alice, sessionkit.ListOptions{})
			if err == nil && len(list) != len(aliceSessions) {
				err = errors.New("list lost sessions")
			}
			return err
		}},
		{"events", func(ctx context.Context) error {
			_, err := f.M.Events(ctx, alice, sessionkit.EventQuery{})
			return err
		}},
	}
	for _, tc := range served {
		t.Run("served/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, reqTimeout)
			defer cancel()
			if err := tc.run(ctx); err != nil {
				t.Errorf("got %v, want success", err)
			}
			if d := sessiontest.Diff(before, sessiontest.Dump(t, rdb, f.Prefix)); len(d) > 0 {
				t.Errorf("keys changed by a call that must write nothing: %v", d)
			}
		})
	}

	// With memory back, everything works and the data is consistent.
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	res := f.mustLogin(t, alice)
	if err := f.auth(res.Token); err != nil {
		t.Errorf("authenticate after memory came back: got %v, want success", err)
	}
	st := checkStore(t, f, func(uuid.UUID) int { return sessionkit.DefaultLimit })
	if got, want := len(st.active), len(aliceSessions)+2; got != want {
		t.Errorf("active sessions after memory came back: got %d, want %d", got, want)
	}
	if len(st.revoked) != 0 {
		t.Errorf("revoked sessions: got %v, want none (every revocation was refused)", st.revoked)
	}
}
