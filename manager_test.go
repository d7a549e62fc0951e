package sessionkit_test

// The Manager's behaviour through the public API, on a Redis store: the
// commands, limits, expiry, renewal and events. Every test runs on a
// standalone server and on a three-master Cluster (main_test.go). The
// store's own tests (key layout, scripts, cache, faults) are in store/.

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// checkIndex fails the test unless the user's index lists exactly their
// active sessions, and every retained session of theirs is listed.
func checkIndex(t *testing.T, f *sessiontest.Fixture, user uuid.UUID) []sessionkit.Session {
	t.Helper()
	ctx := t.Context()
	list, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
	if err != nil {
		t.Fatal(err)
	}
	keys := f.KeyNames(t)
	u := keys.ForUser(user)
	active, err := f.Client.HKeys(ctx, u.Active).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Sessions' deadlines are above zero; the recent sign-ins below.
	indexed, err := f.Client.ZRangeArgs(ctx, redis.ZRangeArgs{Key: u.Index, Start: "0", Stop: "+inf", ByScore: true}).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(active)
	slices.Sort(indexed)
	if !slices.Equal(active, indexed) {
		t.Errorf("index %v, active sessions %v", indexed, active)
	}
	retained, err := f.Client.HLen(ctx, u.Retained).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(active) + int(retained); n != len(all) {
		t.Errorf("stored sessions: got %d, want %d (listed with revoked)", n, len(all))
	}
	for _, s := range list {
		if s.StateAt(f.M.Now()) != sessionkit.StateActive {
			t.Errorf("listed session %s is %v", s.ID, s.StateAt(f.M.Now()))
		}
	}
	return list
}

func TestCreateAndAuthenticate(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		user := uuid.New()
		res := f.Login(t, user)
		s := res.Session
		if s.UserID != user || s.Device.Label == "" || s.UserAgent != sessiontest.ChromeMac {
			t.Fatalf("session: %+v", s)
		}
		if got, want := s.ExpiresAt.Sub(s.CreatedAt), 30*24*time.Hour; got != want {
			t.Errorf("lifetime: got %v, want %v", got, want)
		}
		if !strings.HasPrefix(res.Token, s.ID.String()+".") {
			t.Fatalf("token does not start with the session id")
		}
		got, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr("203.0.113.7"))
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if got.Session.ID != s.ID || got.Session.UserID != user || got.Written || got.IPChanged {
			t.Fatalf("Authenticate: got %+v", got)
		}
		if got.Session.UserAgent != sessiontest.ChromeMac || got.Session.Device != s.Device || got.Session.IPAddress != s.IPAddress {
			t.Errorf("authenticated session differs from created: %+v vs %+v", got.Session, s)
		}
		one, err := f.M.UserSession(ctx, user, s.ID)
		if err != nil || one.ID != s.ID || !one.ExpiresAt.Equal(s.ExpiresAt) || !one.CreatedAt.Equal(s.CreatedAt) {
			t.Fatalf("UserSession: %+v, %v", one, err)
		}
		if _, err := f.M.UserSession(ctx, uuid.New(), s.ID); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("foreign UserSession: got %v, want ErrNotFound", err)
		}
		f.CheckTTLs(t)
		checkIndex(t, f, user)
	})
}

func TestRefusals(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		user := uuid.New()
		victim := f.Login(t, user)
		before, err := f.M.Session(ctx, victim.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(2 * time.Minute) // past the throttle: a wrong secret must still not touch
		wrong := victim.Token[:37] + strings.Repeat("A", 43)
		unknown := strings.Replace(victim.Token, victim.Token[30:36], "000000", 1)
		for name, tok := range map[string]string{"wrong secret": wrong, "unknown id": unknown, "garbage": "x", "empty": ""} {
			if _, err := f.M.Authenticate(ctx, tok, netip.MustParseAddr("198.51.100.1")); !errors.Is(err, sessionkit.ErrNotFound) {
				t.Errorf("%s: got %v, want ErrNotFound", name, err)
			}
		}
		after, err := f.M.Session(ctx, victim.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !after.LastActivityAt.Equal(before.LastActivityAt) || after.LastIPAddress != before.LastIPAddress || after.IPChangeCount != 0 {
			t.Errorf("victim touched: before %+v after %+v", before, after)
		}
		if _, err := f.M.Authenticate(ctx, victim.Token, netip.Addr{}); err != nil {
			t.Errorf("victim's own token: %v", err)
		}

		// Revoked.
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: victim.Session.ID, UserID: user, Reason: "logout"}); err != nil {
			t.Fatal(err)
		}
		_, err = f.M.Authenticate(ctx, victim.Token, netip.Addr{})
		var re *sessionkit.RevokedError
		if !errors.As(err, &re) || re.Reason != "logout" || !re.At.Equal(f.M.Now()) {
			t.Errorf("revoked: got %v, want RevokedError(logout)", err)
		}
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: victim.Session.ID, UserID: user, Reason: "again"}); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("second revoke: got %v, want ErrNotFound", err)
		}
	})
}

func TestRevokeIsOwnerScoped(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		alice, mallory := uuid.New(), uuid.New()
		a := f.Login(t, alice)
		f.Login(t, mallory)
		_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: a.Session.ID, UserID: mallory, Reason: "x"})
		if !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("foreign revoke: got %v, want ErrNotFound", err)
		}
		unknown, _ := uuid.Parse(a.Session.ID.String()[:24] + "000000000000")
		_, err = f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: unknown, UserID: alice, Reason: "x"})
		if !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("unknown revoke: got %v, want ErrNotFound", err)
		}
		if _, err := f.M.Authenticate(ctx, a.Token, netip.Addr{}); err != nil {
			t.Fatalf("alice's session after foreign revoke: %v", err)
		}
	})
}

