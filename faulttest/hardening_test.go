package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// The audit's defects 1 to 3 (issue "Hardening"): each test failed before
// its fix.

// TestIndexRepairComparesMembers puts one stray member into a user's index
// and takes one real session out of it, so that the counts still match:
// sign out everywhere must still reach the real session, and never count
// the stray one.
func TestIndexRepairComparesMembers(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	f := newFixture(t, rdb)
	ctx := context.Background()
	user := uuid.New()
	a, b := f.mustLogin(t, user), f.mustLogin(t, user)
	keys := f.KeyNames(t)
	idx := keys.ForUser(user).Index
	stray, err := sessionid.New(user) // a member of the right shape that no session has
	if err != nil {
		t.Fatal(err)
	}
	score, err := rdb.ZScore(ctx, idx, sessionid.Member(b.Session.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZRem(ctx, idx, sessionid.Member(b.Session.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, idx, redis.Z{Score: score, Member: sessionid.Member(stray)}).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "password_changed"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uuid.UUID]bool{}
	for _, id := range res.SessionIDs {
		got[id] = true
	}
	if res.Revoked != 2 || !got[a.Session.ID] || !got[b.Session.ID] {
		t.Errorf("revoked %d %v; want exactly the two real sessions %v and %v", res.Revoked, res.SessionIDs, a.Session.ID, b.Session.ID)
	}
	for _, s := range []sessionkit.CreateSessionResult{a, b} {
		if err := f.auth(s.Token); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("session %v after sign-out everywhere: got %v, want revoked", s.Session.ID, err)
		}
	}
	f.CheckTTLs(t)
}

// TestRebuiltIndexHasATTL loses a user's index and signs out everywhere
// else with nothing else to sign out: the rebuilt index must expire.
func TestRebuiltIndexHasATTL(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	f := newFixture(t, rdb)
	ctx := context.Background()
	user := uuid.New()
	only := f.mustLogin(t, user)
	keys := f.KeyNames(t)
	if err := rdb.Del(ctx, keys.ForUser(user).Index).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: sessionkit.ReasonLogoutAll, ExceptSessionID: only.Session.ID})
	if err != nil || res.Revoked != 0 {
		t.Fatalf("sign out everywhere else: %+v, %v; want 0 revoked", res, err)
	}
	if n, err := rdb.Exists(ctx, keys.ForUser(user).Index).Result(); err != nil || n != 1 {
		t.Fatalf("the index was not rebuilt: %d, %v", n, err)
	}
	f.CheckTTLs(t)
	if err := f.auth(only.Token); err != nil {
		t.Errorf("the kept session: %v", err)
	}
}

// TestRefusedSignInRebuiltIndexHasATTL loses a user's index and then signs
// in at the limit under RejectNew: the sign-in rebuilds the index to count
// the user's sessions, and is refused; the rebuilt index must expire like
// any other.
func TestRefusedSignInRebuiltIndexHasATTL(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	f := newFixture(t, rdb, sessionkit.WithLimit(sessionkit.FixedLimit(1)),
		sessionkit.WithLimitPolicy(func(context.Context, uuid.UUID) (sessionkit.LimitPolicy, error) { return sessionkit.RejectNew, nil }))
	ctx := context.Background()
	user := uuid.New()
	only := f.mustLogin(t, user)
	keys := f.KeyNames(t)
	if err := rdb.Del(ctx, keys.ForUser(user).Index).Err(); err != nil {
		t.Fatal(err)
	}
	var limit *sessionkit.LimitError
	if _, err := f.login(user); !errors.As(err, &limit) {
		t.Fatalf("sign-in at the limit: got %v, want a *LimitError", err)
	}
	if n, err := rdb.Exists(ctx, keys.ForUser(user).Index).Result(); err != nil || n != 1 {
		t.Fatalf("the index was not rebuilt: %d, %v", n, err)
	}
	f.CheckTTLs(t)
	if err := f.auth(only.Token); err != nil {
		t.Errorf("the kept session: %v", err)
	}
}

// TestCorruptLimitOverrideWritesNothing stores a per-user limit override
// that is not a number (set by hand): the login is refused before anything
// is written, and nothing of the user's is left without a TTL.
func TestCorruptLimitOverrideWritesNothing(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	f := newFixture(t, rdb)
	ctx := context.Background()
	user := uuid.New()
	f.mustLogin(t, user)
	keys := f.KeyNames(t)
	for _, bad := range []string{"abc", "2.5", "0", "-7", "-1.5", ""} {
		t.Run(bad, func(t *testing.T) {
			if err := rdb.Set(ctx, keys.ForUser(user).Limit, bad, 0).Err(); err != nil {
				t.Fatal(err)
			}
			before := f.Dump(t)
			_, err := f.login(user)
			if !errors.Is(err, sessionkit.ErrUnavailable) {
				t.Errorf("login: got %v, want ErrUnavailable", err)
			}
			if diff := sessiontest.Diff(before, f.Dump(t)); len(diff) != 0 {
				t.Errorf("a refused login wrote: %v", diff)
			}
		})
	}
	// Repaired by the app, the user signs in again.
	if err := f.M.SetUserLimit(ctx, user, 3); err != nil {
		t.Fatal(err)
	}
	f.mustLogin(t, user)
	f.CheckTTLs(t)
}

