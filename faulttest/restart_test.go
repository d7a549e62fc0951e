package faulttest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
)

// Phases of a fault, as seen by the load.
const (
	phaseUp int32 = iota
	phaseKilling
	phaseDown
	phaseRestarting
	phaseBack
)

var phaseNames = []string{"up", "killing", "down", "restarting", "back"}

// load runs fn on n goroutines, each with its own random source, until the
// returned stop function is called; stop waits for them.
func load(n int, fn func(r *rand.Rand)) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for !done.Load() {
				fn(r)
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// seed logs users in, sessions each, and revokes every third session.
func seed(tb testing.TB, f *fixture, m *model, users []uuid.UUID, sessions int) {
	tb.Helper()
	for _, u := range users {
		for range sessions {
			m.addCreated(f.mustLogin(tb, u))
		}
	}
	for i, s := range m.list {
		if i%3 != 0 || !m.beginRevoke(s) {
			continue
		}
		if err := f.revoke(s.user, s.id); !m.endRevoke(s, sessionkit.ReasonUserRevoked, err) || err != nil {
			tb.Fatalf("RevokeSession: %v", err)
		}
	}
}

func newUsers(n int) []uuid.UUID {
	users := make([]uuid.UUID, n)
	for i := range users {
		users[i] = uuid.New()
	}
	return users
}

// TestRedisKilledMidLoad kills redis-server (SIGKILL, as a crash would) while
// logins, authentications and revocations run, keeps it down, then restarts
// it from its append-only file. While it is down every authentication and
// login fails with ErrUnavailable, and through the HTTP layer with 503
// store_unavailable and no cookie: never served, never treated as no session. After the restart every session that existed is
// served again and no acknowledged revocation is undone.
func TestRedisKilledMidLoad(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	f := newFixture(t, srv.Client(t), sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
	web := newApp(t, f, appOptions{})
	m := newModel()
	users := newUsers(30)
	seed(t, f, m, users, 3)

	var phase atomic.Int32
	var cnt counter
	// judge checks one outcome against the phases at the call's start and end.
	judge := func(op string, p0, p1 int32, err error) {
		cnt.add(phaseNames[p0]+"/"+op, err)
		k := kind(err)
		switch {
		case p0 == phaseDown && p1 == phaseDown && k != "unavailable":
			m.problem("%s while Redis was down: got %v, want ErrUnavailable", op, err)
		case k == "unavailable" && (p0 == phaseUp && p1 == phaseUp || p0 == phaseBack):
			m.problem("%s while Redis was up (%s): got %v", op, phaseNames[p0], err)
		case k != "ok" && k != "unavailable" && k != "revoked":
			m.problem("%s (%s): unexpected %v", op, phaseNames[p0], err)
		}
	}
	stopAuth := load(3, func(r *rand.Rand) {
		s := m.pick(r)
		before, _ := m.stateOf(s)
		p0 := phase.Load()
		err := f.auth(s.token)
		judge("authenticate", p0, phase.Load(), err)
		m.checkAuth(s, before, err)
	})
	stopWrites := load(1, func(r *rand.Rand) {
		time.Sleep(10 * time.Millisecond)
		p0 := phase.Load()
		res, err := f.login(users[r.IntN(len(users))])
		judge("login", p0, phase.Load(), err)
		switch kind(err) {
		case "ok":
			m.addCreated(res)
		case "unavailable":
			m.loginFailed()
		}
		if s := m.pick(r); m.beginRevoke(s) {
			p0 := phase.Load()
			err := f.revoke(s.user, s.id)
			judge("revoke", p0, phase.Load(), err)
			m.endRevoke(s, sessionkit.ReasonUserRevoked, err)
		}
	})

	time.Sleep(500 * time.Millisecond)
	phase.Store(phaseKilling)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	phase.Store(phaseDown)
	// While down, check a sample directly too, so the phase surely saw requests.
	sample := m.snapshotList()[:20]
	downHTTP := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		for _, s := range sample {
			if err := f.auth(s.token); !errors.Is(err, sessionkit.ErrUnavailable) {
				t.Errorf("authenticate while down: got %v, want ErrUnavailable", err)
			}
		}
		if _, err := f.login(users[0]); !errors.Is(err, sessionkit.ErrUnavailable) {
			t.Errorf("login while down: got %v, want ErrUnavailable", err)
		}
		// Through the HTTP layer: 503, no cookie, never anonymous.
		for _, s := range sample[:3] {
			r := web.mustDo(t, http.MethodGet, "/app/data", s.token, "", nil)
			wantUnavailable(t, "GET /app/data while down", r)
		}
		wantUnavailable(t, "login while down", web.signIn(t, "alice", ""))
		downHTTP++
	}
	phase.Store(phaseRestarting)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	probe := sample[1] // not revoked by seed (every third is), maybe by the load
	// Back means the client has recovered, not just one connection: after
	// PoolSize failed dials, go-redis answers new connections with the last
	// dial error until a background probe, once a second, succeeds, and a
	// dial begun while Redis was down retries for some 0.5 s before it
	// gives up. So back begins once bursts of concurrent calls have all
	// succeeded for 1.5 s in a row: authentications, which share the
	// autopipeliner's connections, and PINGs, which take the pool's own as
	// scripts do.
	burst := func() error {
		errs := make(chan error, 32)
		for i := range cap(errs) {
			go func() {
				var err error
				if i%2 == 0 {
					err = f.auth(probe.token)
				} else {
					ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
					err = f.Client.Ping(ctx).Err()
					cancel()
				}
				if errors.Is(err, sessionkit.ErrRevoked) {
					err = nil
				}
				errs <- err
			}()
		}
		var first error
		for range cap(errs) {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	var since time.Time // of the first success in a row
	if err := redistest.WaitFor(15*time.Second, func() error {
		if err := burst(); err != nil {
			since = time.Time{}
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		if d := time.Since(since); d < 1500*time.Millisecond {
			return fmt.Errorf("calls have succeeded for %v only", d.Round(time.Millisecond))
		}
		return nil
	}); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	phase.Store(phaseBack)
	time.Sleep(500 * time.Millisecond)
	stopWrites()
	stopAuth()

	m.settle()
	if p := m.report(); p != "" {
		t.Errorf("during the load:\n%s", p)
	}
	if n := cnt.get("down/authenticate", "unavailable"); n == 0 {
		t.Errorf("the load made no authentication while Redis was down: %s", &cnt)
	}
	checked := verifySessions(t, f, m)
	st := checkStore(t, f, nil)
	compareStore(t, m, st)
	// Through the HTTP layer too (after the store checks: a login adds a session).
	served := 0
	for _, s := range m.snapshotList() {
		if s.st == stActive && served < 3 {
			served++
			if r := web.mustDo(t, http.MethodGet, "/app/data", s.token, "", nil); r.status != http.StatusOK {
				t.Errorf("GET /app/data after the restart: got %d %s, want 200", r.status, r.body)
			}
		}
	}
	if c := web.signIn(t, "alice", ""); c.status != http.StatusCreated || c.sessionCookie() == nil {
		t.Errorf("login after the restart: got %d, want 201 with a cookie", c.status)
	}
	active, revoked, uncertain := m.counts()
	t.Logf("sessions checked after restart: %d (active %d, revoked %d, revocation outcome unknown %d); HTTP rounds while down: %d; operations: %s",
		checked, active, revoked, uncertain, downHTTP, &cnt)
}

// wantUnavailable fails the test unless r is 503 store_unavailable without
// a Set-Cookie.
func wantUnavailable(tb testing.TB, what string, r response) {
	tb.Helper()
	if r.status != http.StatusServiceUnavailable || r.reason() != middleware.ReasonStoreUnavailable {
		tb.Errorf("%s: got %d %q, want 503 store_unavailable", what, r.status, r.reason())
	}
	if len(r.cookies) != 0 {
		tb.Errorf("%s: got Set-Cookie %d times, want none", what, len(r.cookies))
	}
}

// compareStore checks the model against what Redis holds: every session the
// model holds active is in its user's index, every one it holds revoked is
// recorded revoked with the same reason, and the number of active sessions
// is created minus revoked (sessions whose revocation outcome is unknown may
// be either, and each login that failed with ErrUnavailable may have added
// one).
func compareStore(tb testing.TB, m *model, st stored) {
	tb.Helper()
	var problems []string
	active, uncertainActive := 0, 0
	for _, s := range m.snapshotList() {
		_, isActive := st.active[s.id]
		reason, isRevoked := st.revoked[s.id]
		switch s.st {
		case stActive:
			active++
			if !isActive {
				problems = append(problems, fmt.Sprintf("session %s: active in the model, not in the index", s.id))
			}
		case stRevoked:
			if !isRevoked || reason != s.reason {
				problems = append(problems, fmt.Sprintf("session %s: revoked (%s) in the model; stored revoked=%t reason %q", s.id, s.reason, isRevoked, reason))
			}
		case stUncertain:
			if isActive {
				uncertainActive++
			}
		}
	}
	m.mu.Lock()
	created, revoked, failedLogins := m.created, m.revoked, m.failedLogins
	m.mu.Unlock()
	// A login whose reply was lost may have created a session the model never saw.
	if got, want := len(st.active), active+uncertainActive; got < want || got > want+failedLogins {
		problems = append(problems, fmt.Sprintf("active sessions in Redis: got %d, want %d (plus at most %d from logins whose reply was lost)", got, want, failedLogins))
	}
	if _, _, uncertain := m.counts(); uncertain == 0 && failedLogins == 0 && created-revoked != len(st.active) {
		problems = append(problems, fmt.Sprintf("created %d - revoked %d = %d, but Redis holds %d active", created, revoked, created-revoked, len(st.active)))
	}
	if len(problems) > 30 {
		problems = problems[:30]
	}
	for _, p := range problems {
		tb.Error(p)
	}
}
