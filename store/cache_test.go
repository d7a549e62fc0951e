package store_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// loginIP is where sessiontest.Fixture.Login signs in from.
var loginIP = netip.MustParseAddr(sessiontest.LoginIP)

// cacheEnv is one app instance: its own client (its round trips
// counted), store, cache and Manager.
type cacheEnv struct{ *sessiontest.Fixture }

func newCacheEnv(t *testing.T, client redis.UniversalClient, prefix string, clock *redistest.Clock, copts store.CacheOptions, opts ...sessionkit.Option) *cacheEnv {
	t.Helper()
	return &cacheEnv{sessiontest.New(t, sessiontest.Options{Client: client, OwnClient: true, Prefix: prefix, Clock: clock, Cache: &copts}, opts...)}
}

// auth authenticates tok from ip and tells how many round trips it made.
func (e *cacheEnv) auth(tok string, ip netip.Addr) (sessionkit.UpdateSessionActivityResult, int64, error) {
	before := e.Calls.RoundTrips()
	res, err := e.M.Authenticate(context.Background(), tok, ip)
	return res, e.Calls.RoundTrips() - before, err
}

// mustAuth authenticates and checks whether it reached Redis.
func (e *cacheEnv) mustAuth(t *testing.T, tok string, wantRoundTrips int64) sessionkit.UpdateSessionActivityResult {
	t.Helper()
	res, n, err := e.auth(tok, loginIP)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if n != wantRoundTrips {
		t.Fatalf("round trips of Authenticate: got %d, want %d", n, wantRoundTrips)
	}
	return res
}

func TestCacheOptions(t *testing.T) {
	st, err := store.NewRedis(backends[0].Client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    *store.Redis
		opts store.CacheOptions
		want string // "" means valid
	}{
		{"defaults", st, store.CacheOptions{}, ""},
		{"max ttl", st, store.CacheOptions{TTL: store.MaxCacheTTL}, ""},
		{"ttl of ten minutes", st, store.CacheOptions{TTL: 10 * time.Minute}, ""},
		{"nil store", nil, store.CacheOptions{}, "Redis"},
		{"ttl above bound", st, store.CacheOptions{TTL: store.MaxCacheTTL + time.Millisecond}, "TTL"},
		{"negative ttl", st, store.CacheOptions{TTL: -time.Second}, "TTL"},
		{"negative entries", st, store.CacheOptions{MaxEntries: -1}, "MaxEntries"},
		{"negative health check", st, store.CacheOptions{HealthCheck: -1}, "HealthCheck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := store.NewCache(tt.r, tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				c.Close()
				return
			}
			if !errors.Is(err, sessionkit.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalid naming %s", err, tt.want)
			}
		})
	}
}

func TestCacheHitAvoidsRedis(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		e := newCacheEnv(t, b.Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL})
		res := e.Login(t, uuid.New())
		first := e.mustAuth(t, res.Token, 1)
		for range 3 {
			got := e.mustAuth(t, res.Token, 0)
			if got.Session.ID != res.Session.ID || got.Session.UserID != res.Session.UserID {
				t.Fatalf("cached session: got %s of %s, want %s of %s", got.Session.ID, got.Session.UserID, res.Session.ID, res.Session.UserID)
			}
			if got.Written || !got.Session.LastActivityAt.Equal(first.Session.LastActivityAt) {
				t.Fatalf("cached answer: written %v, last activity %v, want false, %v", got.Written, got.Session.LastActivityAt, first.Session.LastActivityAt)
			}
		}
		if s := e.Cache.Stats(); s.Hits != 3 || s.Misses != 1 || s.Entries != 1 {
			t.Fatalf("stats: got %+v, want 3 hits, 1 miss, 1 entry", s)
		}
	})
}