func TestLimitEvictsUnderConcurrency(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(5)))
		user := uuid.New()
		const n = 50
		results := make([]sessionkit.CreateSessionResult, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				r, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", UserAgent: sessiontest.ChromeMac})
				results[i] = r
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		active, revoked, evictedTotal := 0, 0, 0
		for _, r := range results {
			evictedTotal += len(r.Evicted)
			_, err := f.M.Authenticate(ctx, r.Token, netip.Addr{})
			var re *sessionkit.RevokedError
			switch {
			case err == nil:
				active++
			case errors.As(err, &re) && re.Reason == sessionkit.ReasonLimitExceeded:
				revoked++
			default:
				t.Errorf("session state: %v", err)
			}
		}
		if active != 5 || revoked != 45 || evictedTotal != 45 {
			t.Fatalf("got %d active, %d revoked, %d evicted; want 5, 45, 45", active, revoked, evictedTotal)
		}
		list := checkIndex(t, f, user)
		if len(list) != 5 {
			t.Fatalf("list: got %d, want 5", len(list))
		}
		all, _ := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
		if len(all) != 50 {
			t.Fatalf("list with revoked: got %d, want 50", len(all))
		}
		for _, s := range all {
			if s.StateAt(f.M.Now()) == sessionkit.StateRevoked && s.RevokedReason != sessionkit.ReasonLimitExceeded {
				t.Errorf("revoked reason: got %q", s.RevokedReason)
			}
		}
		f.CheckTTLs(t)
	})
}

func TestRevokeAllRacingLogins(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		user := uuid.New()
		keep := f.Login(t, user)
		for range 10 {
			f.Login(t, user)
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { f.Login(t, user) })
		}
		var revoked int
		wg.Go(func() {
			res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_everywhere", ExceptSessionID: keep.Session.ID})
			if err != nil {
				t.Error(err)
			}
			revoked = res.Revoked
		})
		wg.Wait()
		if revoked < 10 {
			t.Errorf("revoked %d, want at least the 10 sessions that existed before", revoked)
		}
		if _, err := f.M.Authenticate(ctx, keep.Token, netip.Addr{}); err != nil {
			t.Fatalf("kept session: %v", err)
		}
		list := checkIndex(t, f, user)
		if got, want := len(list), 1+30-revoked; got != want {
			t.Errorf("active after race: got %d, want %d", got, want)
		}
		// Everything now, including the kept one.
		res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "password_changed"})
		if err != nil || res.Revoked != len(list) {
			t.Fatalf("revoke all: %+v %v, want %d", res, err, len(list))
		}
		if _, err := f.M.Authenticate(ctx, keep.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("kept session after full revoke: got %v", err)
		}
		f.CheckTTLs(t)
	})
}

func TestExpiryAndIdleEdges(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithIdleTimeout(10*time.Minute), sessionkit.WithActivityThrottle(time.Minute))
		user := uuid.New()
		start := f.M.Now()
		res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", ExpiresAt: start.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		auth := func() error { _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); return err }

		// Idle edge: valid 1 ms before last activity + idle, refused at it.
		f.Clock.Advance(10*time.Minute - time.Millisecond)
		if err := auth(); err != nil {
			t.Fatalf("1ms before idle deadline: %v", err)
		}
		// That request was past the throttle, so it moved the idle deadline.
		f.Clock.Advance(10*time.Minute - time.Millisecond)
		if err := auth(); err != nil {
			t.Fatalf("activity should have extended the idle deadline: %v", err)
		}
		f.Clock.Advance(10 * time.Minute)
		if err := auth(); !errors.Is(err, sessionkit.ErrIdle) {
			t.Fatalf("at idle deadline: got %v, want ErrIdle", err)
		}

		// Absolute edge.
		res2, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", ExpiresAt: f.M.Now().Add(5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(5*time.Minute - time.Millisecond)
		if _, err := f.M.Authenticate(ctx, res2.Token, netip.Addr{}); err != nil {
			t.Fatalf("1ms before expiry: %v", err)
		}
		f.Clock.Advance(time.Millisecond)
		if _, err := f.M.Authenticate(ctx, res2.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrExpired) {
			t.Fatalf("at expiry: got %v, want ErrExpired", err)
		}
		got, err := f.M.Session(ctx, res2.Session.ID)
		if err != nil || got.StateAt(f.M.Now()) != sessionkit.StateExpired {
			t.Fatalf("expired session kept for audit: %v %v", got.StateAt(f.M.Now()), err)
		}
		if list, _ := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{}); len(list) != 0 {
			t.Errorf("active list: got %d, want 0", len(list))
		}
		f.CheckTTLs(t)

		// The session hash expires in Redis at deadline + retention.
		k := f.Keys(t)
		for _, key := range k {
			if strings.HasSuffix(key, strings.ReplaceAll(res2.Session.ID.String(), "-", "")[16:]) {
				at, err := b.Client.PExpireTime(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				want := res2.Session.ExpiresAt.Add(7 * 24 * time.Hour)
				if got := time.UnixMilli(at.Milliseconds()); !got.Equal(want) {
					t.Errorf("session key expires at %v, want %v", got, want)
				}
			}
		}
	})
}

func TestActivityThrottleAndIPChange(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		var mu sync.Mutex
		var events []sessionkit.Event
		hook := func(_ context.Context, e sessionkit.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithHook(hook))
		user := uuid.New()
		res := f.Login(t, user)
		id := res.Session.ID
		upd := func(ip string) sessionkit.UpdateSessionActivityResult {
			t.Helper()
			r, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: id, IPAddress: ip})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		f.Clock.Advance(59 * time.Second)
		if r := upd("203.0.113.7"); r.Written {
			t.Error("write within the throttle")
		}
		f.Clock.Advance(time.Second)
		if r := upd("203.0.113.7"); !r.Written || r.IPChanged {
			t.Errorf("at the throttle: %+v", r)
		}
		r := upd("[2001:db8::1]:443")
		if !r.Written || !r.IPChanged || r.PreviousIP != "203.0.113.7" {
			t.Fatalf("ip change: %+v", r)
		}
		s, _ := f.M.Session(ctx, id)
		if s.LastIPAddress.String() != "2001:db8::1" || s.IPChangeCount != 1 || s.IPAddress.String() != "203.0.113.7" {
			t.Errorf("after ip change: last %v count %d first %v", s.LastIPAddress, s.IPChangeCount, s.IPAddress)
		}
		if s.StateAt(f.M.Now()) != sessionkit.StateActive {
			t.Error("an IP change revoked the session")
		}
		if r := upd("2001:db8::1"); r.Written {
			t.Error("same new address wrote again within the throttle")
		}
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].Type != sessionkit.EventIPChanged || evs[0].PreviousIP != "203.0.113.7" || evs[0].IPAddress != "2001:db8::1" {
			t.Fatalf("events: %+v", evs)
		}
		if evs[1].Type != sessionkit.EventCreated || evs[1].SessionID != id {
			t.Errorf("oldest event: %+v", evs[1])
		}
		f.M.Close(ctx)
		mu.Lock()
		defer mu.Unlock()
		if len(events) != 2 || events[1].Type != sessionkit.EventIPChanged || events[1].ID != evs[0].ID {
			t.Errorf("hook events: %+v", events)
		}
	})
}