// TestIPRevokeFailsClosedOutOfMemory: while Redis refuses writes, an address
// change cannot be recorded. A policy that acts on the change (IPRevoke, or
// an IPDecision) must then refuse the request with 503 rather than serve it
// from the new address; IPFlag keeps serving, flagged, as documented.
func TestIPRevokeFailsClosedOutOfMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{MaxMemoryPolicy: "noeviction"})
	rdb := srv.Client(t)
	f := newFixture(t, rdb)
	ctx := context.Background()
	s := f.mustLogin(t, uuid.New())
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.ConfigSet(context.Background(), "maxmemory", "0") })
	decided := 0
	for _, tc := range []struct {
		name   string
		opts   middleware.Options
		status int
		reason string
	}{
		{"IPRevoke", middleware.Options{IPPolicy: middleware.IPRevoke}, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable},
		{"IPDecision revoking", middleware.Options{IPDecision: func(*http.Request, sessionkit.Session, middleware.IPChange) middleware.IPPolicy {
			decided++
			return middleware.IPRevoke
		}}, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable},
		{"IPFlag", middleware.Options{}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := middleware.NewAuthenticator(f.M, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var flagged bool
			h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, flagged = middleware.IPChanged(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/app/data", nil)
			r.RemoteAddr = "198.51.100.99:4711" // not the sign-in address
			r.Header.Set("Cookie", middleware.DefaultCookieName+"="+s.Token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tc.status)
			}
			if tc.reason != "" {
				var p middleware.Problem
				json.Unmarshal(w.Body.Bytes(), &p)
				if p.Reason != tc.reason {
					t.Errorf("reason: got %q, want %q", p.Reason, tc.reason)
				}
			} else if !flagged {
				t.Error("served without the address change flagged")
			}
		})
	}
	if decided != 1 {
		t.Errorf("IPDecision called %d times, want 1", decided)
	}
}

// TestProviderRecordingRefusesCrossSite: a top-level navigation from another
// site carries the SameSite=Lax cookie; it must not write the audit trail.
func TestProviderRecordingRefusesCrossSite(t *testing.T) {
	f := newFixture(t, sharedServer(t).Client(t))
	s := f.mustLogin(t, uuid.New())
	a, err := middleware.NewAuthenticator(f.M, middleware.Options{})
	if err != nil {
		t.Fatal(err)
	}
	served := false
	h := a.Middleware(middleware.RecordProvider("schwab", middleware.ProviderOptions{})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })))
	for _, tc := range []struct {
		site   string
		status int
		record bool
	}{
		{"cross-site", http.StatusForbidden, false},
		{"same-site", http.StatusForbidden, false},
		{"same-origin", http.StatusOK, true},
		{"none", http.StatusOK, true}, // typed in the address bar, a bookmark
		{"", http.StatusOK, true},     // no Fetch Metadata: an API client
	} {
		t.Run("Sec-Fetch-Site "+tc.site, func(t *testing.T) {
			served = false
			r := httptest.NewRequest(http.MethodGet, "/schwab/accounts", nil)
			r.RemoteAddr = testIP + ":4711"
			r.Header.Set("Cookie", middleware.DefaultCookieName+"="+s.Token)
			if tc.site != "" {
				r.Header.Set("Sec-Fetch-Site", tc.site)
			}
			before := f.Session(t, s.Session.ID).ProvidersAccessed
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || served != (tc.status == http.StatusOK) {
				t.Fatalf("got %d (served %v), want %d", w.Code, served, tc.status)
			}
			after := f.Session(t, s.Session.ID).ProvidersAccessed
			switch {
			case tc.record && !slices.Contains(after, "schwab"):
				t.Errorf("providers: got %v, want schwab recorded", after)
			case !tc.record && !slices.Equal(after, before):
				t.Errorf("providers: got %v, want unchanged %v", after, before)
			}
		})
	}
}

// TestClientsThatWouldMissRevocations: a Ring under the cache (revocations
// published on other shards than the one subscribed) and a cluster client
// reading from replicas (revocations not yet replicated) are refused at
// start-up, with a clear error.
func TestClientsThatWouldMissRevocations(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": sharedServer(t).Addr()}})
	defer ring.Close()
	st, err := store.NewRedis(ring, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatalf("a Ring without the cache: %v", err)
	}
	if _, err := store.NewCache(st, store.CacheOptions{}); !errors.Is(err, sessionkit.ErrInvalid) || !strings.Contains(err.Error(), "Ring") {
		t.Errorf("NewCache over a Ring: got %v, want ErrInvalid naming the Ring", err)
	}
	for name, o := range map[string]redis.ClusterOptions{
		"ReadOnly":       {ReadOnly: true},
		"RouteByLatency": {RouteByLatency: true},
		"RouteRandomly":  {RouteRandomly: true},
	} {
		o.Addrs = sharedCluster(t).Addrs()
		c := redis.NewClusterClient(&o)
		_, err := store.NewRedis(c, store.Options{})
		c.Close()
		if !errors.Is(err, sessionkit.ErrInvalid) || !strings.Contains(err.Error(), "replicas") {
			t.Errorf("%s: got %v, want ErrInvalid about reads from replicas", name, err)
		}
	}
}
