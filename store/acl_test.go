package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// aclDoc is the document whose ACL SETUSER lines TestACL runs.
const aclDoc = "../docs/operations.md"

// aclRules are the ACL SETUSER lines of aclDoc, as arguments with their
// placeholders: the user's rule, what a Cluster adds, and what Redis 7.2
// or newer adds.
type aclRules struct{ base, cluster, v72 []string }

func readACLRules(t *testing.T) aclRules {
	t.Helper()
	f, err := os.Open(aclDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r aclRules
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "ACL SETUSER <user> ") {
			continue
		}
		args := strings.Fields(line)
		switch {
		case strings.Contains(line, " reset "):
			r.base = args
		case strings.Contains(line, "+client|setinfo"):
			r.v72 = args
		case r.cluster == nil:
			r.cluster = args
		default:
			t.Fatalf("%s: an ACL SETUSER line TestACL does not know: %s", aclDoc, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if r.base == nil || r.cluster == nil || r.v72 == nil {
		t.Fatalf("%s: want the user's ACL SETUSER line (with reset), the Cluster's and Redis 7.2's", aclDoc)
	}
	return r
}

// expandACL fills in a rule's placeholders.
func expandACL(args []string, user, password, prefix string) []any {
	esc := store.GlobEscape(prefix)
	out := make([]any, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "<user>", user)
		a = strings.ReplaceAll(a, "<password>", password)
		out[i] = strings.ReplaceAll(a, "<prefix>", esc)
	}
	return out
}

// TestACL: the app's ACL user of docs/operations.md, created on every node
// from the document's own lines, is enough for everything sessionkit does
// (sign-ins first, later and at the limit, authentication and its activity
// writes with an idle timeout, an address change, revocations, listing,
// session data, providers, bearer sessions and their refresh, re-
// authentication, limits, the audit trail in both its layouts, the
// new-device history's cap, batched activity writes after SCRIPT FLUSH,
// Check, ClearSealedRefreshSecrets, and the verified-session cache seeing
// another instance's revocation), and no command sessionkit or go-redis
// sends, background goroutines' included, is refused: ACL LOG records
// none for the user. A command taken out of the rule fails the test.
func TestACL(t *testing.T) {
	rules := readACLRules(t)
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		prefix := redistest.Prefix(t)
		user, password := "sk-acl-"+uuid.NewString()[:8], uuid.NewString()
		cluster := b.Name == "cluster"

		// The user, on every node.
		var nodes []*redis.Client
		for _, addr := range b.Addrs {
			n := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DisableIdentity: true})
			t.Cleanup(func() { n.Close() })
			nodes = append(nodes, n)
			info, err := n.Info(ctx, "server").Result()
			if err != nil {
				t.Fatal(err)
			}
			lines := [][]string{rules.base}
			if cluster {
				lines = append(lines, rules.cluster)
			}
			if atLeast72(t, info) {
				lines = append(lines, rules.v72)
			}
			for _, l := range lines {
				if err := n.Do(ctx, expandACL(l, user, password, prefix)...).Err(); err != nil {
					t.Fatalf("%s on %s: %v", strings.Join(l, " "), addr, err)
				}
			}
			t.Cleanup(func() { n.Do(t.Context(), "ACL", "DELUSER", user) })
		}
		var client redis.UniversalClient
		if cluster {
			client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs, Username: user, Password: password, ContextTimeoutEnabled: true, MaxRedirects: 8})
		} else {
			client = redis.NewClient(&redis.Options{Addr: b.Addrs[0], Username: user, Password: password, ContextTimeoutEnabled: true})
		}
		t.Cleanup(func() { client.Close() })
		// Scripts the servers do not hold yet: EVALSHA, then EVAL.
		flush := func() {
			t.Helper()
			if err := sessiontest.ForEachMaster(ctx, b.Client, func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }); err != nil {
				t.Fatal(err)
			}
		}
		flush()

		clock := redistest.NewClock()
		copts := store.CacheOptions{TTL: store.MaxCacheTTL, HealthCheck: 50 * time.Millisecond, Clock: clock.Now}
		opts := []sessionkit.Option{
			sessionkit.WithLimit(sessionkit.FixedLimit(2)), sessionkit.WithIdleTimeout(time.Hour),
			sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}),
		}
		// A has the cache (turned on by New: subscribed, and on a Cluster
		// every master's heartbeat back) and batches its activity writes;
		// B has no cache and writes activity at once; C keeps a trail of one
		// entry, which is a string, not a list.
		a := sessiontest.New(t, sessiontest.Options{Client: client, Prefix: prefix, Clock: clock, Cache: &copts}, opts...)
		bm := sessiontest.New(t, sessiontest.Options{Client: client, Prefix: prefix, Clock: clock}, append(opts, sessionkit.WithActivityWriteDelay(0))...)
		cm := sessiontest.New(t, sessiontest.Options{Client: client, Prefix: prefix, Clock: clock}, append(opts, sessionkit.WithEventStreamLength(1))...)

		must := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		ip := netip.MustParseAddr(sessiontest.LoginIP)
		ua := func(v int) string {
			return strings.Replace(sessiontest.ChromeMac, "Chrome/131.", "Chrome/"+strconv.Itoa(v)+".", 1)
		}
		login := func(m *sessionkit.Manager, u uuid.UUID, agent string) sessionkit.CreateSessionResult {
			t.Helper()
			res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: u, IPAddress: sessiontest.LoginIP, UserAgent: agent})
			must("CreateSession", err)
			return res
		}

		warnings, err := a.Store.Check(ctx)
		must("Check", err)
		for _, w := range warnings {
			if strings.Contains(w, "refused") {
				t.Errorf("Check: %s", w)
			}
		}

		// Sign-ins: the first, a later one, and one at the limit of 2,
		// which evicts the oldest.
		u := uuid.New()
		s1 := login(a.M, u, ua(131))
		clock.Advance(time.Second)
		s2 := login(a.M, u, ua(130))
		clock.Advance(time.Second)
		s3 := login(a.M, u, ua(131))
		if len(s3.Evicted) != 1 || s3.Evicted[0] != s1.Session.ID {
			t.Fatalf("third sign-in at a limit of 2: evicted %v, want %v", s3.Evicted, s1.Session.ID)
		}

		// Authentication, then an activity write past the throttle (the
		// idle deadline moves), then an address change.
		_, err = a.M.Authenticate(ctx, s3.Token, ip)
		must("Authenticate", err)
		clock.Advance(2 * time.Minute)
		res, err := bm.M.Authenticate(ctx, s3.Token, ip)
		must("Authenticate past the throttle", err)
		if !res.Written {
			t.Error("Authenticate past the throttle: no activity written")
		}
		res, err = bm.M.Authenticate(ctx, s3.Token, netip.MustParseAddr("198.51.100.9"))
		must("Authenticate from another address", err)
		if !res.IPChanged {
			t.Error("Authenticate from another address: no address change")
		}
		_, err = bm.M.Session(ctx, s3.Session.ID)
		must("Session", err)

		// Session data, a provider, a refresh token linked, a limit, a
		// re-authentication.
		must("PutSessionData", a.M.PutSessionData(ctx, s3.Session.ID, "cart", "42"))
		if v, ok, err := a.M.SessionData(ctx, s3.Session.ID, "cart"); err != nil || !ok || v != "42" {
			t.Fatalf("SessionData: %q %v %v", v, ok, err)
		}
		must("DeleteSessionData", a.M.DeleteSessionData(ctx, s3.Session.ID, "cart"))
		_, err = a.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: s3.Session.ID, ProviderName: "bank"})
		must("RecordProviderAccess", err)
		_, err = a.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: s3.Session.ID, RefreshTokenID: "rt-1"})
		must("LinkRefreshTokenToSession", err)
		must("SetUserLimit", a.M.SetUserLimit(ctx, u, 3))
		if n, err := bm.M.UserLimit(ctx, u); err != nil || n != 3 {
			t.Fatalf("UserLimit: %d %v", n, err)
		}
		s4 := login(a.M, u, ua(129)) // under the override
		if len(s4.Evicted) != 0 {
			t.Errorf("sign-in under a limit of 3: evicted %v", s4.Evicted)
		}
		_, err = a.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: s4.Session.ID, UserID: u, AAL: "aal2"})
		must("Reauthenticate", err)
		must("ClearUserLimit", a.M.ClearUserLimit(ctx, u))

		// A bearer session, refreshed.
		bearer, err := a.M.CreateSession(ctx, sessionkit.CreateSession{UserID: u, IPAddress: sessiontest.LoginIP, UserAgent: ua(131), Bearer: true})
		must("CreateSession (bearer)", err)
		refreshed, err := a.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: bearer.Tokens.RefreshToken})
		must("RefreshSession", err)
		_, err = a.M.SessionByRefreshToken(ctx, refreshed.Tokens.RefreshToken)
		must("SessionByRefreshToken", err)

		// The cache holds a session; B revokes it, and A hears so.
		cu := uuid.New()
		s2 = login(a.M, cu, ua(131))
		// Until a request is served from memory: with health checks every
		// 50 ms, a loaded machine can drop the cache (as below), and it
		// is off, and empty, until it has subscribed again.
		until(t, "A's cache serves the session", func() error {
			hits := a.Cache.Stats().Hits
			if _, err := a.M.Authenticate(ctx, s2.Token, ip); err != nil {
				return err
			}
			if st := a.Cache.Stats(); !st.On || st.Hits == hits {
				return fmt.Errorf("cache %+v: want it on, and hit", st)
			}
			return nil
		})
		_, err = bm.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: s2.Session.ID, UserID: cu, Reason: "stolen"})
		must("RevokeSession", err)
		until(t, "A's cache hears of the revocation", func() error {
			if _, err := a.M.Authenticate(ctx, s2.Token, ip); !errors.Is(err, sessionkit.ErrRevoked) {
				return fmt.Errorf("A authenticates the revoked session: %v", err)
			}
			return nil
		})
		list, err := a.M.ListUserSessions(ctx, u, sessionkit.ListOptions{IncludeRevoked: true})
		must("ListUserSessions", err)
		if len(list) < 2 {
			t.Errorf("ListUserSessions with revoked: %d sessions", len(list))
		}
		events, err := a.M.Events(ctx, u, sessionkit.EventQuery{Limit: 100})
		must("Events", err)
		if len(events) == 0 {
			t.Error("Events: none")
		}
		_, err = bm.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: u, Reason: "password_changed"})
		must("RevokeAllUserSessions", err)

		// The new-device history is capped at 64 devices and countries.
		many := uuid.New()
		for v := range 66 {
			login(bm.M, many, ua(40+v))
		}

		// A trail of one entry is a string; a longer one makes it a list,
		// which a shorter one trims.
		one := uuid.New()
		login(cm.M, one, ua(131))
		login(cm.M, one, ua(130))
		_, err = cm.M.Events(ctx, one, sessionkit.EventQuery{Limit: 10})
		must("Events (a string)", err)
		login(bm.M, one, ua(129))
		if events, err := bm.M.Events(ctx, one, sessionkit.EventQuery{Limit: 10}); err != nil || len(events) < 2 {
			t.Fatalf("Events (a string become a list): %d, %v; want 2 or more", len(events), err)
		}
		login(cm.M, one, ua(128)) // a list longer than C keeps: trimmed

		// Activity writes sent together, after SCRIPT FLUSH: SCRIPT LOAD.
		flush()
		clock.Advance(2 * time.Minute)
		for i, err := range bm.Store.TouchAll(ctx, touchCall(clock.Now()), []uuid.UUID{s3.Session.ID, bearer.Session.ID}) {
			if err != nil && !errors.Is(err, sessionkit.ErrRevoked) {
				t.Errorf("TouchAll %d: %v", i, err)
			}
		}

		_, err = a.Store.ClearSealedRefreshSecrets(ctx)
		must("ClearSealedRefreshSecrets", err)

		// The cache's background work (PING, heartbeats) for a while. A
		// command of it refused shows in ACL LOG (checked below); a drop
		// on a loaded machine (a heartbeat past its deadline) is no
		// refusal, and the cache must come back on.
		time.Sleep(5 * copts.HealthCheck)
		sessiontest.WaitCache(t, a.Cache, "on again", func(s store.CacheStats) bool { return s.On })
		a.Close()
		bm.Close()
		cm.Close()
		client.Close()

		for _, n := range nodes {
			entries, err := n.ACLLog(ctx, 128).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Username == user {
					t.Errorf("ACL LOG of %s: %s refused %s (%s, %d times)", n.Options().Addr, e.Reason, e.Object, e.Context, e.Count)
				}
			}
		}
	})
}

