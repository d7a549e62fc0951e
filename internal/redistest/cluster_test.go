package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

// TestCluster shares one 3-master cluster among subtests that run in order;
// MigrateSlot comes last because it changes the slot map.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartClusterT(t, redistest.ClusterOptions{})
	if n := len(c.Nodes()); n != 3 {
		t.Fatalf("len(Nodes()) = %d, want 3", n)
	}
	ctx := ctxT(t, 50*time.Second)
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("Masters() = %d masters, %v; want 3", len(masters), err)
	}

	t.Run("SetGetAcrossSlots", func(t *testing.T) {
		cc := c.Client(t)
		prefix := redistest.Prefix(t)
		owners := map[string]bool{}
		for i := 0; len(owners) < 3 && i < 100; i++ {
			key := prefix + strconv.Itoa(i)
			if err := cc.Set(ctx, key, i, time.Minute).Err(); err != nil {
				t.Fatalf("SET %s: %v", key, err)
			}
			if got, err := cc.Get(ctx, key).Int(); err != nil || got != i {
				t.Fatalf("GET %s = %d, %v; want %d", key, got, err, i)
			}
			owner, err := c.MasterForSlot(ctx, redistest.KeySlot(key))
			if err != nil {
				t.Fatal(err)
			}
			owners[owner.Addr()] = true
		}
		if len(owners) != 3 {
			t.Errorf("keys landed on %d masters, want all 3", len(owners))
		}
	})

	t.Run("KeySlotMatchesClusterKeyslot", func(t *testing.T) {
		rdb := c.Nodes()[0].Client(t)
		keys := keySlotKeys()
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.ClusterKeySlot(ctx, k)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT pipeline: %v", err)
		}
		for i, cmd := range cmds {
			want := cmd.(*redis.IntCmd).Val()
			if got := redistest.KeySlot(keys[i]); int64(got) != want {
				t.Errorf("KeySlot(%q) = %d, CLUSTER KEYSLOT = %d", keys[i], got, want)
			}
		}
	})

	t.Run("KillMasterWithoutReplicasThenRestart", func(t *testing.T) {
		cc := c.Client(t)
		key := redistest.Prefix(t) + "k"
		if err := cc.Set(ctx, key, "v", time.Minute).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		m, err := c.KillMasterOf(key)
		if err != nil {
			t.Fatalf("KillMasterOf: %v", err)
		}
		if err := cc.Get(ctxT(t, time.Second), key).Err(); err == nil {
			t.Error("GET with the slot's only master dead succeeded, want an error")
		}
		if err := m.Restart(); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if err := c.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		// The master is back with its slots, but without persistence its
		// data is gone.
		if err := cc.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("GET after restart without AOF: %v, want redis.Nil", err)
		}
		if err := cc.Set(ctx, key, "v2", time.Minute).Err(); err != nil {
			t.Errorf("SET after restart: %v", err)
		}
	})

	t.Run("MigrateSlotUnderTraffic", func(t *testing.T) {
		testMigrateSlot(ctx, t, c)
	})
}

func testMigrateSlot(ctx context.Context, t *testing.T, c *redistest.Cluster) {
	cc := c.Client(t)
	tag := "{" + strings.Trim(redistest.Prefix(t), ":") + "}"
	slot := redistest.KeySlot(tag)
	const n = 1000 // ten MIGRATE batches
	if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Set(ctx, tag+strconv.Itoa(i), i, time.Minute)
		}
		return nil
	}); err != nil {
		t.Fatalf("SET pipeline: %v", err)
	}
	counter := tag + "counter"
	if err := cc.Set(ctx, counter, 0, time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	src, err := c.MasterForSlot(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	to := (slices.Index(masters, src) + 1) % len(masters)
	dst := masters[to]

	// Traffic on the migrating slot: reads and writes of existing keys,
	// and new keys, which the source sends on with ASK.
	stop, started := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var trafficErr error
	ops := 0
	wg.Go(func() {
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := tag + strconv.Itoa(i%n)
			if got, err := cc.Get(ctx, k).Int(); err != nil || got != i%n {
				trafficErr = fmt.Errorf("GET %s during migration = %d, %v; want %d", k, got, err, i%n)
				return
			}
			if err := cc.Incr(ctx, counter).Err(); err != nil {
				trafficErr = fmt.Errorf("INCR during migration: %v", err)
				return
			}
			if err := cc.Set(ctx, tag+"new"+strconv.Itoa(i), i, time.Minute).Err(); err != nil {
				trafficErr = fmt.Errorf("SET of a new key during migration: %v", err)
				return
			}
			if ops++; ops == 10 {
				close(started)
			}
		}
	})
	select {
	case <-started:
	case <-time.After(5 * time.Second):
	}
	start := time.Now()
	err = c.MigrateSlot(ctx, slot, to)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("MigrateSlot: %v", err)
	}
	t.Logf("migrated slot %d from %s to %s in %v with %d traffic rounds", slot, src.Addr(), dst.Addr(), took, ops)
	if trafficErr != nil {
		t.Error(trafficErr)
	}

	if owner, err := c.MasterForSlot(ctx, slot); err != nil || owner != dst {
		t.Errorf("after MigrateSlot the slot is owned by %v, %v; want %s", owner, err, dst.Addr())
	}
	if left, err := src.Client(t).ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || left != 0 {
		t.Errorf("keys left in slot %d on the source = %d, %v; want 0", slot, left, err)
	}
	for i := range n {
		k := tag + strconv.Itoa(i)
		if got, err := cc.Get(ctx, k).Int(); err != nil || got != i {
			t.Fatalf("GET %s after migration = %d, %v; want %d", k, got, err, i)
		}
	}
	if ttl, err := cc.TTL(ctx, tag+"0").Result(); err != nil || ttl <= 0 {
		t.Errorf("TTL after migration = %v, %v; want kept", ttl, err)
	}
	if got, err := cc.Get(ctx, counter).Int(); err != nil || got != ops {
		t.Errorf("counter = %d, %v; want %d (one per traffic round)", got, err, ops)
	}
}