func TestProviderAccessAndRefreshLink(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithMaxProviders(3))
		user := uuid.New()
		res := f.Login(t, user)
		id := res.Session.ID
		rec := func(p string) sessionkit.RecordProviderAccessResult {
			t.Helper()
			r, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: p})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := rec("schwab"); !r.Written || !r.First {
			t.Errorf("first schwab: %+v", r)
		}
		if r := rec("schwab"); r.Written {
			t.Errorf("repeat within throttle wrote: %+v", r)
		}
		for _, p := range []string{"fidelity", "vanguard", "etrade"} {
			rec(p)
		}
		s, _ := f.M.Session(ctx, id)
		if want := []string{"fidelity", "vanguard", "etrade"}; !slices.Equal(s.ProvidersAccessed, want) {
			t.Errorf("providers: got %v, want %v", s.ProvidersAccessed, want)
		}
		if s.LastProviderAccessed != "etrade" || !s.LastProviderAccessAt.Equal(f.M.Now()) {
			t.Errorf("last provider: %q at %v", s.LastProviderAccessed, s.LastProviderAccessAt)
		}
		if _, err := f.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: id, RefreshTokenID: "rt_123"}); err != nil {
			t.Fatal(err)
		}
		s, _ = f.M.Session(ctx, id)
		if s.RefreshTokenID != "rt_123" {
			t.Errorf("refresh token id: got %q", s.RefreshTokenID)
		}
		evs, _ := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 2})
		if len(evs) != 2 || evs[0].Type != sessionkit.EventRefreshLinked || evs[1].Provider != "etrade" {
			t.Errorf("events: %+v", evs)
		}
		next, _ := f.M.Events(ctx, user, sessionkit.EventQuery{Before: evs[1].ID, Limit: 10})
		if len(next) != 4 || next[len(next)-1].Type != sessionkit.EventCreated {
			t.Errorf("next page: %+v", next)
		}
		f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user, Reason: "logout"})
		if _, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: "schwab"}); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("provider on revoked: got %v", err)
		}
	})
}

func TestInvalidCommandsWriteNothing(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		user := uuid.New()
		res := f.Login(t, user)
		id := res.Session.ID
		before := f.Keys(t)
		snapshot, _ := f.M.Session(ctx, id)
		long := strings.Repeat("r", 10<<10)
		past := f.M.Now().Add(-time.Second)
		cases := []struct {
			name, field string
			do          func() error
		}{
			{"nil user", "UserID", func() error {
				_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{IPAddress: "1.2.3.4"})
				return err
			}},
			{"bad ip", "IPAddress", func() error {
				_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "not-an-ip"})
				return err
			}},
			{"expiry in the past", "ExpiresAt", func() error {
				_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "1.2.3.4", ExpiresAt: past})
				return err
			}},
			{"expiry too far", "ExpiresAt", func() error {
				_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "1.2.3.4", ExpiresAt: f.M.Now().Add(500 * 24 * time.Hour)})
				return err
			}},
			{"empty reason", "Reason", func() error {
				_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user})
				return err
			}},
			{"10KB reason", "Reason", func() error {
				_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user, Reason: long})
				return err
			}},
			{"reason with newline", "Reason", func() error {
				_, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "a\nb"})
				return err
			}},
			{"nil user revoke all", "UserID", func() error {
				_, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{Reason: "x"})
				return err
			}},
			{"unprintable provider", "ProviderName", func() error {
				_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: "sch\x00wab"})
				return err
			}},
			{"long provider", "ProviderName", func() error {
				_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: strings.Repeat("p", 65)})
				return err
			}},
			{"provider with comma", "ProviderName", func() error {
				_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: id, ProviderName: "a,b"})
				return err
			}},
			{"activity bad ip", "IPAddress", func() error {
				_, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: id, IPAddress: "300.1.1.1"})
				return err
			}},
			{"empty refresh id", "RefreshTokenID", func() error {
				_, err := f.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: id})
				return err
			}},
			{"limit zero", "Limit", func() error { return f.M.SetUserLimit(ctx, user, 0) }},
			{"limit -2", "Limit", func() error { return f.M.SetUserLimit(ctx, user, -2) }},
			{"bad event cursor", "Before", func() error {
				_, err := f.M.Events(ctx, user, sessionkit.EventQuery{Before: "abc"})
				return err
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				err := c.do()
				if !errors.Is(err, sessionkit.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
					t.Fatalf("got %v, want ErrInvalid naming %s", err, c.field)
				}
			})
		}
		// An id no session can have is unknown, like any other (ErrNotFound
		// from every command: TestMalformedSessionIDs), and writes nothing.
		if _, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: uuid.New()}); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("activity for a v4 UUID: got %v, want ErrNotFound", err)
		}
		if after := f.Keys(t); !slices.Equal(before, after) {
			t.Errorf("keys changed: before %v after %v", before, after)
		}
		after, _ := f.M.Session(ctx, id)
		if fmt.Sprint(after) != fmt.Sprint(snapshot) {
			t.Errorf("session changed:\n%+v\n%+v", snapshot, after)
		}
	})
}

