package store_test

// Two-instance checks of the verified-session cache: what one instance does
// must hold on the other at once (announcements) or within the documented
// bounds.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// instancePair is two instances over one prefix, sharing one clock.
func instancePair(t *testing.T, copts store.CacheOptions, opts ...sessionkit.Option) (*cacheEnv, *cacheEnv, *redistest.Clock) {
	t.Helper()
	clock := redistest.NewClock()
	if copts.TTL == 0 {
		copts.TTL = store.MaxCacheTTL
	}
	copts.Clock = clock.Now
	prefix := redistest.Prefix(t)
	a := newCacheEnv(t, backends[0].Client, prefix, clock, copts, opts...)
	b := newCacheEnv(t, backends[0].Client, prefix, clock, copts, opts...)
	return a, b, clock
}

// until polls cond for up to 3 s.
func until(t *testing.T, what string, cond func() error) {
	t.Helper()
	if err := redistest.WaitFor(3*time.Second, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// (1) a limit set on A and the RejectNew policy, at B's next sign-in.
func TestLimitAcrossInstances(t *testing.T) {
	ctx := context.Background()
	reject := sessionkit.WithLimitPolicy(func(context.Context, uuid.UUID) (sessionkit.LimitPolicy, error) { return sessionkit.RejectNew, nil })
	a, b, _ := instancePair(t, store.CacheOptions{}, reject)
	user := uuid.New()
	s1 := a.Login(t, user)
	b.mustAuth(t, s1.Token, 1)
	b.Login(t, user)
	if err := a.M.SetUserLimit(ctx, user, 2); err != nil {
		t.Fatal(err)
	}
	if n, err := b.M.UserLimit(ctx, user); err != nil || n != 2 {
		t.Fatalf("B's UserLimit: %d %v", n, err)
	}
	_, err := b.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac})
	var le *sessionkit.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("B's third sign-in at a limit of 2 set on A: got %v, want LimitError", err)
	}
	// Impersonation sessions opened on A never count.
	if _, err := a.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac,
		ExpiresAt: a.M.Now().Add(time.Hour), ImpersonatedBy: "support (carol)"}); err != nil {
		t.Fatalf("support session at the limit: %v", err)
	}
	if err := a.M.SetUserLimit(ctx, user, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac}); err != nil {
		t.Fatalf("B's third sign-in at a limit of 3 (one support session beside): %v", err)
	}
	// B's cache still serves s1 (not evicted).
	b.mustAuth(t, s1.Token, 0)
}

// (1b) eviction: a limit lowered on A, B's sign-in evicts, A's cache drops at once.
func TestLimitEvictAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b, _ := instancePair(t, store.CacheOptions{})
	user := uuid.New()
	s1 := a.Login(t, user)
	s2 := a.Login(t, user)
	a.mustAuth(t, s1.Token, 1)
	a.mustAuth(t, s2.Token, 1)
	if err := a.M.SetUserLimit(ctx, user, 1); err != nil {
		t.Fatal(err)
	}
	res := b.Login(t, user)
	if len(res.Evicted) != 2 {
		t.Fatalf("evicted: %v", res.Evicted)
	}
	for _, tok := range []string{s1.Token, s2.Token} {
		until(t, "A refuses the evicted session", func() error {
			_, _, err := a.auth(tok, loginIP)
			var re *sessionkit.RevokedError
			if errors.As(err, &re) && re.Reason == sessionkit.ReasonLimitExceeded {
				return nil
			}
			return errors.New("still served")
		})
	}
}

