package faulttest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/redistest"
)

// clusterLeak reports a Cluster routing error text in err: the app must never
// see one, only ErrUnavailable while a slot has no reachable owner.
func clusterLeak(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	for _, bad := range []string{"CROSSSLOT", "MOVED", "ASK ", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.Contains(s, bad) {
			return true
		}
	}
	return false
}

// clusterDown reports whether err is the store's unavailability on a
// CLUSTERDOWN reply: a slot without a master, during a failover.
func clusterDown(err error) bool {
	return errors.Is(err, sessionkit.ErrUnavailable) && strings.Contains(err.Error(), "CLUSTERDOWN")
}

// userKey names a key in user's slot.
func userKey(tb testing.TB, prefix string, user uuid.UUID) string {
	tb.Helper()
	k, err := rediskey.New(prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return k.ForUser(user).Index
}

// TestClusterFailover kills the master that holds one user's slot while
// authentications run across the whole Cluster (3 masters, 3 replicas),
// through the Manager and through the HTTP middleware, and waits for its
// replica to be promoted. During the failover window a call may fail only
// with ErrUnavailable (a request only with 503 store_unavailable and no
// cookie), never with a routing error (CROSSSLOT, MOVED, ASK); once the
// slot is served again no call fails. Writes pause
// across the kill itself, since Redis replication is asynchronous and a
// write acknowledged by a master in its last instant may be lost with it;
// they resume, and must succeed, after the failover.
func TestClusterFailover(t *testing.T) {
	cl := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3, ReplicasPerMaster: 1})
	f := newFixture(t, cl.Client(t), sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
	m := newModel()
	users := newUsers(24)
	seed(t, f, m, users, 3)
	victim := users[0]
	var victimSession *tracked
	for _, s := range m.list {
		if s.user == victim && s.st == stActive {
			victimSession = s
			break
		}
	}

	const (
		up int32 = iota
		failing
		back
	)
	names := []string{"up", "failing", "back"}
	var phase atomic.Int32
	var writes sync.RWMutex // held by each write; taken to pause writes across the kill
	var cnt counter
	judge := func(op string, p0 int32, err error) {
		cnt.add(names[p0]+"/"+op, err)
		k := kind(err)
		switch {
		case clusterDown(err) && p0 == failing:
			// While the slot has no master, Redis answers CLUSTERDOWN;
			// go-redis retries it (8 times, with a random backoff that
			// can total under a second) and then gives it up. Answered
			// as the store being unavailable, as anything in the window
			// may be, it is no routing error.
		case clusterLeak(err):
			m.problem("%s (%s): a Cluster routing error reached the app: %v", op, names[p0], err)
		case k == "unavailable" && p0 != failing:
			m.problem("%s (%s): got %v, want no failure outside the failover window", op, names[p0], err)
		case k != "ok" && k != "unavailable" && k != "revoked":
			m.problem("%s (%s): unexpected %v", op, names[p0], err)
		}
	}
	// Requests with a random known session, through the Manager and
	// through the HTTP middleware.
	authLoad := func(op string, auth func(tok string) error) func(r *rand.Rand) {
		return func(r *rand.Rand) {
			s := m.pick(r)
			before, _ := m.stateOf(s)
			p0 := phase.Load()
			err := auth(s.token)
			if phase.Load() != p0 {
				p0 = failing // straddled a phase change: judged as part of the window
			}
			judge(op, p0, err)
			m.checkAuth(s, before, err)
		}
	}
	web := newApp(t, f, appOptions{})
	stopAuth := load(3, authLoad("authenticate", f.auth))
	stopHTTP := load(2, authLoad("http", web.authHTTP))
	stopWrites := load(1, func(r *rand.Rand) {
		time.Sleep(5 * time.Millisecond)
		writes.RLock()
		defer writes.RUnlock()
		if phase.Load() == failing {
			return
		}
		res, err := f.login(users[r.IntN(len(users))])
		judge("login", phase.Load(), err)
		switch kind(err) {
		case "ok":
			m.addCreated(res)
		case "unavailable":
			m.loginFailed()
		}
		if s := m.pick(r); m.beginRevoke(s) {
			err := f.revoke(s.user, s.id)
			judge("revoke", phase.Load(), err)
			m.endRevoke(s, sessionkit.ReasonUserRevoked, err)
		}
	})

	time.Sleep(500 * time.Millisecond)
	writes.Lock()
	phase.Store(failing)
	writes.Unlock()
	start := time.Now()
	killed, err := cl.KillMasterOf(userKey(t, f.Prefix, victim))
	if err != nil {
		t.Fatal(err)
	}
	// The client learns the new owner from its periodic slot map reload.
	if err := redistest.WaitFor(30*time.Second, func() error {
		err := f.auth(victimSession.token)
		if errors.Is(err, sessionkit.ErrRevoked) {
			return nil // the load revoked it: answered by the slot's new owner all the same
		}
		return err
	}); err != nil {
		t.Fatalf("the victim's session after failover: %v", err)
	}
	window := time.Since(start)
	phase.Store(back)
	time.Sleep(2 * time.Second)
	stopWrites()
	stopHTTP()
	stopAuth()

	m.settle()
	if p := m.report(); p != "" {
		t.Errorf("during the load:\n%s", p)
	}
	if cnt.get("back/login", "ok") == 0 {
		t.Errorf("no login succeeded after the failover: %s", &cnt)
	}
	if cnt.get("back/http", "ok") == 0 {
		t.Errorf("no HTTP request succeeded after the failover: %s", &cnt)
	}
	verifySessions(t, f, m)
	compareStore(t, m, checkStore(t, f, nil))
	t.Logf("killed master %s; failover window %v; operations: %s", killed.Addr(), window.Round(time.Millisecond), &cnt)
}