func TestLimitOverrideAndTiers(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		tiers := sessionkit.Tiers{"free": 1, "plus": 10, "pro": sessionkit.Unlimited}
		tierOf := map[uuid.UUID]string{}
		bob, alice := uuid.New(), uuid.New()
		tierOf[bob], tierOf[alice] = "free", "plus"
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(tiers.Limit(func(_ context.Context, u uuid.UUID) (string, error) { return tierOf[u], nil })))
		first := f.Login(t, bob)
		second := f.Login(t, bob)
		if len(second.Evicted) != 1 || second.Evicted[0] != first.Session.ID {
			t.Fatalf("bob's second login evicted %v, want [%v]", second.Evicted, first.Session.ID)
		}
		if n, _ := f.M.UserLimit(ctx, alice); n != 10 {
			t.Errorf("alice limit: got %d, want 10", n)
		}
		if err := f.M.SetUserLimit(ctx, bob, 3); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.M.UserLimit(ctx, bob); n != 3 {
			t.Errorf("bob override: got %d, want 3", n)
		}
		f.Login(t, bob)
		third := f.Login(t, bob)
		if len(third.Evicted) != 0 {
			t.Errorf("override ignored: evicted %v", third.Evicted)
		}
		f.CheckTTLs(t)
		if err := f.M.ClearUserLimit(ctx, bob); err != nil {
			t.Fatal(err)
		}
		fourth := f.Login(t, bob)
		if len(fourth.Evicted) != 3 {
			t.Errorf("after clearing the override: evicted %d, want 3", len(fourth.Evicted))
		}
		_, err := sessionkit.Tiers{"free": 1}.Limit(func(context.Context, uuid.UUID) (string, error) { return "gold", nil })(ctx, bob)
		if !errors.Is(err, sessionkit.ErrInvalid) {
			t.Errorf("unknown tier: got %v", err)
		}
	})
}

func TestNewDeviceSignal(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		user := uuid.New()
		first := f.Login(t, user)
		if first.NewDevice {
			t.Error("first ever sign-in flagged as a new device")
		}
		if again := f.Login(t, user); again.NewDevice {
			t.Error("same device flagged as new")
		}
		r, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.9",
			UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"})
		if err != nil {
			t.Fatal(err)
		}
		if !r.NewDevice {
			t.Errorf("iPhone after Mac: NewDevice false (label %q)", r.Session.Device.Label)
		}
		evs, _ := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 1})
		if len(evs) != 1 || !evs[0].NewDevice || evs[0].DeviceLabel != r.Session.Device.Label {
			t.Errorf("created event: %+v", evs)
		}
	})
}

// TestCreationTimeSurvivesActivity: a new session's record leaves its
// creation time empty while it is the last activity; every write that
// moves the last activity keeps the creation time, with a User-Agent or
// without one (a record then ends at its owner).
func TestCreationTimeSurvivesActivity(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)),
			sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test"}))
		for _, ua := range []string{sessiontest.ChromeMac, ""} {
			user := uuid.New()
			var created time.Time
			check := func(step string, s sessionkit.Session, active time.Time) {
				t.Helper()
				if !s.CreatedAt.Equal(created) || !s.LastActivityAt.Equal(active) || !s.AuthenticatedAt.Equal(created) {
					t.Errorf("UA %q, after %s: created %v, last active %v, authenticated %v; want %v, %v, %v",
						ua, step, s.CreatedAt, s.LastActivityAt, s.AuthenticatedAt, created, active, created)
				}
				if got := f.Session(t, s.ID); !got.CreatedAt.Equal(created) || !got.LastActivityAt.Equal(active) {
					t.Errorf("UA %q, after %s: read back created %v, last active %v; want %v, %v", ua, step, got.CreatedAt, got.LastActivityAt, created, active)
				}
			}
			// start signs in, then lets two minutes pass.
			start := func(bearer bool) sessionkit.CreateSessionResult {
				t.Helper()
				r, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: ua, Bearer: bearer})
				if err != nil {
					t.Fatal(err)
				}
				created = f.Clock.Now()
				check("sign-in", r.Session, created)
				f.Clock.Advance(2 * time.Minute)
				return r
			}
			a := start(false)
			r, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: a.Session.ID, IPAddress: sessiontest.LoginIP})
			if err != nil || !r.Written {
				t.Fatalf("activity: written %v, %v", r.Written, err)
			}
			check("activity", r.Session, f.Clock.Now())

			b2 := start(false)
			r, err = f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: b2.Session.ID, IPAddress: "198.51.100.20"})
			if err != nil || !r.IPChanged {
				t.Fatalf("activity from a new address: changed %v, %v", r.IPChanged, err)
			}
			check("activity from a new address", r.Session, f.Clock.Now())

			renewed, err := f.M.RenewSession(ctx, start(false).Session, sessiontest.LoginIP, ua)
			if err != nil {
				t.Fatal(err)
			}
			check("renewal", renewed.Session, f.Clock.Now())

			refreshed, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: start(true).Tokens.RefreshToken})
			if err != nil {
				t.Fatal(err)
			}
			check("refresh", refreshed.Session, f.Clock.Now())
		}
	})
}

// TestNewSignInHistory: the new-device signal compares with the devices
// signed in from within the window, the 64 most recent of them, and keeps
// them after every session has ended.
func TestNewSignInHistory(t *testing.T) {
	chrome := func(v int) string {
		return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", v)
	}
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithNewSignInWindow(time.Hour),
			sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		login := func(user uuid.UUID, ua string) sessionkit.CreateSessionResult {
			t.Helper()
			f.Clock.Advance(time.Millisecond)
			r, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: ua})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}

		window := uuid.New()
		login(window, chrome(100))
		f.Clock.Advance(50 * time.Minute)
		if !login(window, chrome(101)).NewDevice {
			t.Error("window: a second device within the window is not new")
		}
		f.Clock.Advance(20 * time.Minute) // the first device is past the window, the second is not
		if !login(window, chrome(100)).NewDevice {
			t.Error("window: a device seen before the window is not new")
		}
		if login(window, chrome(101)).NewDevice {
			t.Error("window: a device seen within the window is new")
		}

		many := uuid.New()
		for v := 1; v <= 65; v++ {
			login(many, chrome(v))
		}
		if login(many, chrome(65)).NewDevice {
			t.Error("cap: the most recent device is new")
		}
		if !login(many, chrome(1)).NewDevice {
			t.Error("cap: the 65th most recent device is remembered")
		}

		ended := uuid.New()
		login(ended, chrome(100))
		if _, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: ended, Reason: "logout_everywhere"}); err != nil {
			t.Fatal(err)
		}
		if login(ended, chrome(100)).NewDevice {
			t.Error("ended: a device is forgotten once its sessions end")
		}
		if !login(ended, chrome(102)).NewDevice {
			t.Error("ended: another device is not new")
		}
		f.CheckTTLs(t)
	})
}