// TestCacheAnswersTheSameSession: a hit gives back every field of the
// session as a fresh read does, and a slice the caller may change.
func TestCacheAnswersTheSameSession(t *testing.T) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL},
		sessionkit.WithIdleTimeout(time.Hour))
	v := e.Login(t, uuid.New())
	for _, p := range []string{"schwab", "fidelity"} {
		if _, err := e.M.RecordProviderAccess(context.Background(), sessionkit.RecordProviderAccess{SessionID: v.Session.ID, ProviderName: p}); err != nil {
			t.Fatal(err)
		}
	}
	other := netip.MustParseAddr("198.51.100.9")
	if res, _, err := e.auth(v.Token, other); err != nil || !res.IPChanged { // a last address of its own
		t.Fatalf("from a new address: got changed %v, %v", res.IPChanged, err)
	}
	e.Cache.Close() // the next read is fresh
	fresh, _, err := e.auth(v.Token, other)
	if err != nil {
		t.Fatal(err)
	}
	c := newCacheEnv(t, backends[0].Client, e.Prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL}, sessionkit.WithIdleTimeout(time.Hour))
	for want := range 2 { // a read, then a hit
		if _, n, err := c.auth(v.Token, other); err != nil || n != int64(1-want) {
			t.Fatalf("round trips: got %d, %v; want %d", n, err, 1-want)
		}
	}
	hit, n, err := c.auth(v.Token, other)
	if err != nil || n != 0 {
		t.Fatalf("a hit: got %d round trips, %v", n, err)
	}
	if !reflect.DeepEqual(hit.Session, fresh.Session) {
		t.Fatalf("from memory:\n%+v\nwant, as read from Redis:\n%+v", hit.Session, fresh.Session)
	}
	if len(hit.Session.ProvidersAccessed) != 2 {
		t.Fatalf("providers: got %v, want 2", hit.Session.ProvidersAccessed)
	}
	hit.Session.ProvidersAccessed[0] = "changed"
	again, _, err := c.auth(v.Token, other)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Session, fresh.Session) {
		t.Fatalf("after the caller changed its copy: got %+v, want %+v", again.Session, fresh.Session)
	}
}

// otherSecret keeps tok's session id and replaces its secret.
func otherSecret(t *testing.T, tok string) string {
	t.Helper()
	id, _, ok := strings.Cut(tok, ".")
	if !ok {
		t.Fatalf("token without a dot")
	}
	var secret [32]byte
	rand.Read(secret[:])
	return id + "." + base64.RawURLEncoding.EncodeToString(secret[:])
}

func TestCacheNeverServesWrongToken(t *testing.T) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	res := e.Login(t, uuid.New())
	for i := range 3 { // first uncached, then cached
		if _, _, err := e.auth(otherSecret(t, res.Token), loginIP); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("attempt %d with a wrong secret: got %v, want ErrNotFound", i, err)
		}
	}
	e.mustAuth(t, res.Token, 0) // the entry the wrong attempts loaded serves the right token only
	// A secret the entry does not know is checked against Redis (one read,
	// as without the cache): it may have been rotated on another instance
	// whose announcement has not arrived yet (TestReviewNewTokenRightAfterRotation).
	if _, n, err := e.auth(otherSecret(t, res.Token), loginIP); !errors.Is(err, sessionkit.ErrNotFound) || n != 1 {
		t.Fatalf("wrong secret, cached: got %v with %d round trips, want ErrNotFound with one read", err, n)
	}
	e.mustAuth(t, res.Token, 0) // still served from memory
}