// (2) Reauthenticate on A: B refuses the old token, accepts the new one
// with the new AAL and authentication time.
func TestReauthenticateAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b, clock := instancePair(t, store.CacheOptions{})
	v := a.Login(t, uuid.New())
	b.mustAuth(t, v.Token, 1)
	b.mustAuth(t, v.Token, 0)
	clock.Advance(10 * time.Second)
	re, err := a.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: v.Session.ID, UserID: v.Session.UserID, AAL: sessionkit.AAL2})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "B refuses the old token", func() error {
		if _, _, err := b.auth(v.Token, loginIP); errors.Is(err, sessionkit.ErrNotFound) {
			return nil
		} else {
			return errors.New("old token: " + errString(err))
		}
	})
	res, _, err := b.auth(re.Token, loginIP)
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.AAL != sessionkit.AAL2 || !res.Session.AuthenticatedAt.Equal(clock.Now()) {
		t.Fatalf("B after reauth: aal %q at %v, want aal2 at %v", res.Session.AAL, res.Session.AuthenticatedAt, clock.Now())
	}
	// And from B's cache again.
	res2, n, err := b.auth(re.Token, loginIP)
	if err != nil || n != 0 || res2.Session.AAL != sessionkit.AAL2 {
		t.Fatalf("B cached: %v %d %q", err, n, res2.Session.AAL)
	}
	// RenewSession on B: A refuses re.Token
	a.mustAuth(t, re.Token, 1)
	rn, err := b.M.RenewSession(ctx, res.Session, "", "")
	if err != nil {
		t.Fatal(err)
	}
	until(t, "A refuses the renewed-away token", func() error {
		if _, _, err := a.auth(re.Token, loginIP); errors.Is(err, sessionkit.ErrNotFound) {
			return nil
		}
		return errors.New("still served")
	})
	if res, _, err := a.auth(rn.Token, loginIP); err != nil || res.Session.AAL != sessionkit.AAL2 {
		t.Fatalf("A with the renewed token: %v %q", err, res.Session.AAL)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// (4) session data.
func TestDataAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b, _ := instancePair(t, store.CacheOptions{})
	v := a.Login(t, uuid.New())
	b.mustAuth(t, v.Token, 1)
	if err := a.M.PutSessionData(ctx, v.Session.ID, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := b.M.SessionData(ctx, v.Session.ID, "k"); err != nil || !ok || got != "v1" {
		t.Fatalf("B reads: %q %v %v", got, ok, err)
	}
	if err := b.M.DeleteSessionData(ctx, v.Session.ID, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.M.SessionData(ctx, v.Session.ID, "k"); err != nil || ok {
		t.Fatalf("A after B's delete: %v %v", ok, err)
	}
	if err := a.M.PutSessionData(ctx, v.Session.ID, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: v.Session.UserID, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.M.SessionData(ctx, v.Session.ID, "k"); err == nil || ok {
		t.Fatalf("B reads a revoked session's data: %v %v", ok, err)
	}
	if err := b.M.PutSessionData(ctx, v.Session.ID, "k", "v3"); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("B writes a revoked session's data: %v", err)
	}
}

// (5) idle: B keeps the session alive; A must serve it. And a session idle in
// Redis must not be served by A.
func TestIdleAcrossInstances(t *testing.T) {
	const idle = 30 * time.Second
	const throttle = 5 * time.Second
	a, b, clock := instancePair(t, store.CacheOptions{}, sessionkit.WithIdleTimeout(idle), sessionkit.WithActivityThrottle(throttle))
	v := a.Login(t, uuid.New())
	a.mustAuth(t, v.Token, 1) // A caches last activity = login
	for i := 0; i < 8; i++ {
		clock.Advance(6 * time.Second)
		if _, _, err := b.auth(v.Token, loginIP); err != nil { // B keeps it alive (writes)
			t.Fatalf("B at %d: %v", i, err)
		}
		// let B's queued writes land
		time.Sleep(60 * time.Millisecond)
		if _, _, err := a.auth(v.Token, loginIP); err != nil {
			t.Fatalf("A at %ds: %v", 6*(i+1), err)
		}
	}
	// Now nobody uses it: past idle it must be refused on both.
	clock.Advance(idle)
	for _, e := range []*cacheEnv{a, b} {
		if _, _, err := e.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrIdle) {
			t.Fatalf("after idle: %v", err)
		}
	}
}

// (3) IPRevoke decided on A; B serving from its cache from the old address.
func TestIPRevokeAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b, _ := instancePair(t, store.CacheOptions{})
	v := a.Login(t, uuid.New())
	b.mustAuth(t, v.Token, 1)
	b.mustAuth(t, v.Token, 0)
	other := netip.MustParseAddr("198.51.100.9")
	if _, err := a.M.AuthenticateWith(ctx, v.Token, other, func(sessionkit.UpdateSessionActivityResult) bool { return true }); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("A from a new address under revoke: %v", err)
	}
	until(t, "B refuses", func() error {
		if _, _, err := b.auth(v.Token, loginIP); errors.Is(err, sessionkit.ErrRevoked) {
			return nil
		}
		return errors.New("served")
	})
}