// TestNewSignInHistoryOfEarlierReleases: the devices and countries earlier
// releases kept in a key of their own still count, and move into the
// index at the next sign-in.
func TestNewSignInHistoryOfEarlierReleases(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		keys := f.KeyNames(t)
		user := uuid.New()
		u := keys.ForUser(user)
		at := float64(f.Clock.Now().Add(-time.Hour).UnixMilli())
		if err := f.Client.ZAdd(ctx, u.Seen, redis.Z{Score: at, Member: "d:Chrome 131 on macOS"}, redis.Z{Score: at, Member: "d:Firefox 133 on Windows"}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := f.Client.PExpireAt(ctx, u.Seen, f.Clock.Now().Add(24*time.Hour)).Err(); err != nil {
			t.Fatal(err)
		}
		if f.Login(t, user).NewDevice {
			t.Error("a device of the earlier history is new")
		}
		if n, err := f.Client.Exists(ctx, u.Seen).Result(); err != nil || n != 0 {
			t.Errorf("the earlier history's key: %d, %v; want it moved", n, err)
		}
		r, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP,
			UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"})
		if err != nil {
			t.Fatal(err)
		}
		if r.NewDevice {
			t.Errorf("%s, of the earlier history, is new", r.Session.Device.Label)
		}
		checkIndex(t, f, user)
	})
}

// TestNewSignInHistoryOfAnotherKind: an earlier release's history key that
// holds no history (another type, written by hand) does not fail the
// sign-in that reads it after its first writes: it is dropped.
func TestNewSignInHistoryOfAnotherKind(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		user := uuid.New()
		seen := f.KeyNames(t).ForUser(user).Seen
		if err := f.Client.Set(ctx, seen, "not a history", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if r := f.Login(t, user); r.NewDevice {
			t.Error("the first sign-in after a damaged history is a new device")
		}
		if n, err := f.Client.Exists(ctx, seen).Result(); err != nil || n != 0 {
			t.Errorf("the damaged history: %d keys, %v; want it gone", n, err)
		}
		checkIndex(t, f, user)
		f.CheckTTLs(t)
	})
}

func TestEventStreamIsCapped(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithEventStreamLength(5), sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		user := uuid.New()
		for range 8 {
			f.Login(t, user)
		}
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 100})
		if err != nil || len(evs) != 5 {
			t.Fatalf("events: got %d (%v), want 5", len(evs), err)
		}
	})
}

func TestHookPanicsAndBlocksDoNotBreakCommands(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		block := make(chan struct{})
		defer close(block)
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLogger(slog.New(slog.DiscardHandler)),
			sessionkit.WithHook(func(context.Context, sessionkit.Event) { panic("boom") }),
			sessionkit.WithHook(func(context.Context, sessionkit.Event) { <-block }))
		user := uuid.New()
		for range 3000 { // more than the hook queue holds
			if _, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7"}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestRevokedStayListableUntilRetentionEnds(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithAuditRetention(time.Hour))
		user := uuid.New()
		gone := f.Login(t, user)
		kept := f.Login(t, user)
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: gone.Session.ID, UserID: user, Reason: "revoked_by_user"}); err != nil {
			t.Fatal(err)
		}
		ids := func() []uuid.UUID {
			l, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
			if err != nil {
				t.Fatal(err)
			}
			var out []uuid.UUID
			for _, s := range l {
				out = append(out, s.ID)
			}
			return out
		}
		if got := ids(); len(got) != 2 {
			t.Fatalf("within retention: got %v, want both", got)
		}
		s, err := f.M.Session(ctx, gone.Session.ID)
		if err != nil || s.RevokedReason != "revoked_by_user" || !s.RevokedAt.Equal(f.M.Now()) {
			t.Fatalf("revoked session: %+v, %v", s, err)
		}
		f.Clock.Advance(time.Hour)
		if got := ids(); len(got) != 1 || got[0] != kept.Session.ID {
			t.Fatalf("after retention: got %v, want [%v]", got, kept.Session.ID)
		}
		// The next write prunes the forgotten session from the per-user keys.
		f.Login(t, user)
		if _, err := f.Store.Client().HGet(ctx, f.Prefix+"{"+tagOf(gone.Session.ID)+"}:rev", memberOf(gone.Session.ID)).Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("revocation record after retention: got %v, want redis.Nil", err)
		}
	})
}

// A session signed out everywhere or evicted by the limit is forgotten the
// audit retention after its revocation, as one revoked alone is: not the
// retention after the deadline it had, up to its whole lifetime later.
func TestRevokedByAllOrLimitForgottenAtRetention(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client},
			sessionkit.WithAuditRetention(time.Hour), sessionkit.WithLifetime(30*24*time.Hour),
			sessionkit.WithLimit(sessionkit.FixedLimit(2)))
		user := uuid.New()
		evicted := f.Login(t, user)
		f.Clock.Advance(time.Minute)
		signedOut := f.Login(t, user)
		f.Clock.Advance(time.Minute)
		kept := f.Login(t, user) // evicts the oldest: the user was at the limit
		if s := f.Session(t, evicted.Session.ID); s.RevokedReason != sessionkit.ReasonLimitExceeded {
			t.Fatalf("evicted session: %+v", s)
		}
		res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "revoked_by_user", ExceptSessionID: kept.Session.ID})
		if err != nil || res.Revoked != 1 || res.SessionIDs[0] != signedOut.Session.ID {
			t.Fatalf("revoke all: %+v, %v", res, err)
		}
		listed := func() map[uuid.UUID]bool {
			l, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
			if err != nil {
				t.Fatal(err)
			}
			out := map[uuid.UUID]bool{}
			for _, s := range l {
				out[s.ID] = true
			}
			return out
		}
		if got := listed(); len(got) != 3 {
			t.Fatalf("within retention: got %v, want all three", got)
		}
		f.Clock.Advance(time.Hour)
		if got := listed(); len(got) != 1 || !got[kept.Session.ID] {
			t.Fatalf("an hour after the revocations: got %v, want only %v", got, kept.Session.ID)
		}
		// The next write forgets them in Redis too.
		f.Login(t, user)
		k := f.KeyNames(t).ForSession(evicted.Session.ID)
		for _, id := range []uuid.UUID{evicted.Session.ID, signedOut.Session.ID} {
			for _, key := range []string{k.Retained, k.Revoked} {
				if _, err := f.Client.HGet(ctx, key, memberOf(id)).Result(); !errors.Is(err, redis.Nil) {
					t.Errorf("%s of %v after retention: got %v, want redis.Nil", key, id, err)
				}
			}
		}
	})
}

