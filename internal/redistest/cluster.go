package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterTimeout bounds cluster creation, failover and slot migration.
	clusterTimeout = 60 * time.Second
	// migrateBatch is how many keys one MIGRATE moves.
	migrateBatch = 100
	// nodeTimeout is the cluster-node-timeout of a running cluster: short,
	// so a killed master is detected and failed over within a few seconds.
	nodeTimeout = time.Second
	// joinNodeTimeout is the cluster-node-timeout while the cluster forms.
	// A node forgets a node it is meeting if their handshake has not
	// completed within the node timeout, and Redis (7.0 at least) never
	// meets it again from that side, while the other side, which completed
	// its half, keeps the link: the nodes then never agree on the slot map
	// (valkey-io/valkey#1251). With nodeTimeout, one node stalled for a
	// second during the join, as happens on a loaded test machine, was
	// enough. So the cluster forms with the whole creation budget as its
	// handshake deadline, and gets nodeTimeout once it is healthy.
	joinNodeTimeout = clusterTimeout
)

// clusterArgs enable cluster mode with the short node timeout (Restart
// brings a node back with it). A validity factor of 0 lets any replica fail
// over, however long it was disconnected, which keeps failover
// deterministic in tests.
var clusterArgs = []string{
	"--cluster-enabled", "yes",
	"--cluster-config-file", "nodes.conf",
	"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
	"--cluster-replica-validity-factor", "0",
}

// ClusterOptions configures a Redis Cluster. The zero value is 3 masters
// without replicas.
type ClusterOptions struct {
	// Masters is the number of masters; at least 3, as redis-cli requires.
	// Default 3.
	Masters int
	// ReplicasPerMaster is the number of replicas of each master. Default 0.
	ReplicasPerMaster int
	// Args are extra redis-server arguments for every node, as "--key",
	// "value" pairs.
	Args []string
	// BusProxies routes what the other nodes send each node over the
	// cluster bus through a Proxy of its own (Cluster.BusProxy): a test can
	// then delay it, as a slow or congested network between nodes would,
	// while clients still reach the node directly. StartClusterT only.
	BusProxies bool
}

// Cluster is a Redis Cluster of local redis-server processes, created with
// redis-cli --cluster create. Its methods are safe for concurrent use.
type Cluster struct {
	opts  ClusterOptions
	nodes []*Server
	bus   []*Proxy // with BusProxies, node i's at i
}

// StartCluster starts Masters*(1+ReplicasPerMaster) cluster-enabled nodes,
// joins them with redis-cli and waits until every node reports
// cluster_state:ok, all agree on the slot map and every replica is in sync.
// The caller must call Stop; in a test, use StartClusterT instead.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	if opts.BusProxies {
		return nil, errors.New("redistest: BusProxies needs a test: use StartClusterT")
	}
	return startCluster(opts, nil)
}

// startCluster is StartCluster, with bus proxies when bus is not nil: one
// per node, listening, to be pointed at the node's bus port once it has
// one.
func startCluster(opts ClusterOptions, bus func(n int) []*Proxy) (*Cluster, error) {
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.Masters < 3 || opts.ReplicasPerMaster < 0 {
		return nil, fmt.Errorf("redistest: cluster of %d masters with %d replicas each: want at least 3 masters and no negative replica count", opts.Masters, opts.ReplicasPerMaster)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New("redis-cli not found: run `make test`, which installs it")
	}
	c := &Cluster{opts: opts, nodes: make([]*Server, opts.Masters*(1+opts.ReplicasPerMaster))}
	if bus != nil {
		c.bus = bus(len(c.nodes))
	}
	if err := c.startNodes(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	err = c.setNodeTimeout(ctx, joinNodeTimeout)
	if err == nil {
		err = c.create(ctx, cli)
	}
	if err == nil {
		err = c.waitHealthy(ctx, len(c.nodes)-opts.Masters)
	}
	if err == nil {
		err = c.setNodeTimeout(ctx, nodeTimeout)
	}
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, c.logTails(8)) // before Stop removes the logs
		c.Stop()
		return nil, err
	}
	return c, nil
}

// logTails returns the last n log lines of every node.
func (c *Cluster) logTails(n int) string {
	var b strings.Builder
	for _, node := range c.nodes {
		fmt.Fprintf(&b, "node %s:\n%s", node.Addr(), node.logTail(n))
	}
	return b.String()
}

