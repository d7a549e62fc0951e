package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
)

// sentinelSession is a session of TestSentinelFailover; revoked is set
// before the load starts and never changes during it.
type sentinelSession struct {
	user, id uuid.UUID
	token    string
	revoked  bool
}

// failoverTally counts responses by phase and status, remembers the first
// and last 503 and the longest request of each phase, and collects
// problems.
type failoverTally struct {
	mu                sync.Mutex
	n                 map[string]int           // by "phase/status"
	longest           map[string]time.Duration // by phase
	first503, last503 time.Time
	problems          []string
	problemsLeftOut   int
}

// add counts a response received at end, to a request sent at start.
func (c *failoverTally) add(phase, status string, start, end time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.longest = map[string]int{}, map[string]time.Duration{}
	}
	c.n[phase+"/"+status]++
	c.longest[phase] = max(c.longest[phase], end.Sub(start))
	if status == "503" {
		if c.first503.IsZero() {
			c.first503 = end
		}
		c.last503 = end
	}
}

// get returns the number of responses with status in phase.
func (c *failoverTally) get(phase, status string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[phase+"/"+status]
}

// problem records a broken promise; the first 30 are kept.
func (c *failoverTally) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) < 30 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	} else {
		c.problemsLeftOut++
	}
}

// window describes the time from the first to the last 503 received.
func (c *failoverTally) window() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first503.IsZero() {
		return "none (no 503)"
	}
	return c.last503.Sub(c.first503).Round(time.Millisecond).String()
}

// total returns the number of responses counted in phase.
func (c *failoverTally) total(phase string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.n {
		if strings.HasPrefix(k, phase+"/") {
			n += v
		}
	}
	return n
}

// String lists the counts and the longest request of each phase, sorted.
func (c *failoverTally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := make([]string, 0, len(c.n)+len(c.longest))
	for k, v := range c.n {
		lines = append(lines, fmt.Sprintf("%s=%d", k, v))
	}
	for k, v := range c.longest {
		lines = append(lines, fmt.Sprintf("%s/longest=%v", k, v.Round(time.Millisecond)))
	}
	sort.Strings(lines)
	return strings.Join(lines, " ")
}