func tagOf(id uuid.UUID) string    { return strings.ReplaceAll(id.String(), "-", "")[:16] }
func memberOf(id uuid.UUID) string { return strings.ReplaceAll(id.String(), "-", "")[16:] }

func TestRenewSession(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(2)))
		user := uuid.New()
		other := f.Login(t, user)
		old := f.Login(t, user) // the user is at the limit
		res, err := f.M.RenewSession(ctx, old.Session, "203.0.113.7", sessiontest.ChromeMac)
		if err != nil {
			t.Fatal(err)
		}
		// The secret rotates; the session, its id and the device list stay.
		if len(res.Evicted) != 0 || res.Session.ID != old.Session.ID || res.Token == old.Token || res.Token == "" {
			t.Fatalf("renew: %+v", res)
		}
		if _, err := f.M.Authenticate(ctx, old.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("old token: got %v, want ErrNotFound (a superseded secret)", err)
		}
		for _, tok := range []string{other.Token, res.Token} {
			if _, err := f.M.Authenticate(ctx, tok, netip.Addr{}); err != nil {
				t.Errorf("after renew: %v", err)
			}
		}
		if list, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true}); err != nil || len(list) != 2 {
			t.Errorf("sessions after renew: got %d, %v; want the same 2", len(list), err)
		}
		// Another user's id: refused, and the session is untouched.
		foreign := old.Session
		foreign.UserID = uuid.New()
		if _, err := f.M.RenewSession(ctx, foreign, "", ""); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("renewing another user's session: got %v, want ErrNotFound", err)
		}
		if _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
			t.Errorf("after a foreign renew: %v", err)
		}
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: old.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.RenewSession(ctx, old.Session, "203.0.113.7", sessiontest.ChromeMac); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("renewing a revoked session: got %v, want ErrRevoked", err)
		}
		f.CheckTTLs(t)
	})
}

// TestWritesMoveThePurge reads, in Redis, each session's score in the
// index after every write that moves its deadline: it must be the new
// deadline, with no purge scheduled while the session is active. Once the
// session has expired and is retired, its purge is the retention after
// that deadline, so it stays listable that long and no longer.
func TestWritesMoveThePurge(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		const retention = time.Hour
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client},
			sessionkit.WithAuditRetention(retention), sessionkit.WithIdleTimeout(30*time.Minute),
			sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test"}))
		keys := f.KeyNames(t)
		user := uuid.New()
		check := func(step string, s sessionkit.Session) {
			t.Helper()
			deadline := s.ExpiresAt
			if idle := s.LastActivityAt.Add(s.IdleTimeout); idle.Before(deadline) {
				deadline = idle
			}
			_, member := keys.Active(s.ID)
			got, err := f.Client.ZScore(ctx, keys.ForUser(user).Index, member).Result()
			if want := deadline.UnixMilli(); err != nil || int64(got) != want {
				t.Errorf("after %s: index score %d, %v; want the deadline %d", step, int64(got), err, want)
			}
			if n, err := f.Client.ZScore(ctx, keys.ForUser(user).All, member).Result(); err != redis.Nil {
				t.Errorf("after %s: purge score %d, %v; want none while active", step, int64(n), err)
			}
			for _, k := range []string{keys.ForUser(user).Active, keys.ForUser(user).Index} {
				if at, err := f.Client.PExpireTime(ctx, k).Result(); err != nil || at.Milliseconds() < deadline.UnixMilli() {
					t.Errorf("after %s: %s expires at %d ms, %v; want at or after the deadline %d", step, k, at.Milliseconds(), err, deadline.UnixMilli())
				}
			}
		}
		created, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac})
		if err != nil {
			t.Fatal(err)
		}
		cookie := created.Session
		check("CreateSession", cookie)
		login, err := f.M.CreateSession(ctx, sessionkit.CreateSession{
			UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac, Bearer: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		check("CreateSession (bearer)", login.Session)

		f.Clock.Advance(2 * time.Minute)
		up, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: cookie.ID, IPAddress: sessiontest.LoginIP})
		if err != nil || !up.Written {
			t.Fatalf("UpdateSessionActivity: written %v, %v", up.Written, err)
		}
		check("UpdateSessionActivity", up.Session)

		f.Clock.Advance(2 * time.Minute)
		re, err := f.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: cookie.ID, UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		check("Reauthenticate", re.Session)

		f.Clock.Advance(2 * time.Minute)
		r, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken})
		if err != nil {
			t.Fatal(err)
		}
		check("RefreshSession", r.Session)

		// The cookie session goes idle; the next login retires it.
		deadline := re.Session.LastActivityAt.Add(re.Session.IdleTimeout)
		f.Clock.Advance(deadline.Add(time.Second).Sub(f.Clock.Now()))
		f.Login(t, user)
		_, member := keys.Active(cookie.ID)
		got, err := f.Client.ZScore(ctx, keys.ForUser(user).All, member).Result()
		if want := deadline.Add(retention).UnixMilli(); err != nil || int64(got) != want {
			t.Errorf("retired: purge score %d, %v; want %d (the deadline %d and the retention)", int64(got), err, want, deadline.UnixMilli())
		}
		listed := func() bool {
			all, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
			if err != nil {
				t.Fatal(err)
			}
			return slices.ContainsFunc(all, func(s sessionkit.Session) bool { return s.ID == cookie.ID })
		}
		if !listed() {
			t.Error("retired: not listed with the revoked sessions within the retention")
		}
		f.Clock.Advance(deadline.Add(retention).Add(time.Millisecond).Sub(f.Clock.Now()))
		if listed() {
			t.Error("past its purge: still listed")
		}
	})
}