// StartClusterT starts a cluster like StartCluster and stops it when the
// test finishes, failing the test if it cannot start. If the test failed,
// the tail of each node's log is logged.
func StartClusterT(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	requireBinaries(tb, "redis-server", "redis-cli")
	var bus func(int) []*Proxy
	if opts.BusProxies {
		bus = func(n int) []*Proxy {
			proxies := make([]*Proxy, n)
			for i := range proxies {
				proxies[i] = NewProxy(tb, "") // its target once the node has a port
			}
			return proxies
		}
	}
	c, err := startCluster(opts, bus)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redistest: cluster logs:\n%s", c.logTails(15))
		}
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

func (c *Cluster) startNodes() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() {
			args := clusterArgs
			if c.bus != nil {
				// The other nodes connect to the bus port a node announces.
				_, port, _ := net.SplitHostPort(c.bus[i].Addr())
				args = append(slices.Clone(clusterArgs), "--cluster-announce-bus-port", port)
			}
			c.nodes[i], errs[i] = startServer(Options{Args: c.opts.Args}, args)
			if errs[i] == nil && c.bus != nil {
				c.bus[i].setTarget(net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[i].port+busOffset)))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return err
	}
	return nil
}

// setNodeTimeout sets cluster-node-timeout on every node.
func (c *Cluster) setNodeTimeout(ctx context.Context, d time.Duration) error {
	for _, n := range c.nodes {
		if err := n.adminClient().ConfigSet(ctx, "cluster-node-timeout", strconv.FormatInt(d.Milliseconds(), 10)).Err(); err != nil {
			return fmt.Errorf("redistest: %s: CONFIG SET cluster-node-timeout: %w", n.Addr(), err)
		}
	}
	return nil
}

func (c *Cluster) create(ctx context.Context, cli string) error {
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(c.opts.ReplicasPerMaster), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redistest: redis-cli --cluster create: %w\n%s", err, tail(string(out), 20))
	}
	return nil
}

// Addrs returns the addresses of all nodes, in creation order, whether or
// not they are running.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// BusProxy returns the proxy that carries what the other nodes send node
// over the cluster bus (ClusterOptions.BusProxies), nil without one.
func (c *Cluster) BusProxy(node *Server) *Proxy {
	for i, n := range c.nodes {
		if n == node && c.bus != nil {
			return c.bus[i]
		}
	}
	return nil
}

// Nodes returns all nodes, in creation order. Roles change with failover
// and restarts: ask Role, Masters or MasterForSlot for the current ones.
func (c *Cluster) Nodes() []*Server { return slices.Clone(c.nodes) }

// Client returns a new cluster client seeded with every node, closed when
// the test finishes. Context deadlines apply to its network I/O, it follows
// enough MOVED/ASK redirects to ride through a slot migration, and it
// reloads the slot map every second: go-redis learns of a failover only
// from that reload (60 s by default), not from a refused connection.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      c.Addrs(),
		ContextTimeoutEnabled:      true,
		MaxRedirects:               8,
		ClusterStateReloadInterval: time.Second,
	})
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// Stop stops every node; see Server.Stop.
func (c *Cluster) Stop() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		if n != nil {
			wg.Go(func() { errs[i] = n.Stop() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Role returns the server's replication role, "master" or "slave".
func (s *Server) Role(ctx context.Context) (string, error) {
	info, err := s.adminClient().Info(ctx, "replication").Result()
	if err != nil {
		return "", fmt.Errorf("redistest: role of %s: %w", s.Addr(), err)
	}
	return infoField(info, "role"), nil
}

// Masters returns the running nodes whose role is master, in creation
// order.
func (c *Cluster) Masters(ctx context.Context) ([]*Server, error) {
	var masters []*Server
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		role, err := n.Role(ctx)
		if err != nil {
			return nil, err
		}
		if role == "master" {
			masters = append(masters, n)
		}
	}
	return masters, nil
}

// MasterForSlot returns the node that owns slot, according to the first
// running node that answers CLUSTER SLOTS.
func (c *Cluster) MasterForSlot(ctx context.Context, slot int) (*Server, error) {
	var lastErr error
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		slots, err := clusterSlots(ctx, n.adminClient())
		if err != nil {
			lastErr = err
			continue
		}
		for _, r := range slots {
			if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
				if m := c.byAddr(r.Nodes[0].Addr); m != nil {
					return m, nil
				}
				return nil, fmt.Errorf("redistest: slot %d is owned by %s, not a node of this cluster", slot, r.Nodes[0].Addr)
			}
		}
		return nil, fmt.Errorf("redistest: slot %d is not assigned (asked %s)", slot, n.Addr())
	}
	return nil, fmt.Errorf("redistest: no running node answered CLUSTER SLOTS: %v", lastErr)
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// WaitHealthy waits until every running node reports cluster_state:ok with
// all slots served, all running nodes agree on the slot map, every slot is
// owned by a running node, and every running replica's link to its master
// is up and synced. It returns an error describing what is still wrong when
// ctx ends.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.waitHealthy(ctx, -1)
}

