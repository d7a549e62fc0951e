package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
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

// soakConfig sizes TestSoak. `go test` runs the short version; `make soak`
// sets SOAK_USERS=10000, SOAK_SESSIONS=50000 and SOAK_DURATION (default 60s).
type soakConfig struct {
	users, sessions, workers int
	duration                 time.Duration
}

func soakFromEnv(tb testing.TB) soakConfig {
	tb.Helper()
	c := soakConfig{users: 500, sessions: 2500, workers: 16, duration: 5 * time.Second}
	for _, v := range []struct {
		name string
		dst  *int
	}{{"SOAK_USERS", &c.users}, {"SOAK_SESSIONS", &c.sessions}, {"SOAK_WORKERS", &c.workers}} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				tb.Fatalf("%s=%q: want a positive integer", v.name, s)
			}
			*v.dst = n
		}
	}
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			tb.Fatalf("SOAK_DURATION=%q: want a positive duration such as 60s", s)
		}
		c.duration = d
	}
	return c
}

// soakLimits are the per-user session limits, assigned round robin, so that
// logins keep evicting for the users with small limits.
var soakLimits = []int{1, 2, 3, 5, 10, sessionkit.Unlimited}

// TestSoak signs users in and out from many goroutines at once for a fixed
// time: logins (evicting at each user's limit), authentications (some from
// a new address, which writes), revocations, logouts, sign-outs everywhere
// else, listings and provider accesses. Afterwards it checks, against Redis
// directly: every user's index equals their live session keys, every key
// has a TTL, no user is over their limit, every revoked session is refused
// with the reason of the operation that revoked it, every other one is
// served, and created minus revoked (evictions included) equals active. It
// runs on its own standalone server and on a three-master Cluster, each
// without and with the verified-session cache (see soakCached).
func TestSoak(t *testing.T) {
	cfg := soakFromEnv(t)
	t.Run("standalone", func(t *testing.T) {
		soak(t, cfg, redistest.Start(t, redistest.Options{}).Client(t), false)
	})
	t.Run("cluster", func(t *testing.T) {
		soak(t, cfg, sharedCluster(t).Client(t), false)
	})
	t.Run("standalone, cached", func(t *testing.T) {
		soak(t, cfg, redistest.Start(t, redistest.Options{}).Client(t), true)
	})
	t.Run("cluster, cached", func(t *testing.T) {
		soak(t, cfg, sharedCluster(t).Client(t), true)
	})
}

// peerGrace is how long after a revocation was reported the second cached
// instance of TestSoak may still serve the session: the announcement's
// delivery under the race detector and 16 busy workers on a shared CI
// machine (it took at most 37 ms in the runs so far). It catches a lost
// announcement, which would be served until the cache's TTL (five minutes
// by default); the bench measures the delivery itself.
const peerGrace = 3 * time.Second

// soakPeer is the second instance of a cached soak: a Manager with a cache
// of its own on the same keys, which learns of the first one's writes only
// from their announcements.
type soakPeer struct {
	f *fixture
	// late is the longest a revoked session was still served by f after its
	// revocation was reported, in ns; served counts such answers.
	late, served atomic.Int64
}

// auth authenticates s on the peer and judges the answer: served is legal
// for a revoked session only within peerGrace of its revocation.
func (p *soakPeer) auth(m *model, s *tracked, check func(op string, err error, allowed ...string)) {
	before, _ := m.stateOf(s)
	since, wasRevoked := m.revokedSince(s)
	err := p.f.auth(s.token)
	check("authenticate_peer", err, "revoked")
	if err != nil {
		m.checkAuth(s, before, err)
		return
	}
	if !wasRevoked {
		return
	}
	p.served.Add(1)
	for cur := p.late.Load(); int64(since) > cur && !p.late.CompareAndSwap(cur, int64(since)); cur = p.late.Load() {
	}
	if since > peerGrace {
		m.problem("session %s was served by the second instance %v after its revocation was reported", s.id, since)
	}
}

