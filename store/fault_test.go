package store_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// ownServer gives a test its own redis-server, for faults that would disturb others.
// Its client does not retry, and gives up dialing after 200 ms.
func ownServer(t *testing.T, opts redistest.Options) (*redistest.Server, *sessiontest.Fixture) {
	t.Helper()
	srv := redistest.Start(t, opts)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return srv, sessiontest.New(t, sessiontest.Options{Client: c, RealTime: true})
}

func TestRestartRecovers(t *testing.T) {
	srv, f := ownServer(t, redistest.Options{AppendOnly: true})
	m := f.M
	ctx := context.Background()
	user := uuid.New()
	res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: gone.Session.ID, UserID: user, Reason: "logout"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted server has an empty script cache: Script.Run reloads it.
	if _, err := m.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if _, err := m.Authenticate(ctx, gone.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("revoked session after restart: got %v, want ErrRevoked", err)
	}
	if _, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"}); err != nil {
		t.Fatalf("login after restart: %v", err)
	}
}

func TestUnavailableWhenDown(t *testing.T) {
	srv, f := ownServer(t, redistest.Options{})
	m := f.M
	ctx := context.Background()
	user := uuid.New()
	res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Session.ID
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"CreateSession": func() error {
			_, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"})
			return err
		},
		"Authenticate": func() error { _, err := m.Authenticate(ctx, res.Token, netip.Addr{}); return err },
		"RevokeSession": func() error {
			_, err := m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user, Reason: "x"})
			return err
		},
		"RevokeAllUserSessions": func() error {
			_, err := m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "x"})
			return err
		},
		"UpdateSessionActivity": func() error {
			_, err := m.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: id})
			return err
		},
		"RecordProviderAccess": func() error {
			_, err := m.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: "schwab"})
			return err
		},
		"LinkRefreshTokenToSession": func() error {
			_, err := m.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: id, RefreshTokenID: "rt"})
			return err
		},
		"Session": func() error { _, err := m.Session(ctx, id); return err },
		"ListUserSessions": func() error {
			_, err := m.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
			return err
		},
		"Events":       func() error { _, err := m.Events(ctx, user, sessionkit.EventQuery{}); return err },
		"SetUserLimit": func() error { return m.SetUserLimit(ctx, user, 3) },
		"UserLimit":    func() error { _, err := m.UserLimit(ctx, user); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, sessionkit.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The calls above each failed to dial. Once as many dials have failed as
	// the pool has connections (10 per GOMAXPROCS: fewer than these calls
	// with one CPU), go-redis answers with the last dial error and redials
	// in the background once a second, so the Manager recovers within about
	// a second of the restart, not necessarily at once.
	var last error
	redistest.WaitFor(10*time.Second, func() error {
		_, last = m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"})
		if errors.Is(last, sessionkit.ErrUnavailable) {
			return last // only this may last a little past the restart
		}
		return nil
	})
	if err := last; err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestOutOfMemoryWritesNothing(t *testing.T) {
	_, f := ownServer(t, redistest.Options{})
	c, m := f.Client, f.M
	ctx := context.Background()
	user := uuid.New()
	res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", UserAgent: sessiontest.ChromeMac})
	if err != nil {
		t.Fatal(err)
	}
	before := f.Dump(t)
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil { // below what is used: every deny-oom write fails
		t.Fatal(err)
	}
	defer c.ConfigSet(ctx, "maxmemory", "0")
	_, err = m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", UserAgent: sessiontest.ChromeMac})
	if !errors.Is(err, sessionkit.ErrUnavailable) || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("login under OOM: got %v, want ErrUnavailable (OOM)", err)
	}
	_, err = m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "x"})
	if !errors.Is(err, sessionkit.ErrUnavailable) {
		t.Fatalf("revoke all under OOM: got %v, want ErrUnavailable", err)
	}
	// Validation still works, throttled or not: an activity write that the
	// server refuses is skipped, and a good session is served.
	if _, err := m.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
		t.Fatalf("authenticate under OOM: %v", err)
	}
	r, err := m.Authenticate(ctx, res.Token, netip.MustParseAddr("198.51.100.9")) // an IP change wants a write
	if err != nil || r.Written {
		t.Fatalf("authenticate with a due write under OOM: %+v, %v", r, err)
	}
	if d := sessiontest.Diff(before, f.Dump(t)); len(d) > 0 {
		t.Errorf("keys under OOM: got %v, want none changed", d)
	}
}