func TestCacheRevocationReachesOtherInstance(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(t *testing.T, a *cacheEnv, victim sessionkit.CreateSessionResult)
		reason string
	}{
		{"revoke", func(t *testing.T, a *cacheEnv, v sessionkit.CreateSessionResult) {
			if _, err := a.M.RevokeSession(context.Background(), sessionkit.RevokeSession{
				SessionID: v.Session.ID, UserID: v.Session.UserID, Reason: sessionkit.ReasonUserRevoked}); err != nil {
				t.Fatal(err)
			}
		}, sessionkit.ReasonUserRevoked},
		{"revoke all", func(t *testing.T, a *cacheEnv, v sessionkit.CreateSessionResult) {
			if _, err := a.M.RevokeAllUserSessions(context.Background(), sessionkit.RevokeAllUserSessions{
				UserID: v.Session.UserID, Reason: sessionkit.ReasonLogoutAll}); err != nil {
				t.Fatal(err)
			}
		}, sessionkit.ReasonLogoutAll},
		{"eviction by the limit", func(t *testing.T, a *cacheEnv, v sessionkit.CreateSessionResult) {
			if err := a.M.SetUserLimit(context.Background(), v.Session.UserID, 1); err != nil {
				t.Fatal(err)
			}
			if got := a.Login(t, v.Session.UserID); len(got.Evicted) != 1 || got.Evicted[0] != v.Session.ID {
				t.Fatalf("evicted: got %v, want [%s]", got.Evicted, v.Session.ID)
			}
		}, sessionkit.ReasonLimitExceeded},
	}
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				prefix := redistest.Prefix(t)
				a := newCacheEnv(t, b.Client, prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL})
				bb := newCacheEnv(t, b.Client, prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL})
				v := a.Login(t, uuid.New())
				bb.mustAuth(t, v.Token, 1)
				bb.mustAuth(t, v.Token, 0) // cached on B
				a.mustAuth(t, v.Token, 1)  // and on A
				tt.revoke(t, a, v)

				// On A its own write dropped the entry at once.
				_, _, err := a.auth(v.Token, loginIP)
				var re *sessionkit.RevokedError
				if !errors.As(err, &re) || re.Reason != tt.reason {
					t.Fatalf("A right after the revocation: got %v, want revoked (%s)", err, tt.reason)
				}
				// B hears of it through Pub/Sub, well within the TTL.
				start := time.Now()
				for {
					_, _, err := bb.auth(v.Token, loginIP)
					if errors.As(err, &re) {
						if re.Reason != tt.reason {
							t.Fatalf("B: got reason %q, want %q", re.Reason, tt.reason)
						}
						break
					}
					if err != nil {
						t.Fatalf("B: got %v, want the session or a revocation", err)
					}
					if time.Since(start) > 3*time.Second {
						t.Fatalf("B still serves the session %v after the revocation", time.Since(start))
					}
					time.Sleep(100 * time.Microsecond)
				}
				if s := bb.Cache.Stats(); s.Invalidations == 0 {
					t.Fatalf("B's invalidations: got 0, want the announcement to have dropped the entry (%+v)", s)
				}
			})
		}
	})
}

func TestCacheRevocationPropagation(t *testing.T) {
	// Functional twin of BenchmarkRevocationPropagation: every revocation is
	// refused on the second instance, long before the entry would age out.
	prefix := redistest.Prefix(t)
	a := newCacheEnv(t, backends[0].Client, prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	b := newCacheEnv(t, backends[0].Client, prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	user := uuid.New()
	var worst time.Duration
	for i := range 50 {
		v := a.Login(t, user)
		b.mustAuth(t, v.Token, 1)
		d, err := propagate(context.Background(), a.M, b.M, v)
		if err != nil {
			t.Fatalf("revocation %d: %v", i, err)
		}
		worst = max(worst, d)
	}
	t.Logf("slowest of 50 revocations to reach the second instance: %v", worst)
}

// propagate revokes v on a and returns how long b kept accepting it.
func propagate(ctx context.Context, a, b *sessionkit.Manager, v sessionkit.CreateSessionResult) (time.Duration, error) {
	start := time.Now()
	if _, err := a.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: v.Session.UserID, Reason: sessionkit.ReasonLogout}); err != nil {
		return 0, err
	}
	for {
		_, err := b.Authenticate(ctx, v.Token, loginIP)
		if errors.Is(err, sessionkit.ErrRevoked) {
			return time.Since(start), nil
		}
		if err != nil {
			return 0, err
		}
		if time.Since(start) > 4*time.Second {
			return 0, errors.New("still accepted after 4s")
		}
	}
}

func TestCacheLocalWritesInvalidateAtOnce(t *testing.T) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	user := uuid.New()
	v := e.Login(t, user)
	e.mustAuth(t, v.Token, 1)
	e.mustAuth(t, v.Token, 0)
	if _, err := e.M.RecordProviderAccess(context.Background(), sessionkit.RecordProviderAccess{SessionID: v.Session.ID, ProviderName: "schwab"}); err != nil {
		t.Fatal(err)
	}
	got := e.mustAuth(t, v.Token, 1) // reads its own write
	if got.Session.LastProviderAccessed != "schwab" {
		t.Fatalf("last provider: got %q, want schwab", got.Session.LastProviderAccessed)
	}
	if _, err := e.M.RevokeSession(context.Background(), sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("right after the revocation: got %v, want ErrRevoked", err)
	}
}

func TestCacheTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	clock := redistest.NewClock()
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{TTL: ttl, Clock: clock.Now})
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1)
	clock.Advance(ttl - time.Millisecond)
	e.mustAuth(t, v.Token, 0)
	clock.Advance(time.Millisecond) // the entry is TTL old: back to Redis
	e.mustAuth(t, v.Token, 1)
	e.mustAuth(t, v.Token, 0)
}

func TestCacheBoundaries(t *testing.T) {
	const throttle = 2 * time.Second
	t.Run("throttle edge writes", func(t *testing.T) {
		clock := redistest.NewClock()
		// The writes on the request path, whose round trips this test counts.
		e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{TTL: store.MaxCacheTTL, Clock: clock.Now},
			sessionkit.WithActivityThrottle(throttle), sessionkit.WithActivityWriteDelay(0))
		v := e.Login(t, uuid.New())
		e.mustAuth(t, v.Token, 1)
		clock.Advance(throttle - time.Millisecond)
		if res := e.mustAuth(t, v.Token, 0); res.Written {
			t.Fatal("before the throttle edge: written true, want false")
		}
		clock.Advance(time.Millisecond)
		written := e.mustAuth(t, v.Token, 1) // the activity script
		if !written.Written {
			t.Fatal("at the throttle edge: written false, want true")
		}
		// The script's answer replaced the entry: no read after the write,
		// and no second write before the throttle elapses again.
		got := e.mustAuth(t, v.Token, 0)
		if got.Written || !got.Session.LastActivityAt.Equal(written.Session.LastActivityAt) {
			t.Fatalf("after the write: written %v, last activity %v; want false, %v", got.Written, got.Session.LastActivityAt, written.Session.LastActivityAt)
		}
		clock.Advance(throttle - time.Millisecond)
		e.mustAuth(t, v.Token, 0)
		clock.Advance(time.Millisecond)
		if res := e.mustAuth(t, v.Token, 1); !res.Written {
			t.Fatal("at the next throttle edge: written false, want true")
		}
	})
	t.Run("expiry edge refused", func(t *testing.T) {
		clock := redistest.NewClock()
		e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{TTL: store.MaxCacheTTL, Clock: clock.Now},
			sessionkit.WithActivityThrottle(throttle))
		v, err := e.M.CreateSession(context.Background(), sessionkit.CreateSession{
			UserID: uuid.New(), IPAddress: loginIP.String(), ExpiresAt: clock.Now().Add(1500 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		e.mustAuth(t, v.Token, 1)
		clock.Advance(1499 * time.Millisecond)
		e.mustAuth(t, v.Token, 0)
		clock.Advance(time.Millisecond)
		if _, _, err := e.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrExpired) {
			t.Fatalf("at the expiry edge: got %v, want ErrExpired", err)
		}
	})
	t.Run("idle edge refused", func(t *testing.T) {
		// The Manager's clock moves; the cache's is real time, so the entry
		// stays young and is the one that answers.
		clock := redistest.NewClock()
		e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{TTL: 500 * time.Millisecond},
			sessionkit.WithActivityThrottle(throttle), sessionkit.WithIdleTimeout(3*time.Second))
		v := e.Login(t, uuid.New())
		e.mustAuth(t, v.Token, 1)
		clock.Advance(3 * time.Second)
		if _, _, err := e.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrIdle) {
			t.Fatalf("at the idle edge: got %v, want ErrIdle", err)
		}
	})
}

// TestCacheNoFalseIdle: activity recorded by another instance must keep a
// session alive on this one, even when this one's entry still holds the
// older last activity.
func TestCacheNoFalseIdle(t *testing.T) {
	const (
		idle     = 2 * time.Second
		throttle = 1900 * time.Millisecond
	)
	clock := redistest.NewClock()
	prefix := redistest.Prefix(t)
	opts := []sessionkit.Option{sessionkit.WithIdleTimeout(idle), sessionkit.WithActivityThrottle(throttle)}
	copts := store.CacheOptions{TTL: time.Second, Clock: clock.Now}
	a := newCacheEnv(t, backends[0].Client, prefix, clock, copts, opts...)
	b := newCacheEnv(t, backends[0].Client, prefix, clock, copts, opts...)
	v := a.Login(t, uuid.New())
	clock.Advance(1850 * time.Millisecond)
	b.mustAuth(t, v.Token, 1) // B reads last activity = login
	clock.Advance(50 * time.Millisecond)
	if res := a.mustAuth(t, v.Token, 2); !res.Written { // A reads, then records activity
		t.Fatal("A at the throttle: written false, want true")
	}
	clock.Advance(100 * time.Millisecond) // login + idle: idle by B's entry, not by Redis
	if _, n, err := b.auth(v.Token, loginIP); err != nil || n != 1 {
		t.Fatalf("B at login + idle: got %v with %d round trips, want the session from a fresh read", err, n)
	}
}