// TestClusterSlotMigration moves the slot of one user, with its keys, from
// master to master (as redis-cli --cluster reshard does) while that user's
// sessions are used (through the Manager and through the HTTP middleware),
// created and revoked. The client follows ASK and MOVED redirects and
// retries TRYAGAIN, so no call may fail.
func TestClusterSlotMigration(t *testing.T) {
	cl := sharedCluster(t)
	f := newFixture(t, cl.Client(t), sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
	m := newModel()
	victim := uuid.New()
	// Enough keys in the slot that each migration takes several batches.
	for range 150 {
		m.addCreated(f.mustLogin(t, victim))
	}
	others := newUsers(10)
	seed(t, f, m, others, 3)
	slot := redistest.KeySlot(userKey(t, f.Prefix, victim))

	var cnt counter
	judge := func(op string, err error) {
		cnt.add(op, err)
		if k := kind(err); k != "ok" && k != "revoked" {
			m.problem("%s during slot migration: got %v, want no failure", op, err)
		}
	}
	authLoad := func(op string, auth func(tok string) error) func(r *rand.Rand) {
		return func(r *rand.Rand) {
			s := m.pick(r)
			before, _ := m.stateOf(s)
			err := auth(s.token)
			judge(op, err)
			m.checkAuth(s, before, err)
		}
	}
	web := newApp(t, f, appOptions{})
	stopAuth := load(3, authLoad("authenticate", f.auth))
	stopHTTP := load(2, authLoad("http", web.authHTTP))
	stopWrites := load(1, func(r *rand.Rand) {
		res, err := f.login(victim)
		judge("login", err)
		if err == nil {
			m.addCreated(res)
		}
		if s := m.pick(r); m.beginRevoke(s) {
			err := f.revoke(s.user, s.id)
			judge("revoke", err)
			m.endRevoke(s, sessionkit.ReasonUserRevoked, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
		defer cancel()
		_, err = f.M.ListUserSessions(ctx, victim, sessionkit.ListOptions{})
		judge("list", err)
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var moves []string
	for range 3 {
		masters, err := cl.Masters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := cl.MasterForSlot(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		to := (slices.Index(masters, owner) + 1) % len(masters)
		start := time.Now()
		if err := cl.MigrateSlot(ctx, slot, to); err != nil {
			t.Fatal(err)
		}
		moves = append(moves, owner.Addr()+"->"+masters[to].Addr()+" in "+time.Since(start).Round(time.Millisecond).String())
		time.Sleep(200 * time.Millisecond)
	}
	stopWrites()
	stopHTTP()
	stopAuth()
	if cnt.get("http", "ok") == 0 {
		t.Errorf("no HTTP request succeeded: %s", &cnt)
	}

	m.settle()
	if p := m.report(); p != "" {
		t.Errorf("during the migrations:\n%s", p)
	}
	verifySessions(t, f, m)
	compareStore(t, m, checkStore(t, f, nil))
	t.Logf("slot %d moved %s; operations: %s", slot, strings.Join(moves, ", "), &cnt)
}