func soak(t *testing.T, cfg soakConfig, rdb redis.UniversalClient, cached bool) {
	users := newUsers(cfg.users)
	limits := make(map[uuid.UUID]int, len(users))
	for i, u := range users {
		limits[u] = soakLimits[i%len(soakLimits)]
	}
	limitOf := func(u uuid.UUID) int { return limits[u] }
	// A throttle of a second, so that activity writes, queued and sent
	// together (WithActivityWriteDelay), run throughout, racing the
	// revocations: none may bring a revoked session back.
	opts := withAppLogger([]sessionkit.Option{sessionkit.WithLimit(func(_ context.Context, u uuid.UUID) (int, error) {
		return limitOf(u), nil
	}), sessionkit.WithActivityThrottle(time.Second)})
	// With cached, the Manager runs over the cache, which must never serve
	// a session after this instance's own revocation of it reported, and a
	// second instance with a cache of its own takes half the
	// authentications (soakPeer).
	o := sessiontest.Options{Client: rdb, RealTime: true}
	if cached {
		o.Cache = &store.CacheOptions{}
	}
	f := &fixture{sessiontest.New(t, o, opts...)}
	var peer *soakPeer
	if cached {
		o.Prefix = f.Prefix
		peer = &soakPeer{f: &fixture{sessiontest.New(t, o, opts...)}}
	}
	m := newModel()
	var cnt counter
	var unexpected atomic.Int64
	check := func(op string, err error, allowed ...string) {
		cnt.add(op, err)
		k := kind(err)
		if k == "ok" {
			return
		}
		for _, a := range allowed {
			if k == a {
				return
			}
		}
		unexpected.Add(1)
		m.problem("%s: unexpected %v", op, err)
	}

	// Fill: every user signs in, round robin, until the session count is reached.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < cfg.sessions; i = int(next.Add(1)) - 1 {
				res, err := f.login(users[i%len(users)])
				check("login", err)
				if err == nil {
					m.addCreated(res)
				}
			}
		})
	}
	wg.Wait()
	fill := time.Since(start)

	// Run: mixed operations from every worker for the configured time.
	start = time.Now()
	stop := load(cfg.workers, func(r *rand.Rand) { soakStep(f, peer, m, r, users, check) })
	time.Sleep(cfg.duration)
	stop()
	run := time.Since(start)

	m.settle()
	if p := m.report(); p != "" {
		t.Errorf("during the soak:\n%s", p)
	}
	st := checkStore(t, f, limitOf)
	compareStore(t, m, st)
	verified := verifySessions(t, f, m)
	if cached {
		// Every announcement has long arrived: the peer answers as Redis does.
		time.Sleep(peerGrace)
		verifySessions(t, peer.f, m)
		for _, c := range []struct {
			name string
			c    *store.Cache
		}{{"first", f.Cache}, {"second", peer.f.Cache}} {
			st := c.c.Stats()
			if st.Hits == 0 {
				t.Errorf("the %s instance's cache served no hit: the cached soak did not exercise it", c.name)
			}
			t.Logf("soak: the %s instance's cache: %d hits, %d misses, %d invalidations, %d entries, the subscription lost %d times",
				c.name, st.Hits, st.Misses, st.Invalidations, st.Entries, st.Dropped)
		}
		t.Logf("soak: the second instance served %d requests of sessions already reported revoked, at most %v after the report (allowed: %v)",
			peer.served.Load(), time.Duration(peer.late.Load()).Round(time.Microsecond), peerGrace)
	}
	active, revoked, _ := m.counts()
	m.mu.Lock()
	created, revocations := m.created, m.revoked
	m.mu.Unlock()
	t.Logf("soak: %d users, %d sessions filled in %v; %d workers ran %d operations in %v (%.0f/s); unexpected errors: %d",
		cfg.users, cfg.sessions, fill.Round(time.Millisecond), cfg.workers, cnt.total()-cfg.sessions, run.Round(time.Millisecond),
		float64(cnt.total()-cfg.sessions)/run.Seconds(), unexpected.Load())
	t.Logf("soak: created %d, revoked %d (evictions included), active %d = %d in Redis; %d keys checked for TTLs; %d sessions authenticated against the model (%d active, %d revoked)",
		created, revocations, created-revocations, len(st.active), st.keys, verified, active, revoked)
	t.Logf("soak: operations by outcome: %s", &cnt)
}

// soakStep runs one random operation; with a peer, half the requests with
// the session cookie go to it.
func soakStep(f *fixture, peer *soakPeer, m *model, r *rand.Rand, users []uuid.UUID, check func(op string, err error, allowed ...string)) {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	s := m.pickLive(r)
	switch p := r.IntN(100); {
	case p < 20 && peer != nil:
		peer.auth(m, s, check)
	case p < 40: // a request with the session cookie
		before, _ := m.stateOf(s)
		err := f.auth(s.token)
		check("authenticate", err, "revoked")
		m.checkAuth(s, before, err)
	case p < 45: // the same, from a new address: the hot path writes
		before, _ := m.stateOf(s)
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(256))})
		_, err := f.M.Authenticate(ctx, s.token, ip)
		check("authenticate_new_ip", err, "revoked")
		m.checkAuth(s, before, err)
	case p < 65:
		res, err := f.login(users[r.IntN(len(users))])
		check("login", err)
		if err == nil {
			m.addCreated(res)
		}
	case p < 85: // revoke another device, or log this one out
		reason := sessionkit.ReasonUserRevoked
		if p >= 77 {
			reason = sessionkit.ReasonLogout
		}
		if !m.beginRevoke(s) {
			return
		}
		_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: s.id, UserID: s.user, Reason: reason})
		check("revoke_"+reason, err, "not_found")
		m.endRevoke(s, reason, err)
	case p < 90: // sign out everywhere else
		except := uuid.Nil
		if st, _ := m.stateOf(s); st == stActive {
			except = s.id
		}
		out, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{
			UserID: s.user, Reason: sessionkit.ReasonLogoutAll, ExceptSessionID: except})
		check("revoke_all", err)
		if err == nil {
			m.revokedAll(out.SessionIDs, sessionkit.ReasonLogoutAll)
		}
	case p < 95:
		list, err := f.M.ListUserSessions(ctx, s.user, sessionkit.ListOptions{})
		for _, l := range list {
			if l.UserID != s.user {
				err = fmt.Errorf("listed session %s of user %s for user %s", l.ID, l.UserID, s.user)
			}
		}
		check("list", err)
	default:
		_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: s.id, ProviderName: "schwab"})
		check("record_provider", err, "revoked")
	}
}