// waitHealthy is WaitHealthy that also waits for exactly wantReplicas
// replicas in sync, unless wantReplicas is negative.
func (c *Cluster) waitHealthy(ctx context.Context, wantReplicas int) error {
	return poll(ctx, "cluster healthy", func() error { return c.checkHealthy(ctx, wantReplicas) })
}

func (c *Cluster) checkHealthy(ctx context.Context, wantReplicas int) error {
	var ref string
	replicas := 0
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		admin := n.adminClient()
		info, err := admin.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr(), err)
		}
		if state := infoField(info, "cluster_state"); state != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", n.Addr(), state)
		}
		if ok := infoField(info, "cluster_slots_ok"); ok != strconv.Itoa(slotCount) {
			return fmt.Errorf("%s: cluster_slots_ok:%s", n.Addr(), ok)
		}
		sig, err := c.slotMap(ctx, n)
		if err != nil {
			return err
		}
		if ref == "" {
			ref = sig
		} else if sig != ref {
			return fmt.Errorf("nodes disagree on slots: %q vs %s: %q", ref, n.Addr(), sig)
		}
		repl, err := admin.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", n.Addr(), err)
		}
		if infoField(repl, "role") == "slave" {
			if infoField(repl, "master_link_status") != "up" || infoField(repl, "master_sync_in_progress") != "0" {
				return fmt.Errorf("replica %s not in sync with its master", n.Addr())
			}
			replicas++
		}
	}
	if ref == "" {
		return errors.New("no node is running")
	}
	if wantReplicas >= 0 && replicas != wantReplicas {
		return fmt.Errorf("%d replicas in sync, want %d", replicas, wantReplicas)
	}
	return nil
}

// slotMap returns n's view of slot ownership as "start-end=addr" ranges,
// checking that every owner is a running node.
func (c *Cluster) slotMap(ctx context.Context, n *Server) (string, error) {
	slots, err := clusterSlots(ctx, n.adminClient())
	if err != nil {
		return "", fmt.Errorf("%s: CLUSTER SLOTS: %w", n.Addr(), err)
	}
	slices.SortFunc(slots, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	var b strings.Builder
	for _, r := range slots {
		if len(r.Nodes) == 0 {
			return "", fmt.Errorf("%s: slots %d-%d have no node", n.Addr(), r.Start, r.End)
		}
		owner := r.Nodes[0].Addr
		if m := c.byAddr(owner); m == nil || !m.Running() {
			return "", fmt.Errorf("%s: slots %d-%d owned by %s, which is not running", n.Addr(), r.Start, r.End, owner)
		}
		fmt.Fprintf(&b, "%d-%d=%s ", r.Start, r.End, owner)
	}
	return b.String(), nil
}

// KillMasterOf kills (SIGKILL) the master owning key's slot and returns it.
// With replicas, it first waits until the master's replicas have processed
// all of its writes, so no acknowledged write is lost, and after the kill
// waits until a replica has taken over the slot and the cluster is healthy
// again. Without replicas the slot stays down until the node is restarted.
func (c *Cluster) KillMasterOf(key string) (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	slot := KeySlot(key)
	m, err := c.MasterForSlot(ctx, slot)
	if err != nil {
		return nil, err
	}
	if c.opts.ReplicasPerMaster > 0 {
		if err := c.waitReplicasCaughtUp(ctx, m); err != nil {
			return nil, err
		}
	}
	if err := m.Kill(); err != nil {
		return nil, err
	}
	if c.opts.ReplicasPerMaster == 0 {
		return m, nil
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return m, fmt.Errorf("redistest: after killing %s: %w", m.Addr(), err)
	}
	if owner, err := c.MasterForSlot(ctx, slot); err != nil || owner == m {
		return m, fmt.Errorf("redistest: slot %d not failed over from %s: owner %v, %v", slot, m.Addr(), owner, err)
	}
	return m, nil
}

// waitReplicasCaughtUp waits until every replica attached to m has
// processed m's replication stream up to its offset at the time of the
// call.
func (c *Cluster) waitReplicasCaughtUp(ctx context.Context, m *Server) error {
	info, err := m.adminClient().Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("redistest: %s: INFO replication: %w", m.Addr(), err)
	}
	target, _ := strconv.ParseInt(infoField(info, "master_repl_offset"), 10, 64)
	var replicas []*Server
	for i := 0; ; i++ {
		line := infoField(info, "slave"+strconv.Itoa(i))
		if line == "" {
			break
		}
		var ip, port string
		for kv := range strings.SplitSeq(line, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ip":
				ip = v
			case "port":
				port = v
			}
		}
		if r := c.byAddr(ip + ":" + port); r != nil && r.Running() {
			replicas = append(replicas, r)
		}
	}
	if len(replicas) == 0 {
		return fmt.Errorf("redistest: master %s has no running replica to fail over to", m.Addr())
	}
	return poll(ctx, "replicas of "+m.Addr()+" caught up", func() error {
		for _, r := range replicas {
			ri, err := r.adminClient().Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			off, _ := strconv.ParseInt(infoField(ri, "slave_repl_offset"), 10, 64)
			if off < target {
				return fmt.Errorf("replica %s at offset %d, master at %d", r.Addr(), off, target)
			}
		}
		return nil
	})
}