// TestCacheDefaultTTL: with the default options an entry serves its
// session for five minutes after its read; the activity writes the default
// throttle asks for each minute meanwhile refresh its fields, not its age.
func TestCacheDefaultTTL(t *testing.T) {
	clock := redistest.NewClock()
	// The writes on the request path, whose round trips this test counts.
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{Clock: clock.Now}, sessionkit.WithActivityWriteDelay(0))
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1)
	clock.Advance(time.Minute - time.Millisecond)
	if res := e.mustAuth(t, v.Token, 0); res.Written {
		t.Fatal("before the throttle: written true, want false")
	}
	clock.Advance(time.Millisecond) // a hit, then the write
	if res := e.mustAuth(t, v.Token, 1); !res.Written {
		t.Fatal("at the throttle: written false, want true")
	}
	for range 3 {
		clock.Advance(time.Minute)
		if res := e.mustAuth(t, v.Token, 1); !res.Written {
			t.Fatal("a minute later: written false, want true")
		}
	}
	clock.Advance(time.Minute - time.Millisecond) // 4:59.999 after the read
	e.mustAuth(t, v.Token, 0)
	clock.Advance(time.Millisecond) // five minutes after it: read, then write
	e.mustAuth(t, v.Token, 2)
	if s := e.Cache.Stats(); s.Hits != 6 || s.Misses != 2 {
		t.Fatalf("stats: got %+v, want 6 hits, 2 misses", s)
	}
}

// TestCacheWriteKeepsDeadline: the session a write answers replaces the
// entry until the entry's own deadline, not a TTL later: the token and
// refresh state it keeps were read then.
func TestCacheWriteKeepsDeadline(t *testing.T) {
	const (
		ttl      = 10 * time.Second
		throttle = 4 * time.Second
	)
	clock := redistest.NewClock()
	// The writes on the request path, whose round trips this test counts.
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{TTL: ttl, Clock: clock.Now},
		sessionkit.WithActivityThrottle(throttle), sessionkit.WithActivityWriteDelay(0))
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1) // read at 0: cached until 10 s
	clock.Advance(8 * time.Second)
	if res := e.mustAuth(t, v.Token, 1); !res.Written { // hit, then the write
		t.Fatal("at 8 s: written false, want true")
	}
	clock.Advance(2*time.Second - time.Millisecond)
	e.mustAuth(t, v.Token, 0)
	clock.Advance(time.Millisecond)
	e.mustAuth(t, v.Token, 1) // 10 s: the first read's TTL is over
}

// TestCacheNearIdleDeadline: an entry serves its session until a second
// before the idle deadline it holds, whatever the TTL.
func TestCacheNearIdleDeadline(t *testing.T) {
	const (
		idle     = 20 * time.Second
		throttle = 19500 * time.Millisecond
		ttl      = 5 * time.Second
	)
	clock := redistest.NewClock()
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), clock, store.CacheOptions{TTL: ttl, Clock: clock.Now},
		sessionkit.WithIdleTimeout(idle), sessionkit.WithActivityThrottle(throttle))
	v := e.Login(t, uuid.New())
	clock.Advance(15 * time.Second)
	e.mustAuth(t, v.Token, 1) // cached until 20 s, with last activity at 0
	clock.Advance(time.Second)
	e.mustAuth(t, v.Token, 0) // 16 s: 4 s before the idle deadline, within the TTL of it
	clock.Advance(3*time.Second + 200*time.Millisecond)
	e.mustAuth(t, v.Token, 1) // 19.2 s: too close, a fresh read (and no write yet)
}

