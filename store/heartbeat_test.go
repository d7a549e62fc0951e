package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

// TestCacheHearsFromEveryMaster: on a Cluster, a revocation's announcement
// goes from the master that ran the script to the node the subscription is
// on over the cluster bus, which can hold it up or lose it (a link dropped
// and reconnected loses what it had not sent) while the subscription stays
// healthy. A cache that has not heard back from every master within its
// health check's window turns off, so that a revocation on another
// instance is refused at once rather than served until its announcement
// arrives, and turns on again once the bus carries the heartbeats again.
func TestCacheHearsFromEveryMaster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartClusterT(t, redistest.ClusterOptions{BusProxies: true})
	clock := redistest.NewClock()
	copts := store.CacheOptions{TTL: store.MaxCacheTTL, HealthCheck: 50 * time.Millisecond, Clock: clock.Now}
	prefix := redistest.Prefix(t)
	a := newCacheEnv(t, cl.Client(t), prefix, clock, copts)
	b := newCacheEnv(t, cl.Client(t), prefix, clock, copts)
	on := func(e *cacheEnv, want bool) error {
		if got := e.Cache.Stats().On; got != want {
			return errors.New("not yet")
		}
		return nil
	}
	until(t, "the caches turn on", func() error { return errors.Join(on(a, true), on(b, true)) })

	// A user whose sessions live on a master no subscription is on: its
	// announcements cross the bus to reach either instance.
	v, _ := loginAwayFromSubscriptions(t, cl, a)
	until(t, "B holds the session", func() error {
		if _, n, err := b.auth(v.Token, loginIP); err != nil || n != 0 {
			return fmt.Errorf("%d round trips, %v", n, err)
		}
		return nil
	})

	// The bus slows down, under the nodes' timeout: the cluster stays
	// healthy, every node answers, and B's subscription is as healthy as
	// before.
	for _, n := range cl.Nodes() {
		cl.BusProxy(n).SetDelay(200 * time.Millisecond)
	}
	if err := redistest.WaitFor(3*time.Second, func() error { return on(b, false) }); err != nil {
		t.Errorf("B's cache stayed on while no heartbeat came back: %v", err)
	}
	if _, err := a.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: v.Session.UserID, Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Errorf("B right after A's revocation, its announcement held up on the bus: %v, want ErrRevoked", err)
	}

	// While the bus stays slow, B's cache stays off: a new subscription
	// turns it on only once a beat is back from every master. A session B
	// reads meanwhile and A then revokes is refused at once.
	w := a.Login(t, v.Session.UserID)
	for range 20 {
		if _, _, err := b.auth(w.Token, loginIP); err != nil {
			t.Fatalf("B with a new session: %v", err)
		}
		if b.Cache.Stats().On {
			t.Fatal("B's cache turned on again while the bus is still slow")
		}
		time.Sleep(copts.HealthCheck)
	}
	if _, err := a.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: w.Session.ID, UserID: w.Session.UserID, Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.auth(w.Token, loginIP); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Errorf("B right after A's revocation of a session it read while the bus was slow: %v, want ErrRevoked", err)
	}

	// Once the bus is back, so is the cache, and it stays on.
	for _, n := range cl.Nodes() {
		cl.BusProxy(n).SetDelay(0)
	}
	until(t, "B's cache turns on again", func() error { return on(b, true) })
	dropped := b.Cache.Stats().Dropped
	time.Sleep(20 * copts.HealthCheck)
	// A loaded machine can hold a beat up past the window (twice the
	// 50 ms health check, which the slow bus above must exceed) and drop
	// the cache once or twice: it comes back on each time. A cache that
	// keeps dropping with the bus healthy drops on most checks.
	until(t, "B's cache on after the bus is back", func() error { return on(b, true) })
	if n := b.Cache.Stats().Dropped - dropped; n > 5 {
		t.Errorf("B's cache after the bus is back: dropped %d times in 20 health checks", n)
	} else if n > 0 {
		t.Logf("B's cache after the bus is back: dropped %d times in 20 health checks (a loaded machine)", n)
	}
}

