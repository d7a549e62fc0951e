package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// cacheTTL is the cached instances' TTL: a second, not the default minute,
// so that waiting for an entry to age out stays short and a revocation's
// bound stays tight (the cache never relies on the TTL for revocations).
const cacheTTL = time.Second

// cacheBound is how long past the cache TTL a cached instance may take to
// refuse a session whose state changed elsewhere: generous, because the
// machine running the tests is shared and noisy.
const cacheBound = cacheTTL + time.Second

// cachedInstance is one app instance with the opt-in verified-session
// cache, on a shared key prefix, as several instances of an app run.
type cachedInstance struct {
	*app
	cache *store.Cache
}

func newCachedInstance(tb testing.TB, rdb redis.UniversalClient, prefix string, users map[string]string) *cachedInstance {
	tb.Helper()
	f := &fixture{sessiontest.New(tb, sessiontest.Options{Client: rdb, Prefix: prefix, RealTime: true, Cache: &store.CacheOptions{TTL: cacheTTL}},
		withAppLogger(nil)...)}
	a := newApp(tb, f, appOptions{})
	for name, id := range users { // the instances of one app share its users
		a.users[name] = uuid.MustParse(id)
	}
	return &cachedInstance{app: a, cache: f.Cache}
}

// userIDs returns an app's users as strings, to share them with another instance.
func userIDs(a *app) map[string]string {
	out := map[string]string{}
	for name, id := range a.users {
		out[name] = id.String()
	}
	return out
}