// TestCacheMaxEntriesAllFit: MaxEntries sessions all stay cached, however
// their ids spread over the shards.
func TestCacheMaxEntriesAllFit(t *testing.T) {
	const limit = 64
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL, MaxEntries: limit})
	var toks []string
	for range limit {
		toks = append(toks, e.Login(t, uuid.New()).Token)
	}
	for _, tok := range toks {
		e.mustAuth(t, tok, 1)
	}
	if s := e.Cache.Stats(); s.Entries != limit {
		t.Fatalf("entries: got %d, want %d", s.Entries, limit)
	}
	for _, tok := range toks {
		e.mustAuth(t, tok, 0)
	}
	e.mustAuth(t, e.Login(t, uuid.New()).Token, 1)
	if s := e.Cache.Stats(); s.Entries != limit {
		t.Fatalf("entries past the limit: got %d, want %d", s.Entries, limit)
	}
}

func TestCacheAddressChange(t *testing.T) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1)
	other := netip.MustParseAddr("198.51.100.9")
	res, n, err := e.auth(v.Token, other)
	if err != nil || n < 1 || !res.IPChanged {
		t.Fatalf("from a new address: got changed %v, %d round trips, %v; want changed, >= 1, no error", res.IPChanged, n, err)
	}
	// The recorded change is announced, as other instances' entries hold
	// the previous address; this instance's entry goes too once it arrives.
	sessiontest.WaitCache(t, e.Cache, "dropped the entry on the change's announcement", func(s store.CacheStats) bool { return s.Entries == 0 })
	if _, n, err := e.auth(v.Token, other); err != nil || n != 1 {
		t.Fatalf("again from the new address: got %d round trips, %v; want a read", n, err)
	}
	if _, n, err := e.auth(v.Token, other); err != nil || n != 0 {
		t.Fatalf("once more from the new address: got %d round trips, %v; want a hit", n, err)
	}
	if res, n, err := e.auth(v.Token, loginIP); err != nil || n != 1 || !res.IPChanged {
		t.Fatalf("back to the first address: got changed %v, %d round trips, %v; want changed, 1 (the activity script)", res.IPChanged, n, err)
	}
}

func TestCacheMaxEntries(t *testing.T) {
	const limit = 8
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL, MaxEntries: limit})
	var toks []string
	for range 40 {
		toks = append(toks, e.Login(t, uuid.New()).Token)
	}
	for _, tok := range toks {
		e.mustAuth(t, tok, 1)
		if s := e.Cache.Stats(); s.Entries > limit {
			t.Fatalf("entries: got %d, want at most %d", s.Entries, limit)
		}
	}
	for _, tok := range toks { // evicted or not, every session still authenticates
		if _, _, err := e.auth(tok, loginIP); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCachePubSubDrop(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		e := newCacheEnv(t, b.Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL, HealthCheck: 200 * time.Millisecond})
		v := e.Login(t, uuid.New())
		e.mustAuth(t, v.Token, 1)
		e.mustAuth(t, v.Token, 0)
		before := e.Cache.Stats()
		err := sessiontest.ForEachMaster(context.Background(), b.Client, func(ctx context.Context, c *redis.Client) error {
			return c.ClientKillByFilter(ctx, "TYPE", "pubsub").Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		sessiontest.WaitCache(t, e.Cache, "dropped", func(s store.CacheStats) bool { return s.Dropped > before.Dropped })
		e.mustAuth(t, v.Token, 1) // emptied: back to Redis
		// The cache resubscribes 20 ms after the drop: on a loaded machine
		// it may be on again before the read above, which then refilled it.
		if s := sessiontest.WaitCache(t, e.Cache, "back on", func(s store.CacheStats) bool { return s.On && s.Subscribed > before.Subscribed }); s.Entries == 0 {
			e.mustAuth(t, v.Token, 1) // turning on found it empty, or emptied it
		}
		e.mustAuth(t, v.Token, 0)
	})
}

func TestCacheRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	e := newCacheEnv(t, client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL, HealthCheck: 100 * time.Millisecond})
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1)
	e.mustAuth(t, v.Token, 0)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	sessiontest.WaitCache(t, e.Cache, "off", func(s store.CacheStats) bool { return !s.On && s.Dropped == 1 })
	for i := range 5 { // off while Redis is away: nothing is served from memory
		if _, _, err := e.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrUnavailable) {
			t.Fatalf("attempt %d with Redis down: got %v, want ErrUnavailable", i, err)
		}
		if s := e.Cache.Stats(); s.On || s.Entries != 0 {
			t.Fatalf("attempt %d with Redis down: got %+v, want off and empty", i, s)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	sessiontest.WaitCache(t, e.Cache, "back on", func(s store.CacheStats) bool { return s.On && s.Subscribed == 2 })
	// go-redis's pool may fail fast for up to a second after dial errors.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, err := e.auth(v.Token, loginIP)
		if err == nil {
			break
		}
		if !errors.Is(err, sessionkit.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("after the restart: got %v, want the session", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.mustAuth(t, v.Token, 0)
}

func TestCacheUnreadableAnnouncementEmpties(t *testing.T) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1)
	if err := backends[0].Client.Publish(context.Background(), e.Cache.Redis().Channel(), "not an announcement").Err(); err != nil {
		t.Fatal(err)
	}
	sessiontest.WaitCache(t, e.Cache, "emptied", func(s store.CacheStats) bool { return s.Entries == 0 })
	e.mustAuth(t, v.Token, 1)
}

func TestCacheClose(t *testing.T) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL})
	v := e.Login(t, uuid.New())
	e.mustAuth(t, v.Token, 1)
	e.Cache.Close()
	if s := e.Cache.Stats(); s.On || s.Entries != 0 {
		t.Fatalf("after Close: got %+v, want off and empty", s)
	}
	e.mustAuth(t, v.Token, 1)
	e.mustAuth(t, v.Token, 1)
}