// TestCacheSubscriptionRefusedIsWarnedOnce: a subscription that can never
// turn the cache on (here an ACL that does not grant the channel) leaves it
// off and says why at Warn, once, not at every retry, nor only at Debug.
func TestCacheSubscriptionRefusedIsWarnedOnce(t *testing.T) {
	ctx := context.Background()
	admin := backends[0].Client
	user := "sk-no-channel-" + uuid.NewString()[:8]
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "resetchannels", "&elsewhere").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
	opts := *admin.(*redis.Client).Options()
	opts.Username, opts.Password = user, "pw"
	client := redis.NewClient(&opts)
	t.Cleanup(func() { client.Close() })
	r, err := store.NewRedis(client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := store.NewCache(r, store.CacheOptions{HealthCheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	var logs logtest.Buffer
	m, err := sessionkit.New(cache, sessionkit.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	until(t, "a few attempts", func() error {
		if n := logs.Count("cache subscription ended"); n < 4 {
			return fmt.Errorf("%d attempts", n)
		}
		return nil
	})
	if s := cache.Stats(); s.On || s.Subscribed != 0 {
		t.Errorf("cache stats %+v: want it never on", s)
	}
	if n := logs.Count("level=WARN msg=\"sessionkit: cache subscription ended\""); n != 1 || logs.Count("NOPERM") == 0 {
		t.Errorf("%d warnings of %d attempts, want 1 naming NOPERM:\n%s", n, logs.Count("cache subscription ended"), logs.String())
	}
}

// TestCacheOffWhileAMasterFailsOver: a master that goes down takes its
// heartbeats with it, though the subscriptions are on other nodes: the
// caches turn off until its replica has taken over and every master's
// beat is back, and a revocation the new master announces reaches them.
func TestCacheOffWhileAMasterFailsOver(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartClusterT(t, redistest.ClusterOptions{ReplicasPerMaster: 1})
	clock := redistest.NewClock()
	copts := store.CacheOptions{TTL: store.MaxCacheTTL, HealthCheck: 100 * time.Millisecond, Clock: clock.Now}
	prefix := redistest.Prefix(t)
	a := newCacheEnv(t, cl.Client(t), prefix, clock, copts)
	b := newCacheEnv(t, cl.Client(t), prefix, clock, copts)
	until(t, "the caches turn on", func() error {
		if !a.Cache.Stats().On || !b.Cache.Stats().On {
			return errors.New("not yet")
		}
		return nil
	})
	v, key := loginAwayFromSubscriptions(t, cl, a)
	until(t, "B holds the session", func() error {
		if _, n, err := b.auth(v.Token, loginIP); err != nil || n != 0 {
			return fmt.Errorf("%d round trips, %v", n, err)
		}
		return nil
	})
	dropped := b.Cache.Stats().Dropped
	if _, err := cl.KillMasterOf(key); err != nil { // returns once the replica has taken over
		t.Fatal(err)
	}
	failedOver := time.Now()
	if err := redistest.WaitFor(30*time.Second, func() error {
		if s := b.Cache.Stats(); !s.On || s.Dropped == dropped {
			return fmt.Errorf("on %v, dropped %d more times", s.On, s.Dropped-dropped)
		}
		return nil
	}); err != nil {
		t.Fatalf("B's cache after the failover: %v", err)
	}
	t.Logf("B's cache on again %v after the failover", time.Since(failedOver))
	until(t, "A revokes the session on the new master", func() error {
		_, err := a.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: v.Session.UserID, Reason: "stolen"})
		return err
	})
	until(t, "B refuses it", func() error {
		if _, _, err := b.auth(v.Token, loginIP); !errors.Is(err, sessionkit.ErrRevoked) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
}

// loginAwayFromSubscriptions signs a user in on e whose sessions live on a
// master no Pub/Sub connection is on, and returns the session and its key.
func loginAwayFromSubscriptions(t *testing.T, cl *redistest.Cluster, e *cacheEnv) (sessionkit.CreateSessionResult, string) {
	t.Helper()
	ctx := context.Background()
	subscribed := map[string]bool{}
	for _, n := range cl.Nodes() {
		list, err := n.Client(t).Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			t.Fatal(err)
		}
		subscribed[n.Addr()] = strings.TrimSpace(list) != ""
	}
	for range 100 {
		v := e.Login(t, uuid.New())
		key, _ := e.KeyNames(t).Active(v.Session.ID)
		m, err := cl.MasterForSlot(ctx, redistest.KeySlot(key))
		if err != nil {
			t.Fatal(err)
		}
		if !subscribed[m.Addr()] {
			return v, key
		}
	}
	t.Fatalf("every master has a subscription: %v", subscribed)
	return sessionkit.CreateSessionResult{}, ""
}