// (3b) IPDecision allowing a change on A; B then sees a request from the old
// address: the change back is decided, as the change is announced.
func TestIPDecisionAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b, _ := instancePair(t, store.CacheOptions{})
	v := a.Login(t, uuid.New())
	b.mustAuth(t, v.Token, 1)
	other := netip.MustParseAddr("198.51.100.9")
	if res, err := a.M.AuthenticateWith(ctx, v.Token, other, func(sessionkit.UpdateSessionActivityResult) bool { return false }); err != nil || !res.IPChanged {
		t.Fatalf("A allowed: %v %v", res.IPChanged, err)
	}
	// Within the Pub/Sub delivery time, as for a revocation.
	before := b.Cache.Stats().Invalidations
	_ = redistest.WaitFor(time.Second, func() error {
		if b.Cache.Stats().Invalidations == before {
			return errors.New("no announcement")
		}
		return nil
	})
	decided := false
	res, err := b.M.AuthenticateWith(ctx, v.Token, loginIP, func(sessionkit.UpdateSessionActivityResult) bool { decided = true; return true })
	t.Logf("B from the first address after A recorded a move: changed=%v decided=%v err=%v", res.IPChanged, decided, err)
	if !decided {
		t.Errorf("B served the session from %s without deciding, though Redis holds %s as its address", loginIP, other)
	}
}

// (6) refresh on A while B holds access token and session cached.
func TestRefreshAcrossInstances(t *testing.T) {
	ctx := context.Background()
	tokens := sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: -1}) // one key, both instances
	a, b, _ := instancePair(t, store.CacheOptions{}, tokens)
	login, err := a.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	b.mustAuth(t, login.Tokens.AccessToken, 1)
	b.mustAuth(t, login.Tokens.AccessToken, 0)
	next, err := a.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.auth(next.Tokens.AccessToken, loginIP); err != nil {
		t.Fatalf("B with the new access token: %v", err)
	}
	// reuse of the superseded refresh token on B revokes; A refuses at once-ish.
	if _, err := b.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken}); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("reuse on B: %v", err)
	}
	until(t, "A refuses after reuse", func() error {
		if _, _, err := a.auth(next.Tokens.AccessToken, loginIP); errors.Is(err, sessionkit.ErrRevoked) {
			return nil
		}
		return errors.New("served")
	})
}

// (7) revoke-all on A while B has queued activity writes.
func TestRevokeAllWithQueuedWrites(t *testing.T) {
	ctx := context.Background()
	a, b, clock := instancePair(t, store.CacheOptions{}, sessionkit.WithActivityWriteDelay(time.Second), sessionkit.WithIdleTimeout(time.Hour))
	user := uuid.New()
	var vs []sessionkit.CreateSessionResult
	for range 3 {
		v := a.Login(t, user)
		b.mustAuth(t, v.Token, 1)
		vs = append(vs, v)
	}
	clock.Advance(2 * time.Minute)
	for _, v := range vs {
		if res, n, err := b.auth(v.Token, loginIP); err != nil || n != 0 || res.Written {
			t.Fatalf("B queues: %v %d %v", err, n, res.Written)
		}
	}
	before := b.Dump(t)
	res, err := a.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: sessionkit.ReasonLogoutAll})
	if err != nil || res.Revoked != 3 {
		t.Fatalf("revoke all: %v %v", res, err)
	}
	after := b.Dump(t)
	_ = before
	if err := b.M.Close(ctx); err != nil { // sends the queue
		t.Fatal(err)
	}
	final := b.Dump(t)
	for k, v := range after {
		if final[k] != v {
			t.Errorf("key %s changed by B's queued writes after the revoke-all:\n before %q\n after  %q", k, v, final[k])
		}
	}
	for _, v := range vs {
		s := a.Session(t, v.Session.ID)
		if s.RevokedAt.IsZero() {
			t.Errorf("session %s active again", v.Session.ID)
		}
	}
	b.CheckTTLs(t)
}