// TestAccessTokenAcrossClocks: instances of one app share keys and Redis
// but not a clock. An access token minted by an instance whose clock runs
// a little ahead (its iat then lies in another's future) is accepted by
// the others; one whose clock runs far ahead is not.
func TestAccessTokenAcrossClocks(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tokens := sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test"})
	ctx := t.Context()
	minter := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client}, tokens)
	// At x.100 s: iat is x, which an instance 300 ms behind reads as future.
	minter.Clock.Advance(time.Second - time.Duration(minter.Clock.Now().Nanosecond()) + 100*time.Millisecond)
	res, err := minter.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		behind time.Duration
		ok     bool
	}{
		{300 * time.Millisecond, true},
		{3 * time.Second, true},
		{2 * time.Minute, false},
	} {
		clock := redistest.NewClock()
		clock.Advance(minter.Clock.Now().Add(-tc.behind).Sub(clock.Now()))
		other := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client, Prefix: minter.Prefix, Clock: clock}, tokens)
		_, err := other.M.Authenticate(ctx, res.Tokens.AccessToken, netip.Addr{})
		if (err == nil) != tc.ok {
			t.Errorf("an instance %v behind the minter: got %v, want accepted %v", tc.behind, err, tc.ok)
		}
	}
}

// TestRefreshGraceSettings: no RefreshGrace is the default 10 s; a
// negative one turns the grace off, so that the superseded refresh token
// revokes the session at once.
func TestRefreshGraceSettings(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		grace  time.Duration
		reused bool // a second after the refresh
	}{
		{0, false},
		{-1, true},
	} {
		f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client}, sessionkit.WithAccessTokens(
			sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test", RefreshGrace: tc.grace}))
		ctx := t.Context()
		res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, Bearer: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: res.Tokens.RefreshToken}); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(time.Second)
		_, err = f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: res.Tokens.RefreshToken})
		var revoked *sessionkit.RevokedError
		if reused := errors.As(err, &revoked) && revoked.Reason == sessionkit.ReasonRefreshReused; reused != tc.reused {
			t.Errorf("RefreshGrace %v: the superseded token a second later: got %v, want reuse %v", tc.grace, err, tc.reused)
		}
	}
}

