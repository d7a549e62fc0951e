package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
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
	subscribed := map[string]bool{}
	for _, n := range cl.Nodes() {
		list, err := n.Client(t).Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			t.Fatal(err)
		}
		subscribed[n.Addr()] = strings.TrimSpace(list) != ""
	}
	var v sessionkit.CreateSessionResult
	for range 100 {
		v = a.Login(t, uuid.New())
		key, _ := a.KeyNames(t).Active(v.Session.ID)
		m, err := cl.MasterForSlot(ctx, redistest.KeySlot(key))
		if err != nil {
			t.Fatal(err)
		}
		if !subscribed[m.Addr()] {
			break
		}
		v = sessionkit.CreateSessionResult{}
	}
	if v.Token == "" {
		t.Fatalf("every master has a subscription: %v", subscribed)
	}
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

	for _, n := range cl.Nodes() {
		cl.BusProxy(n).SetDelay(0)
	}
	until(t, "B's cache turns on again", func() error { return on(b, true) })
}