// atLeast72 reports whether INFO server names Redis 7.2 or newer.
func atLeast72(t *testing.T, info string) bool {
	t.Helper()
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			major, rest, _ := strings.Cut(v, ".")
			minor, _, _ := strings.Cut(rest, ".")
			ma, err1 := strconv.Atoi(major)
			mi, err2 := strconv.Atoi(minor)
			if err1 != nil || err2 != nil {
				t.Fatalf("redis_version %q", v)
			}
			return ma > 7 || ma == 7 && mi >= 2
		}
	}
	t.Fatal("INFO server names no redis_version")
	return false
}

// TestPublishRefusedWritesNothing: the scripts announce revocations,
// evictions, rotations and address changes on the store's channel, as their
// last step. A user that may not PUBLISH there (an ACL without +publish, or
// without the channel) had a revocation written and then refused at the
// announcement: the app got an error for a revocation Redis had made, and no
// cache elsewhere heard of it. Every script that may announce now asks
// first, and refuses with an error naming PUBLISH, writing nothing; one
// that announces nothing does not ask.
func TestPublishRefusedWritesNothing(t *testing.T) {
	rules := readACLRules(t)
	for _, drop := range []string{"+publish", "&<prefix>revoked"} {
		t.Run(drop, func(t *testing.T) {
			b := backends[0]
			ctx := t.Context()
			prefix := redistest.Prefix(t)
			user, password := "sk-nopub-"+uuid.NewString()[:8], uuid.NewString()
			admin := redis.NewClient(&redis.Options{Addr: b.Addrs[0], ContextTimeoutEnabled: true, DisableIdentity: true})
			t.Cleanup(func() { admin.Close() })
			var rule []string
			for _, a := range rules.base {
				if a != drop {
					rule = append(rule, a)
				}
			}
			if err := admin.Do(ctx, expandACL(rule, user, password, prefix)...).Err(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { admin.Do(t.Context(), "ACL", "DELUSER", user) })
			client := redis.NewClient(&redis.Options{Addr: b.Addrs[0], Username: user, Password: password, ContextTimeoutEnabled: true})
			t.Cleanup(func() { client.Close() })
			f := sessiontest.New(t, sessiontest.Options{Client: client, Prefix: prefix}, sessionkit.WithLimit(sessionkit.FixedLimit(1)))
			user1 := uuid.New()
			s := f.Login(t, user1) // a first sign-in announces nothing
			before := sessiontest.Dump(t, admin, prefix)
			for name, op := range map[string]func() error{
				"revoke": func() error {
					_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: s.Session.ID, UserID: user1, Reason: sessionkit.ReasonUserRevoked})
					return err
				},
				"revoke all": func() error {
					_, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user1, Reason: sessionkit.ReasonUserRevoked})
					return err
				},
				"evicting sign-in": func() error {
					_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user1, IPAddress: sessiontest.LoginIP})
					return err
				},
				"address change": func() error {
					_, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: s.Session.ID, IPAddress: "192.0.2.99"})
					return err
				},
			} {
				err := op()
				if !errors.Is(err, sessionkit.ErrUnavailable) || !strings.Contains(err.Error(), "PUBLISH") {
					t.Errorf("%s: got %v, want ErrUnavailable naming PUBLISH", name, err)
				}
				if d := sessiontest.Diff(before, sessiontest.Dump(t, admin, prefix)); len(d) != 0 {
					t.Errorf("%s: a refused write changed: %v", name, d)
				}
			}
			if _, err := f.M.Authenticate(ctx, s.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
				t.Errorf("the session after the refused writes: %v, want active", err)
			}
			// A write that announces nothing needs no PUBLISH.
			if _, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: s.Session.ID, ProviderName: "schwab"}); err != nil {
				t.Errorf("provider access, which announces nothing: %v", err)
			}
		})
	}
}