// TestAccessTokenAudience: an access token names its audience (RFC 9068
// aud: the Issuer by default), so that another service trusting the same
// keys can refuse it; a Manager refuses a token for another audience.
func TestAccessTokenAudience(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://api.example.test"
	ctx := t.Context()
	app := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client},
		sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: issuer}))
	payments := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client, Prefix: app.Prefix, Clock: app.Clock},
		sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: issuer, Audience: "https://payments.example.test"}))
	for _, tc := range []struct {
		minter *sessiontest.Fixture
		aud    string
	}{{app, issuer}, {payments, "https://payments.example.test"}} {
		res, err := tc.minter.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, Bearer: true})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(res.Tokens.AccessToken, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Aud any `json:"aud"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil || claims.Aud != tc.aud {
			t.Errorf("aud: got %v (%v), want %q", claims.Aud, err, tc.aud)
		}
		for _, verifier := range []*sessiontest.Fixture{app, payments} {
			_, err := verifier.M.Authenticate(ctx, res.Tokens.AccessToken, netip.Addr{})
			if ok := verifier == tc.minter; (err == nil) != ok {
				t.Errorf("a token for %s: got %v, want accepted %v", tc.aud, err, ok)
			}
		}
	}
}

// TestAuthenticateCanonicalAddress: Authenticate takes the address as an
// app's own transport finds it: an IPv4 client on a dual-stack listener is
// ::ffff:a.b.c.d, and a link-local one may carry a zone. Each is the same
// client as its canonical form: no change recorded, nothing stored as given.
func TestAuthenticateCanonicalAddress(t *testing.T) {
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client})
	ctx := t.Context()
	for _, tc := range []struct{ login, given string }{
		{"203.0.113.7", "::ffff:203.0.113.7"},
		{"2001:db8::1", "2001:db8::1%eth0"},
	} {
		res := f.LoginFrom(t, uuid.New(), tc.login)
		f.Clock.Advance(2 * time.Minute) // the throttle passes: a write is due
		r, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(tc.given))
		if err != nil || r.IPChanged {
			t.Errorf("from %s after signing in from %s: changed %v, %v", tc.given, tc.login, r.IPChanged, err)
		}
		_, err = f.M.AuthenticateWith(ctx, res.Token, netip.MustParseAddr(tc.given), func(sessionkit.UpdateSessionActivityResult) bool { return true })
		if err != nil {
			t.Errorf("from %s, deciding to revoke on a change: %v", tc.given, err)
		}
		if s := f.Session(t, res.Session.ID); s.IPChangeCount != 0 || s.LastIPAddress.String() != tc.login {
			t.Errorf("stored after %s: %d changes, last %v; want none, %s", tc.given, s.IPChangeCount, s.LastIPAddress, tc.login)
		}
	}
}

// TestNewContextOverTheCacheIgnoresEdits: a result the cache answered puts
// the cache's entry in the context, so an edit of its Session, which
// NewContext refuses without the cache, reaches nothing.
func TestNewContextOverTheCacheIgnoresEdits(t *testing.T) {
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client, Cache: &store.CacheOptions{}})
	ctx := t.Context()
	user := uuid.New()
	res := f.Login(t, user)
	held := 0
	for range 2 { // the second is a cache hit
		r, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(sessiontest.LoginIP))
		if err != nil {
			t.Fatal(err)
		}
		r.Session.UserID, r.Session.AAL = uuid.New(), sessionkit.AAL3
		sctx, err := f.M.NewContext(ctx, r)
		if err != nil {
			continue // refused: read from Redis, it holds no entry
		}
		held++
		if s, _ := sessionkit.FromContext(sctx); s.UserID != user || s.AAL != sessionkit.AAL1 {
			t.Errorf("the context holds user %v at %q, want %v at %q", s.UserID, s.AAL, user, sessionkit.AAL1)
		}
	}
	if held == 0 {
		t.Error("no result held the cache's entry: the cache never answered")
	}
}

// TestAuthenticateWithDecidesTheChangeRecorded: the change AuthenticateWith
// records is the one its decision saw. When another request records a
// change of the session's address between the decision and the write, the
// change from there is decided afresh, not recorded undecided.
func TestAuthenticateWithDecidesTheChangeRecorded(t *testing.T) {
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client})
	ctx := t.Context()
	res := f.Login(t, uuid.New()) // from LoginIP
	x, z := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("192.0.2.99")
	var decided []string
	// The app's rule: a session may move once, from where it signed in.
	fromSignIn := func(r sessionkit.UpdateSessionActivityResult) bool {
		decided = append(decided, r.PreviousIP+" -> "+r.Session.LastIPAddress.String())
		return r.PreviousIP != sessiontest.LoginIP
	}
	raced := false
	_, err := f.M.AuthenticateWith(ctx, res.Token, x, func(r sessionkit.UpdateSessionActivityResult) bool {
		revoke := fromSignIn(r)
		if !raced { // a request from z, decided and recorded meanwhile
			raced = true
			if _, err := f.M.AuthenticateWith(ctx, res.Token, z, fromSignIn); err != nil {
				t.Errorf("the racing request from %v: %v", z, err)
			}
		}
		return revoke
	})
	want := []string{sessiontest.LoginIP + " -> " + x.String(), sessiontest.LoginIP + " -> " + z.String(), z.String() + " -> " + x.String()}
	if !slices.Equal(decided, want) {
		t.Errorf("decisions: got %q, want %q", decided, want)
	}
	var revoked *sessionkit.RevokedError
	if !errors.As(err, &revoked) || revoked.Reason != sessionkit.ReasonIPChanged {
		t.Errorf("the request from %v after the move to %v: got %v, want revoked for ip_changed", x, z, err)
	}
}

// TestCreateSessionIdleTimeout: a session's own idle timeout takes the
// Manager's place: a shorter one ends it sooner, NoIdleTimeout never, on
// the Manager's clock and in Redis alike (the scripts read the session's
// own), and both stay through renewal. A value the Manager could not use
// is refused, naming the field, with nothing written.
func TestCreateSessionIdleTimeout(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithIdleTimeout(time.Hour), sessionkit.WithActivityThrottle(time.Minute))
		user := uuid.New()
		create := func(idle time.Duration) (sessionkit.CreateSessionResult, error) {
			return f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", IdleTimeout: idle})
		}
		short, err := create(15 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		never, err := create(sessionkit.NoIdleTimeout)
		if err != nil {
			t.Fatal(err)
		}
		usual, err := create(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			res  sessionkit.CreateSessionResult
			want time.Duration
		}{{"15 minutes", short, 15 * time.Minute}, {"none", never, 0}, {"the Manager's", usual, time.Hour}} {
			s, err := f.M.Session(ctx, tc.res.Session.ID)
			if err != nil || s.IdleTimeout != tc.want || tc.res.Session.IdleTimeout != tc.want {
				t.Errorf("%s: stored %v (%v), returned %v; want %v", tc.name, s.IdleTimeout, err, tc.res.Session.IdleTimeout, tc.want)
			}
		}
		// Renewal and re-authentication keep the session's own.
		renewed, err := f.M.RenewSession(ctx, short.Session, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if renewed.Session.IdleTimeout != 15*time.Minute {
			t.Errorf("after renewal: %v, want 15m", renewed.Session.IdleTimeout)
		}
		reauth, err := f.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: never.Session.ID, UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		never.Token = reauth.Token
		if s, err := f.M.Session(ctx, never.Session.ID); err != nil || reauth.Session.IdleTimeout != 0 || s.IdleTimeout != 0 {
			t.Errorf("after re-authentication: returned %v, stored %v (%v); want none", reauth.Session.IdleTimeout, s.IdleTimeout, err)
		}
		// Kept in whole milliseconds, as stored: the session returned is the
		// session stored.
		odd, err := create(2*time.Minute + 500*time.Microsecond)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := f.M.Session(ctx, odd.Session.ID); err != nil || s.IdleTimeout != 2*time.Minute || odd.Session.IdleTimeout != 2*time.Minute {
			t.Errorf("2m0.0005s: returned %v, stored %v (%v); want 2m both", odd.Session.IdleTimeout, s.IdleTimeout, err)
		}

		f.Clock.Advance(15 * time.Minute)
		if _, err := f.M.Authenticate(ctx, renewed.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrIdle) {
			t.Errorf("15 minutes idle with its own 15: got %v, want ErrIdle", err)
		}
		// Redis refuses it too: an activity write's script reads the
		// session's own timeout, not the Manager's.
		if _, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: short.Session.ID, IPAddress: "203.0.113.7"}); !errors.Is(err, sessionkit.ErrIdle) {
			t.Errorf("activity write 15 minutes idle: got %v, want ErrIdle", err)
		}
		if _, err := f.M.Authenticate(ctx, usual.Token, netip.Addr{}); err != nil {
			t.Errorf("15 minutes idle under the Manager's hour: %v", err)
		}
		f.Clock.Advance(2 * time.Hour)
		if _, err := f.M.Authenticate(ctx, never.Token, netip.Addr{}); err != nil {
			t.Errorf("2h15m idle with none: %v", err)
		}
		if _, err := f.M.Authenticate(ctx, usual.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrIdle) {
			t.Errorf("2 hours idle under the Manager's hour: got %v, want ErrIdle", err)
		}

		before := f.Dump(t)
		for _, d := range []time.Duration{-2, -time.Second, time.Millisecond, 999 * time.Millisecond, time.Minute, time.Minute + 999*time.Microsecond} {
			if _, err := create(d); !errors.Is(err, sessionkit.ErrInvalid) || !strings.Contains(err.Error(), "IdleTimeout") {
				t.Errorf("IdleTimeout %v: got %v, want ErrInvalid naming IdleTimeout", d, err)
			}
		}
		if after := f.Dump(t); !maps.Equal(before, after) {
			t.Errorf("refused sign-ins wrote: %v, then %v", before, after)
		}
	})
}