// MigrateSlot moves slot, with its keys, to the master at index toMaster of
// Masters(ctx), the way redis-cli --cluster reshard does: SETSLOT IMPORTING
// on the target and MIGRATING on the source, MIGRATE of the keys in batches,
// then SETSLOT NODE on every master, target first. Clients keep working
// throughout, following ASK and MOVED redirects. It returns once every
// running node agrees on the new owner. On error the slot may be left
// half-migrated.
func (c *Cluster) MigrateSlot(ctx context.Context, slot int, toMaster int) error {
	if slot < 0 || slot >= slotCount {
		return fmt.Errorf("redistest: migrate slot %d: out of range", slot)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	if toMaster < 0 || toMaster >= len(masters) {
		return fmt.Errorf("redistest: migrate slot %d: no master %d among %d", slot, toMaster, len(masters))
	}
	dst := masters[toMaster]
	src, err := c.MasterForSlot(ctx, slot)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	srcAdmin, dstAdmin := src.adminClient(), dst.adminClient()
	srcID, err := srcAdmin.ClusterMyID(ctx).Result()
	if err != nil {
		return fmt.Errorf("redistest: %s: CLUSTER MYID: %w", src.Addr(), err)
	}
	dstID, err := dstAdmin.ClusterMyID(ctx).Result()
	if err != nil {
		return fmt.Errorf("redistest: %s: CLUSTER MYID: %w", dst.Addr(), err)
	}
	if err := dstAdmin.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		return fmt.Errorf("redistest: %s: SETSLOT %d IMPORTING: %w", dst.Addr(), slot, err)
	}
	if err := srcAdmin.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return fmt.Errorf("redistest: %s: SETSLOT %d MIGRATING: %w", src.Addr(), slot, err)
	}
	for {
		keys, err := srcAdmin.ClusterGetKeysInSlot(ctx, slot, migrateBatch).Result()
		if err != nil {
			return fmt.Errorf("redistest: %s: GETKEYSINSLOT %d: %w", src.Addr(), slot, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", dst.Port(), "", 0, 5000, "REPLACE", "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := srcAdmin.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("redistest: %s: MIGRATE %d keys of slot %d: %w", src.Addr(), len(keys), slot, err)
		}
	}
	// The target first, so it owns the slot before the source stops
	// redirecting with ASK; then the source; then everyone else.
	order := []*Server{dst, src}
	for _, m := range masters {
		if m != dst && m != src {
			order = append(order, m)
		}
	}
	for _, m := range order {
		if err := m.adminClient().Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
			return fmt.Errorf("redistest: %s: SETSLOT %d NODE: %w", m.Addr(), slot, err)
		}
	}
	return poll(ctx, fmt.Sprintf("all nodes agree slot %d moved to %s", slot, dst.Addr()), func() error {
		for _, n := range c.nodes {
			if !n.Running() {
				continue
			}
			slots, err := clusterSlots(ctx, n.adminClient())
			if err != nil {
				return err
			}
			if owner := ownerOf(slots, slot); owner != dst.Addr() {
				return fmt.Errorf("%s still sees slot %d at %q", n.Addr(), slot, owner)
			}
		}
		return nil
	})
}

// clusterSlots runs CLUSTER SLOTS, which go-redis deprecates in favour of
// CLUSTER SHARDS; SLOTS also works on the Redis 6 some distributions ship.
func clusterSlots(ctx context.Context, c *redis.Client) ([]redis.ClusterSlot, error) {
	cmd := redis.NewClusterSlotsCmd(ctx, "cluster", "slots")
	_ = c.Process(ctx, cmd)
	return cmd.Result()
}

func ownerOf(slots []redis.ClusterSlot, slot int) string {
	for _, r := range slots {
		if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	return ""
}

// poll calls check every 50 ms until it returns nil or ctx ends, and then
// reports check's last error.
func poll(ctx context.Context, what string, check func() error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: waiting for %s: %w: %v", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