// TestCacheCloseWhileRedisIsSilent: Close returns while Redis answers
// nothing, whether the subscription was still being set up or had been
// confirmed. go-redis sets a subscription up, and reconnects it inside
// Receive, holding a lock that closing it needs, through I/O a cancelled
// context does not interrupt: without deadlines of its own, the cache's
// Close waited for the client's read timeout, here none (ReadTimeout -1),
// so for ever.
func TestCacheCloseWhileRedisIsSilent(t *testing.T) {
	for _, confirmed := range []bool{false, true} {
		proxy := redistest.NewProxy(t, backends[0].Addrs[0])
		rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, ReadTimeout: -1})
		t.Cleanup(func() { rdb.Close() })
		st, err := store.NewRedis(rdb, store.Options{Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		if !confirmed {
			proxy.SetDelay(time.Hour)
		}
		c, err := store.NewCache(st, store.CacheOptions{HealthCheck: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if confirmed {
			sessiontest.WaitCache(t, c, "on", func(s store.CacheStats) bool { return s.On })
			proxy.SetDelay(time.Hour)
		}
		time.Sleep(300 * time.Millisecond) // the subscription meets the silence
		closed := make(chan struct{})
		go func() { c.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second): // against none at all: no timing is measured
			t.Fatalf("confirmed %v: Close has not returned after 20 s of a silent Redis", confirmed)
		}
		if c.Stats().On {
			t.Errorf("confirmed %v: on after Close", confirmed)
		}
		proxy.Close()
	}
}

// TestCacheStaysOnWhenIdle: the subscription's reads have deadlines, and
// a healthy subscription with nothing to announce is not taken for a
// silent one: the health check's answers come within them. The interval
// is long enough that a loaded machine's stalls stay within the silence
// allowed (twice the interval): at 20 ms, a 40 ms stall of the receiver
// or the pinger, common under -race on a busy 2-core machine, was taken
// for a dead connection.
func TestCacheStaysOnWhenIdle(t *testing.T) {
	const health = 200 * time.Millisecond
	st, err := store.NewRedis(backends[0].Client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.NewCache(st, store.CacheOptions{HealthCheck: health})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sessiontest.WaitCache(t, c, "on", func(s store.CacheStats) bool { return s.On })
	time.Sleep(15 * health) // 15 health checks, 5 of the receiver's deadlines
	if s := c.Stats(); !s.On || s.Subscribed != 1 || s.Dropped != 0 {
		t.Errorf("an idle, healthy subscription: %+v, want on, subscribed once, never dropped", s)
	}
}

// TestCacheConcurrentRevoke races hits against a revocation on the same
// instance: once RevokeSession has returned, no Authenticate that starts
// afterwards may succeed. With no throttle every request also writes,
// and the writes' answers race the revocation to the cache.
func TestCacheConcurrentRevoke(t *testing.T) {
	t.Run("reads", func(t *testing.T) { testCacheConcurrentRevoke(t) })
	t.Run("writes", func(t *testing.T) { testCacheConcurrentRevoke(t, sessionkit.WithActivityThrottle(0)) })
}

func testCacheConcurrentRevoke(t *testing.T, opts ...sessionkit.Option) {
	e := newCacheEnv(t, backends[0].Client, redistest.Prefix(t), nil, store.CacheOptions{TTL: store.MaxCacheTTL}, opts...)
	user := uuid.New()
	for round := range 20 {
		v := e.Login(t, user)
		var revoked atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					after := revoked.Load()
					_, err := e.M.Authenticate(context.Background(), v.Token, loginIP)
					if after && err == nil {
						errs <- errors.New("accepted after RevokeSession returned")
						return
					}
					if err != nil && !errors.Is(err, sessionkit.ErrRevoked) {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		if _, err := e.M.RevokeSession(context.Background(), sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// ExampleNewCache puts the verified-session cache in front of the Redis
// store: a Manager over it answers repeated authentications of a session
// from memory for up to the TTL, and hears of revocations on other
// instances through Redis Pub/Sub.
func ExampleNewCache() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	st, err := store.NewRedis(client, store.Options{})
	if err != nil {
		panic(err)
	}
	cache, err := store.NewCache(st, store.CacheOptions{TTL: 500 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	defer cache.Close()
	m, err := sessionkit.New(cache)
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	// Use m as usual: m.Authenticate costs a Redis round trip only when
	// the session is not cached, has aged out, or would be written.
}

// TestCacheRefreshReachesOtherInstance: a refresh token rotated on one
// instance is the current one on another that had the session cached at
// once, whether or not the rotation's announcement has arrived:
// SessionByRefreshToken (by which a client signs out) reads Redis, not the
// entry, which a read counted as a miss shows. The token just superseded stays accepted within the grace
// window, as RefreshSession accepts it; two rotations old, it is not.
func TestCacheRefreshReachesOtherInstance(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tokens := sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test"})
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		prefix := redistest.Prefix(t)
		a := newCacheEnv(t, b.Client, prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL}, tokens)
		bb := newCacheEnv(t, b.Client, prefix, nil, store.CacheOptions{TTL: store.MaxCacheTTL}, tokens)
		login, err := a.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac, Bearer: true})
		if err != nil {
			t.Fatal(err)
		}
		// B holds the session: its access token is checked from memory.
		for range 2 {
			if _, err := bb.M.Authenticate(ctx, login.Tokens.AccessToken, loginIP); err != nil {
				t.Fatalf("B before the refresh: %v", err)
			}
		}
		st := bb.Cache.Stats()
		if st.Entries != 1 || st.Hits == 0 {
			t.Fatalf("B's cache: %+v; want the session held and a hit", st)
		}
		// A refresh token is checked against Redis's copy, not the entry
		// (which another instance's rotation may not have reached yet).
		if _, err := bb.M.SessionByRefreshToken(ctx, login.Tokens.RefreshToken); err != nil {
			t.Fatalf("B with the refresh token: %v", err)
		}
		if after := bb.Cache.Stats(); after.Misses != st.Misses+1 || after.Hits != st.Hits {
			t.Errorf("B's cache answered a refresh token: hits %d → %d, misses %d → %d; want one read of Redis",
				st.Hits, after.Hits, st.Misses, after.Misses)
		}
		next, err := a.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken})
		if err != nil {
			t.Fatal(err)
		}
		if s, err := bb.M.SessionByRefreshToken(ctx, next.Tokens.RefreshToken); err != nil || s.ID != login.Session.ID {
			t.Fatalf("B with the new refresh token, at once: %v %v", s.ID, err)
		}
		if _, err := bb.M.SessionByRefreshToken(ctx, login.Tokens.RefreshToken); err != nil {
			t.Errorf("B with the token just superseded, within the grace window: %v", err)
		}
		again, err := a.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: next.Tokens.RefreshToken})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bb.M.SessionByRefreshToken(ctx, login.Tokens.RefreshToken); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("B with a token two rotations old: got %v, want ErrNotFound", err)
		}
		if _, err := bb.M.SessionByRefreshToken(ctx, again.Tokens.RefreshToken); err != nil {
			t.Errorf("B with the newest refresh token: %v", err)
		}
	})
}