func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover of a 3+3 cluster takes several seconds; skipped with -short")
	}
	t.Parallel()
	c := redistest.StartClusterT(t, redistest.ClusterOptions{Masters: 3, ReplicasPerMaster: 1})
	ctx := ctxT(t, 50*time.Second)
	cc := c.Client(t)
	key := redistest.Prefix(t) + "k"
	if err := cc.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	start := time.Now()
	old, err := c.KillMasterOf(key)
	if err != nil {
		t.Fatalf("KillMasterOf: %v", err)
	}
	t.Logf("failover of %s took %v", old.Addr(), time.Since(start))
	if old.Running() {
		t.Error("killed master still running")
	}
	owner, err := c.MasterForSlot(ctx, redistest.KeySlot(key))
	if err != nil || owner == old {
		t.Fatalf("slot owner after failover = %v, %v; want a promoted replica", owner, err)
	}

	// The client learns the new owner from its errors and a reload.
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, err = cc.Get(ctx, key).Result(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || got != "v" {
		t.Fatalf("GET after failover = %q, %v; want \"v\"", got, err)
	}

	// The old master comes back as a replica of the promoted one.
	if err := old.Restart(); err != nil {
		t.Fatalf("Restart of the old master: %v", err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if role, err := old.Role(ctx); err != nil || role != "slave" {
		t.Errorf("old master's role after restart = %q, %v; want slave", role, err)
	}
}

// TestClusterBusProxies: with BusProxies the cluster forms through the
// proxies, and delaying a node's proxy delays a message published on
// another master to a subscriber of that node, as a slow link between
// nodes would, while the node itself answers at once.
func TestClusterBusProxies(t *testing.T) {
	t.Parallel()
	c := redistest.StartClusterT(t, redistest.ClusterOptions{BusProxies: true})
	ctx := ctxT(t, 50*time.Second)
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("Masters() = %d masters, %v; want 3", len(masters), err)
	}
	to, from := masters[0], masters[1]
	for _, n := range masters {
		nodes, err := n.Client(t).ClusterNodes(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			addr := strings.Fields(line)[1] // ip:port@cport
			_, cport, _ := strings.Cut(addr, "@")
			cport, _, _ = strings.Cut(cport, ",")
			if !slices.ContainsFunc(masters, func(m *redistest.Server) bool {
				return strings.HasSuffix(c.BusProxy(m).Addr(), ":"+cport)
			}) {
				t.Errorf("%s knows a node at %s, not behind a bus proxy", n.Addr(), addr)
			}
		}
	}
	channel := redistest.Prefix(t)
	sub := to.Client(t).Subscribe(ctx, channel)
	defer sub.Close()
	if _, err := sub.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		t.Fatalf("subscribe on %s: %v", to.Addr(), err)
	}
	arrival := func() time.Duration {
		t.Helper()
		start := time.Now()
		if err := from.Client(t).Publish(ctx, channel, "x").Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := arrival(); d > time.Second {
		t.Errorf("a message from %s reached a subscriber of %s after %v undelayed", from.Addr(), to.Addr(), d)
	}
	const delay = 200 * time.Millisecond
	c.BusProxy(to).SetDelay(delay)
	if d := arrival(); d < delay {
		t.Errorf("with %s's bus delayed by %v, a message from %s reached its subscriber after %v", to.Addr(), delay, from.Addr(), d)
	}
	start := time.Now()
	if err := to.Client(t).Ping(ctx).Err(); err != nil || time.Since(start) >= delay {
		t.Errorf("the node whose bus is delayed answered PING after %v: %v", time.Since(start), err)
	}
	c.BusProxy(to).SetDelay(0)
}