// (8) a support session opened on A, served by B's cache, keeps its mark.
func TestSupportSessionAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b, _ := instancePair(t, store.CacheOptions{})
	user := uuid.New()
	if err := a.M.SetUserLimit(ctx, user, 1); err != nil {
		t.Fatal(err)
	}
	own := b.Login(t, user)
	sup, err := a.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac,
		ExpiresAt: a.M.Now().Add(time.Hour), ImpersonatedBy: "support (carol)"})
	if err != nil || len(sup.Evicted) != 0 {
		t.Fatalf("support session: %v evicted %v", err, sup.Evicted)
	}
	b.mustAuth(t, sup.Token, 1)
	res := b.mustAuth(t, sup.Token, 0)
	if res.Session.ImpersonatedBy != "support (carol)" {
		t.Fatalf("B's cached support session: impersonated_by %q", res.Session.ImpersonatedBy)
	}
	// The user's own sign-in on B evicts their own session, never the support one.
	n := b.Login(t, user)
	if len(n.Evicted) != 1 || n.Evicted[0] != own.Session.ID {
		t.Fatalf("evicted %v, want the user's own", n.Evicted)
	}
	a.mustAuth(t, sup.Token, 1)
	// Sign-out everywhere by the user on B (except current) reaches the support session on A.
	r, err := b.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, ExceptSessionID: n.Session.ID, Reason: sessionkit.ReasonLogoutAll})
	t.Logf("revoke all except current: %+v %v", r, err)
	until(t, "A refuses the support session", func() error {
		if _, _, err := a.auth(sup.Token, loginIP); errors.Is(err, sessionkit.ErrRevoked) {
			return nil
		}
		return errors.New("served")
	})
}

// (2b) the new token on B right after the rotation on A is accepted,
// though B's entry holds the old secret's hash until the announcement
// arrives: a secret the entry does not know is checked against Redis.
func TestNewTokenRightAfterRotation(t *testing.T) {
	ctx := context.Background()
	a, b, _ := instancePair(t, store.CacheOptions{})
	user := uuid.New()
	refused := 0
	const rounds = 200
	for range rounds {
		v := a.Login(t, user)
		b.mustAuth(t, v.Token, 1)
		rn, err := a.M.RenewSession(ctx, v.Session, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.auth(rn.Token, loginIP); err != nil {
			refused++
		}
		a.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: user, Reason: "x"})
	}
	if refused > 0 {
		t.Errorf("B refused the freshly rotated token %d times of %d", refused, rounds)
	}
}

// TestAccessTokensAcrossInstancesAtRenewal: after a renewal on A, B
// (holding the session cached) serves the access token A minted with it at
// once, and refuses the one minted before it once A's announcement has
// arrived. The old token costs B one read of Redis a request, as a wrong
// cookie secret does: the read that tells a renewal not yet announced.
func TestAccessTokensAcrossInstancesAtRenewal(t *testing.T) {
	ctx := context.Background()
	tokens := sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}) // one key, both instances
	a, b, _ := instancePair(t, store.CacheOptions{}, tokens)
	user := uuid.New()
	const rounds = 20
	refused := 0
	for range rounds {
		login, err := a.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac, Bearer: true})
		if err != nil {
			t.Fatal(err)
		}
		until(t, "B holds the session", func() error { // an announcement of the last round may keep it out once
			if _, n, err := b.auth(login.Tokens.AccessToken, loginIP); err != nil || n != 0 {
				return fmt.Errorf("%d round trips, %v", n, err)
			}
			return nil
		})
		announced := b.Cache.Stats().Invalidations
		renewed, err := a.M.RenewSession(ctx, login.Session, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.auth(renewed.Tokens.AccessToken, loginIP); err != nil {
			refused++
		}
		until(t, "B hears of the renewal", func() error {
			if b.Cache.Stats().Invalidations == announced {
				return errors.New("not yet")
			}
			return nil
		})
		if _, _, err := b.auth(login.Tokens.AccessToken, loginIP); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("the access token minted before the renewal, on B: %v, want ErrNotFound", err)
		}
		b.mustAuth(t, renewed.Tokens.AccessToken, 0)
		if _, n, err := b.auth(login.Tokens.AccessToken, loginIP); !errors.Is(err, sessionkit.ErrNotFound) || n != 1 {
			t.Fatalf("the old access token on B once the entry is fresh: %v after %d round trips, want ErrNotFound after 1", err, n)
		}
		if _, err := a.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: login.Session.ID, UserID: user, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if refused > 0 {
		t.Errorf("B refused the access token minted at the renewal %d times of %d", refused, rounds)
	}
}