// refusedWithin polls GET /app/data with tok until it answers want, and
// returns how long that took. It fails the test if tok is still served (200)
// after bound, or gets any other answer. (A refusal may itself be slow while
// the client retries a dead server: that is latency, not serving.)
func refusedWithin(t *testing.T, a *app, tok string, want int, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := a.mustDo(t, http.MethodGet, "/app/data", tok, "", nil)
		if r.status == want {
			return time.Since(start)
		}
		if r.status != http.StatusOK {
			t.Fatalf("waiting for %d: got %d %s", want, r.status, r.body)
		}
		if time.Since(start) > bound {
			t.Fatalf("still served %v later, want %d within %v", time.Since(start).Round(time.Millisecond), want, bound)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCacheRevocationReachesEveryInstance runs two instances of an app with
// the verified-session cache over one Redis. A session is signed out on one
// instance after the other has cached it: the instance that signed it out
// refuses it on the very next request, and the other within the Pub/Sub
// delivery time (bounded by the cache TTL).
func TestCacheRevocationReachesEveryInstance(t *testing.T) {
	srv := sharedServer(t)
	prefix := redistest.Prefix(t)
	a := newCachedInstance(t, srv.Client(t), prefix, nil)
	b := newCachedInstance(t, srv.Client(t), prefix, userIDs(a.app))

	var delays []time.Duration
	for i := range 20 {
		tok := a.mustSignIn(t, "alice")
		other := a.mustSignIn(t, "alice")
		for range 2 { // the second is answered from B's memory
			if r := b.mustDo(t, http.MethodGet, "/app/data", tok, "", nil); r.status != http.StatusOK {
				t.Fatalf("round %d: B before the revocation: got %d", i, r.status)
			}
		}
		// Alternate which instance revokes and how.
		revoker, remote := a, b
		if i%2 == 1 {
			revoker, remote = b, a
		}
		id, _, _ := strings.Cut(tok, ".")
		switch i % 4 {
		case 0, 1:
			revoker.mustDo(t, http.MethodDelete, "/sessions/current", tok, "", nil)
		default:
			if r := revoker.mustDo(t, http.MethodDelete, "/sessions/"+id, other, "", nil); r.status != http.StatusNoContent {
				t.Fatalf("round %d: revoke by id: got %d", i, r.status)
			}
		}
		if r := revoker.mustDo(t, http.MethodGet, "/app/data", tok, "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("round %d: the revoking instance's next request: got %d, want 401", i, r.status)
		}
		delays = append(delays, refusedWithin(t, remote.app, tok, http.StatusUnauthorized, cacheBound))
	}
	slices.Sort(delays)
	st := b.cache.Stats()
	if st.Hits == 0 {
		t.Errorf("instance B's cache served no hits: the test exercised no cached session (%+v)", st)
	}
	t.Logf("revocation refused on the other instance after: p50 %v, max %v (bound %v); B's cache: %+v",
		delays[len(delays)/2], delays[len(delays)-1], cacheBound, st)
}

// TestCacheFailsClosedWhenRedisDies kills Redis under an instance whose cache
// holds a session: the cache turns off with its Pub/Sub connection, so every
// request is 503 within the cache TTL and stays 503 while Redis is down; it
// works again after the restart.
func TestCacheFailsClosedWhenRedisDies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	a := newCachedInstance(t, srv.Client(t), redistest.Prefix(t), nil)
	tok := a.mustSignIn(t, "alice")
	for range 2 {
		if r := a.mustDo(t, http.MethodGet, "/app/data", tok, "", nil); r.status != http.StatusOK {
			t.Fatalf("before: got %d", r.status)
		}
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	d := refusedWithin(t, a.app, tok, http.StatusServiceUnavailable, cacheBound)
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		wantUnavailable(t, "GET /app/data while down", a.mustDo(t, http.MethodGet, "/app/data", tok, "", nil))
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.WaitFor(15*time.Second, func() error {
		if r := a.mustDo(t, http.MethodGet, "/app/data", tok, "", nil); r.status != http.StatusOK {
			return fmt.Errorf("got %d, want 200", r.status)
		}
		return nil
	}); err != nil {
		t.Fatal("the session was not served again after the restart")
	}
	t.Logf("first answer after Redis died: 503, after %v; cache: %+v", d.Round(time.Millisecond), a.cache.Stats())
}

// TestCacheIndexKeyDeleted deletes a user's hash of active sessions by hand under an
// instance whose cache holds their session. No revocation is announced, so
// the cache may serve the session until its entry ages out (documented);
// after that the session is refused, never served from stale state.
func TestCacheIndexKeyDeleted(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	prefix := redistest.Prefix(t)
	a := newCachedInstance(t, rdb, prefix, nil)
	tok := a.mustSignIn(t, "alice")
	for range 2 {
		a.mustDo(t, http.MethodGet, "/app/data", tok, "", nil)
	}
	keys, err := rediskey.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(context.Background(), keys.ForUser(a.users["alice"]).Active).Err(); err != nil {
		t.Fatal(err)
	}
	d := refusedWithin(t, a.app, tok, http.StatusUnauthorized, cacheBound)
	for range 5 {
		if r := a.mustDo(t, http.MethodGet, "/app/data", tok, "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("after the entry aged out: got %d, want 401", r.status)
		}
	}
	t.Logf("refused %v after the index was deleted (cache TTL %v)", d.Round(time.Millisecond), cacheTTL)
}

// TestCacheRenewalReachesEveryInstance: a renewal rotates the secret and
// keeps the session; the old cookie must stop working on an instance whose
// cache holds the session (with the old secret's hash) as fast as a
// revocation does.
func TestCacheRenewalReachesEveryInstance(t *testing.T) {
	srv := sharedServer(t)
	prefix := redistest.Prefix(t)
	a := newCachedInstance(t, srv.Client(t), prefix, nil)
	b := newCachedInstance(t, srv.Client(t), prefix, userIDs(a.app))
	tok := a.mustSignIn(t, "alice")
	for range 2 { // the second is answered from B's memory
		if r := b.mustDo(t, http.MethodGet, "/app/data", tok, "", nil); r.status != http.StatusOK {
			t.Fatalf("B before the renewal: got %d", r.status)
		}
	}
	id, _, _ := strings.Cut(tok, ".")
	s, err := a.f.M.Session(t.Context(), uuid.MustParse(id))
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.f.M.RenewSession(t.Context(), s, "", "")
	if err != nil {
		t.Fatal(err)
	}
	d := refusedWithin(t, b.app, tok, http.StatusUnauthorized, cacheBound)
	if r := b.mustDo(t, http.MethodGet, "/app/data", res.Token, "", nil); r.status != http.StatusOK {
		t.Errorf("B with the renewed cookie: got %d", r.status)
	}
	t.Logf("the old cookie refused on the other instance after %v (bound %v)", d, cacheBound)
}