// classify names the outcome of a request made with s ("200", "401" or
// "503"), or describes why it must not happen: a request is served only
// as its own, valid session, refused with 401 session_revoked only when
// its session was revoked, and otherwise answered 503 store_unavailable
// without a cookie.
func classify(s *sentinelSession, r response) (status, problem string) {
	switch {
	case r.status == http.StatusOK:
		var body struct {
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.SessionID != s.id.String() {
			return "200", fmt.Sprintf("session %s served as %q (anonymous or another session): %s", s.id, body.SessionID, r.body)
		}
		if s.revoked {
			return "200", fmt.Sprintf("revoked session %s served", s.id)
		}
		return "200", ""
	case r.status == http.StatusUnauthorized && r.reason() == middleware.ReasonSessionRevoked:
		if !s.revoked {
			return "401", fmt.Sprintf("valid session %s refused as revoked", s.id)
		}
		return "401", ""
	case r.status == http.StatusServiceUnavailable && r.reason() == middleware.ReasonStoreUnavailable && len(r.cookies) == 0:
		return "503", ""
	}
	return "other", fmt.Sprintf("session %s (revoked %t): got %d %q with %d cookies, want 200, 401 session_revoked or 503 store_unavailable",
		s.id, s.revoked, r.status, r.reason(), len(r.cookies))
}

// TestSentinelFailover runs the middleware through a go-redis failover
// client on a Sentinel deployment (a master, a replica, three sentinels)
// and kills the master (SIGKILL) under HTTP load, until the sentinels have
// promoted the replica and the client follows. Every answer is 200 for the
// request's own valid session, 401 session_revoked for a revoked one, or,
// only while the deployment fails over, 503 store_unavailable with no
// cookie: never anonymous, never a revoked session served, never a valid
// one refused. The revocations were replicated (WAIT) before the kill, so
// afterwards every revoked session is still refused and every other one
// served.
func TestSentinelFailover(t *testing.T) {
	sen := redistest.StartSentinel(t, redistest.SentinelOptions{})
	// The Sentinel client of docs/storage.md, plus timeouts shorter than go-redis's defaults
	// (5 s to dial, 3 s to read or write) but long enough for a loaded
	// machine; the default retries.
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            sen.MasterName(),
		SentinelAddrs:         sen.SentinelAddrs(),
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	f := newFixture(t, rdb, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
	web := newApp(t, f, appOptions{deadline: reqTimeout})

	// 50 sessions of 25 users; every fifth revoked.
	var sessions, valid []*sentinelSession
	for _, u := range newUsers(25) {
		for range 2 {
			res := f.mustLogin(t, u)
			sessions = append(sessions, &sentinelSession{user: u, id: res.Session.ID, token: res.Token})
		}
	}
	for i, s := range sessions {
		if i%5 != 0 {
			valid = append(valid, s)
			continue
		}
		if err := f.revoke(s.user, s.id); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		s.revoked = true
	}
	// WAIT counts the replicas that have the writes of its own connection,
	// so it follows a write on that connection: replication is in order,
	// so the replica then also has every earlier write of the other ones.
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
		defer cancel()
		cn := rdb.Conn()
		defer cn.Close()
		if err := cn.Set(ctx, f.Prefix+"replicated", "1", time.Minute).Err(); err != nil {
			t.Fatalf("SET before WAIT: %v", err)
		}
		if n, err := cn.Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
			t.Fatalf("WAIT 1 2000 = %d, %v; want 1 replica", n, err)
		}
	}()

	var tally failoverTally
	names := []string{"up", "failing", "back"}
	const (
		up int32 = iota
		failing
		back
	)
	// sweep requests every session once and checks the answer is final.
	sweep := func(when string) {
		for _, s := range sessions {
			start := time.Now()
			r := web.mustDo(t, http.MethodGet, "/app/data", s.token, "", nil)
			status, p := classify(s, r)
			tally.add(when, status, start, time.Now())
			if p == "" && status == "503" {
				p = fmt.Sprintf("session %s got 503 store_unavailable", s.id)
			}
			if p != "" {
				t.Errorf("%s: %s", when, p)
			}
			if s.revoked {
				if err := f.auth(s.token); kind(err) != "revoked" {
					t.Errorf("%s: Authenticate of revoked session %s: got %v, want ErrRevoked", when, s.id, err)
				}
			}
		}
	}
	sweep("before")

	var phase atomic.Int32
	stop := load(6, func(r *rand.Rand) {
		s := sessions[r.IntN(len(sessions))]
		p := phase.Load()
		start := time.Now()
		resp, err := web.do(http.MethodGet, "/app/data", s.token, "", nil)
		if phase.Load() != p {
			p = failing // straddled a phase change: judged as part of the window
		}
		if err != nil {
			tally.problem("%s: GET /app/data: %v", names[p], err)
			return
		}
		status, problem := classify(s, resp)
		tally.add(names[p], status, start, time.Now())
		switch {
		case problem != "":
			tally.problem("%s: %s", names[p], problem)
		case status == "503" && p != failing:
			tally.problem("%s: session %s got 503 outside the failover", names[p], s.id)
		}
	})
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	time.Sleep(500 * time.Millisecond)
	phase.Store(failing)
	killedAt := time.Now()
	killed, err := sen.KillMaster()
	if err != nil {
		t.Fatal(err)
	}
	promoted, err := sen.WaitFailover(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	promotedAfter := time.Since(killedAt)
	// Back means the client has recovered, not one lucky connection:
	// bursts of concurrent requests, which need fresh connections, all
	// served for 1.5 s running. Once its dials have failed, a go-redis pool
	// answers every new connection with its last dial error (the old
	// master's) until a probe, made once a second, gets through; meanwhile
	// the bursts may all ride on the autopipeliner's connections.
	var servedSince time.Time
	if err := redistest.WaitFor(20*time.Second, func() error {
		errs := make(chan error, 16)
		for i := range cap(errs) {
			go func() { errs <- web.authHTTP(valid[i%len(valid)].token) }()
		}
		var first error
		for range cap(errs) {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		switch {
		case first != nil:
			servedSince = time.Time{}
			return first
		case servedSince.IsZero():
			servedSince = time.Now()
		}
		if d := time.Since(servedSince); d < 1500*time.Millisecond {
			return fmt.Errorf("served for %v only", d.Round(time.Millisecond))
		}
		return nil
	}); err != nil {
		t.Fatalf("after the failover to %s: %v", promoted, err)
	}
	servedAfter := servedSince.Sub(killedAt)
	phase.Store(back)
	// The load goes on for a while against the new master.
	time.Sleep(1500 * time.Millisecond)
	stop()
	stopped = true

	for _, p := range tally.problems {
		t.Error(p)
	}
	if len(tally.problems) > 0 {
		logMatching(t, "store failures logged by the app", &appLog, "request failed", 10)
		logMatching(t, "go-redis log", &redisLog, "", 20)
	}
	// Whether a request held by the client's retries ends in a 503 or
	// outlives the failover is a matter of timing; that requests were in
	// flight while the master was down is not.
	if tally.total("failing") == 0 {
		t.Errorf("the load made no request while the master was down: %s", &tally)
	}
	for _, status := range []string{"200", "401"} {
		if tally.get("up", status) == 0 || tally.get("back", status) == 0 {
			t.Errorf("no %s before the kill or after the failover: %s", status, &tally)
		}
	}
	sweep("after")
	t.Logf("%d sessions, %d revoked and replicated before the kill; killed master %s, sentinels agreed on %s after %v, the client served every burst from %v on; failover window (first to last 503) %s; responses: %s",
		len(sessions), len(sessions)-len(valid), killed.Addr(), promoted, promotedAfter.Round(time.Millisecond),
		servedAfter.Round(time.Millisecond), tally.window(), &tally)
}

// logMatching logs the last n lines of l that contain substr.
func logMatching(tb testing.TB, what string, l *logLines, substr string, n int) {
	tb.Helper()
	lines, _ := l.snapshot()
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if strings.Contains(lines[i], substr) {
			keep = append(keep, lines[i])
		}
	}
	slices.Reverse(keep)
	tb.Logf("%s (last %d):\n%s", what, len(keep), strings.Join(keep, "\n"))
}
