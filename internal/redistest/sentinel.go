package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoRedisSentinel is returned when neither redis-sentinel nor
// redis-server (which runs a sentinel with --sentinel) is on PATH.
var ErrNoRedisSentinel = errors.New("redis-sentinel not found: run `make test`, which installs it")

const (
	// sentinelCount and sentinelQuorum: three sentinels, two of which must
	// agree the master is down, so a failover needs a majority and one
	// slow sentinel cannot stop it.
	sentinelCount  = 3
	sentinelQuorum = 2
	// sentinelTimeout bounds starting the deployment: the sentinels find
	// each other through hello messages sent every 2 s, and a loaded
	// machine delays them.
	sentinelTimeout = 60 * time.Second
)

// masterNameRe is what a master name may hold: it is written unquoted
// into the sentinels' configuration.
var masterNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// SentinelOptions configures a Sentinel deployment. The zero value is the
// master "sessionkit" with one replica, watched by three sentinels (quorum
// 2) that fail it over once it has been unreachable for 1 s.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the master under.
	// Default "sessionkit".
	MasterName string
	// DownAfter is down-after-milliseconds: how long the master must be
	// unreachable before a sentinel holds it down. Default 1 s.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout: a failover that stalls (say, a
	// split vote) is retried after twice this. Default 5 s.
	FailoverTimeout time.Duration
	// Args are extra redis-server arguments for the master and the
	// replica, as "--key", "value" pairs.
	Args []string
}

// Sentinel is a Redis Sentinel deployment of local processes: a master, one
// replica of it and three sentinels monitoring it. Its methods are safe for
// concurrent use.
type Sentinel struct {
	opts      SentinelOptions
	nodes     []*Server // the first master, then its replica
	sentinels []*sentinelProc

	mu     sync.Mutex
	master *Server // the master as of the start or the last WaitFailover
}

// StartSentinel starts a master and its replica on free loopback ports,
// then three sentinels monitoring the master, and waits until every
// sentinel sees the master, the replica in sync and the two other
// sentinels, and reports that it can reach the quorum. Everything is
// stopped when the test finishes. The test is skipped when no sentinel
// binary is found, and fails when the deployment does not start; if the
// test failed, the tail of each process's log is logged.
func StartSentinel(tb testing.TB, opts SentinelOptions) *Sentinel {
	tb.Helper()
	if _, _, err := sentinelCommand(); err != nil {
		tb.Skipf("sentinel test skipped: %v (looked for redis-sentinel, and redis-server to run with --sentinel, on PATH)", err)
	}
	requireBinaries(tb, "redis-server")
	s, err := startSentinel(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redistest: sentinel deployment logs:\n%s", s.logTails(30))
		}
		if err := s.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// sentinelCommand returns how to run a sentinel: redis-sentinel, or else
// redis-server --sentinel, which is the same program.
func sentinelCommand() (bin string, flags []string, err error) {
	if bin, err := exec.LookPath("redis-sentinel"); err == nil {
		return bin, nil, nil
	}
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return bin, []string{"--sentinel"}, nil
	}
	return "", nil, ErrNoRedisSentinel
}

func startSentinel(opts SentinelOptions) (*Sentinel, error) {
	if opts.MasterName == "" {
		opts.MasterName = "sessionkit"
	}
	if opts.DownAfter == 0 {
		opts.DownAfter = time.Second
	}
	if opts.FailoverTimeout == 0 {
		opts.FailoverTimeout = 5 * time.Second
	}
	if !masterNameRe.MatchString(opts.MasterName) || opts.DownAfter < time.Millisecond || opts.FailoverTimeout < time.Millisecond {
		return nil, fmt.Errorf("redistest: sentinel options %+v: want a name of letters, digits and \"._-\", and durations of at least 1 ms", opts)
	}
	bin, flags, err := sentinelCommand()
	if err != nil {
		return nil, err
	}
	s := &Sentinel{opts: opts}
	ctx, cancel := context.WithTimeout(context.Background(), sentinelTimeout)
	defer cancel()
	if err := s.start(ctx, bin, flags); err != nil {
		err = fmt.Errorf("%w\n%s", err, s.logTails(10)) // before Stop removes the logs
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Sentinel) start(ctx context.Context, bin string, flags []string) error {
	master, err := startServer(Options{Args: s.opts.Args}, nil)
	if err != nil {
		return err
	}
	s.nodes, s.master = []*Server{master}, master
	replica, err := startServer(Options{Args: s.opts.Args}, []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())})
	if err != nil {
		return err
	}
	s.nodes = append(s.nodes, replica)
	// Before the sentinels start: a sentinel learns of replicas from the
	// master's INFO, which it reads again only every 10 s.
	if err := poll(ctx, "replica "+replica.Addr()+" in sync", func() error { return inSync(ctx, replica) }); err != nil {
		return err
	}

	procs := make([]*sentinelProc, sentinelCount)
	errs := make([]error, sentinelCount)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() { procs[i], errs[i] = startSentinelProc(bin, flags, s.config(master)) })
	}
	wg.Wait()
	for _, p := range procs {
		if p != nil {
			s.sentinels = append(s.sentinels, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return poll(ctx, "sentinels watching "+master.Addr(), func() error { return s.checkWatching(ctx) })
}

// config returns a sentinel's configuration for monitoring master, to
// which each sentinel adds its port, directory and log.
func (s *Sentinel) config(master *Server) string {
	name := s.opts.MasterName
	return fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d\n", name, master.Port(), sentinelQuorum) +
		fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", name, s.opts.DownAfter.Milliseconds()) +
		fmt.Sprintf("sentinel failover-timeout %s %d\n", name, s.opts.FailoverTimeout.Milliseconds()) +
		fmt.Sprintf("sentinel parallel-syncs %s 1\n", name)
}

// inSync reports why replica is not yet streaming from its master, or nil.
func inSync(ctx context.Context, replica *Server) error {
	info, err := replica.adminClient().Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if infoField(info, "master_link_status") != "up" || infoField(info, "master_sync_in_progress") != "0" {
		return fmt.Errorf("replica %s: master_link_status:%s master_sync_in_progress:%s", replica.Addr(),
			infoField(info, "master_link_status"), infoField(info, "master_sync_in_progress"))
	}
	return nil
}

// checkWatching reports what keeps a sentinel from being ready to fail the
// master over, or nil once every sentinel sees the master up, its replica
// linked, the other sentinels, and a reachable quorum.
func (s *Sentinel) checkWatching(ctx context.Context) error {
	name, want := s.opts.MasterName, s.Master()
	for _, p := range s.sentinels {
		c := p.adminClient()
		m, err := c.Master(ctx, name).Result()
		if err != nil {
			return fmt.Errorf("sentinel %s: SENTINEL MASTER: %w", p.addr(), err)
		}
		if got := net.JoinHostPort(m["ip"], m["port"]); got != want || m["flags"] != "master" {
			return fmt.Errorf("sentinel %s: master %s flags %q, want %s flags \"master\"", p.addr(), got, m["flags"], want)
		}
		if m["num-slaves"] != strconv.Itoa(len(s.nodes)-1) || m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
			return fmt.Errorf("sentinel %s: sees %s replicas and %s other sentinels, want %d and %d",
				p.addr(), m["num-slaves"], m["num-other-sentinels"], len(s.nodes)-1, sentinelCount-1)
		}
		replicas, err := c.Replicas(ctx, name).Result()
		if err != nil {
			return fmt.Errorf("sentinel %s: SENTINEL REPLICAS: %w", p.addr(), err)
		}
		for _, r := range replicas {
			if r["flags"] != "slave" || r["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel %s: replica %s:%s flags %q link %q", p.addr(), r["ip"], r["port"], r["flags"], r["master-link-status"])
			}
		}
		if err := c.CkQuorum(ctx, name).Err(); err != nil {
			return fmt.Errorf("sentinel %s: SENTINEL CKQUORUM: %w", p.addr(), err)
		}
	}
	return nil
}

// MasterName returns the name the sentinels monitor the master under, for
// redis.FailoverOptions.MasterName.
func (s *Sentinel) MasterName() string { return s.opts.MasterName }

// SentinelAddrs returns the sentinels' addresses, for
// redis.FailoverOptions.SentinelAddrs.
func (s *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, p := range s.sentinels {
		addrs[i] = p.addr()
	}
	return addrs
}

// Nodes returns the data nodes: the first master, then its replica. Roles
// change with a failover; Master names the current master.
func (s *Sentinel) Nodes() []*Server { return slices.Clone(s.nodes) }

// Master returns the master's address: the first master's until
// WaitFailover has seen another promoted.
func (s *Sentinel) Master() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.master.Addr()
}

// Client returns a new failover client for the deployment, closed when the
// test finishes. Context deadlines apply to its network I/O.
func (s *Sentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            s.MasterName(),
		SentinelAddrs:         s.SentinelAddrs(),
		ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}

// KillMaster sends SIGKILL to the master's process group, as a crash
// would, and returns the killed server. Writes its replica has not received
// are lost: to keep some, have the client send WAIT on the connection that
// wrote them. The sentinels fail over on their own; WaitFailover waits for
// it.
func (s *Sentinel) KillMaster() (*Server, error) {
	s.mu.Lock()
	m := s.master
	s.mu.Unlock()
	if err := m.Kill(); err != nil {
		return nil, err
	}
	return m, nil
}

// WaitFailover waits up to timeout until every running sentinel reports
// one new master, another node of the deployment than Master, that is
// running and answers ROLE as a master. It makes that node Master and
// returns its address.
func (s *Sentinel) WaitFailover(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.mu.Lock()
	old := s.master
	s.mu.Unlock()
	var promoted *Server
	err := poll(ctx, "failover from "+old.Addr(), func() error {
		addr, err := s.reportedMaster(ctx)
		if err != nil {
			return err
		}
		if addr == old.Addr() {
			return fmt.Errorf("the sentinels still report %s", addr)
		}
		n := s.byAddr(addr)
		if n == nil || !n.Running() {
			return fmt.Errorf("the sentinels report %s, not a running node of the deployment", addr)
		}
		role, err := n.adminClient().Do(ctx, "ROLE").Slice()
		if err != nil {
			return fmt.Errorf("%s: ROLE: %w", addr, err)
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s: ROLE %v, want master", addr, role)
		}
		promoted = n
		return nil
	})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.master = promoted
	s.mu.Unlock()
	return promoted.Addr(), nil
}

// reportedMaster returns the master address every running sentinel
// reports, or an error if they disagree or one cannot answer.
func (s *Sentinel) reportedMaster(ctx context.Context) (string, error) {
	var agreed string
	for _, p := range s.sentinels {
		if !p.running() {
			continue
		}
		a, err := p.adminClient().GetMasterAddrByName(ctx, s.opts.MasterName).Result()
		if err != nil || len(a) != 2 {
			return "", fmt.Errorf("sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME: %v %v", p.addr(), a, err)
		}
		addr := net.JoinHostPort(a[0], a[1])
		if agreed != "" && addr != agreed {
			return "", fmt.Errorf("sentinels disagree on the master: %s and %s", agreed, addr)
		}
		agreed = addr
	}
	if agreed == "" {
		return "", errors.New("no sentinel is running")
	}
	return agreed, nil
}

func (s *Sentinel) byAddr(addr string) *Server {
	for _, n := range s.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Stop stops the sentinels, then the data nodes (see Server.Stop), and
// removes their directories. It is final and idempotent.
func (s *Sentinel) Stop() error {
	errs := make([]error, len(s.sentinels))
	var wg sync.WaitGroup
	for i, p := range s.sentinels {
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	for _, n := range s.nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

// logTails returns the last n log lines of every process.
func (s *Sentinel) logTails(n int) string {
	var b strings.Builder
	for _, node := range s.nodes {
		fmt.Fprintf(&b, "node %s:\n%s\n", node.Addr(), node.logTail(n))
	}
	for _, p := range s.sentinels {
		fmt.Fprintf(&b, "sentinel %s:\n%s\n", p.addr(), p.logTail(n))
	}
	return b.String()
}

// sentinelProc is one sentinel process on a loopback port.
type sentinelProc struct {
	port int
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	stopped bool
	admin   *redis.SentinelClient
}

// startSentinelProc starts a sentinel with monitor (the "sentinel ..."
// lines) on a free port in a new temporary directory, and waits until it
// answers PING.
func startSentinelProc(bin string, flags []string, monitor string) (*sentinelProc, error) {
	var p *sentinelProc
	err := onFreePort("redistest-sentinel-", func(port int, dir string) error {
		p = &sentinelProc{port: port, dir: dir}
		return p.launch(bin, flags, monitor)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *sentinelProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *sentinelProc) launch(bin string, flags []string, monitor string) error {
	// A sentinel rewrites its configuration file as it learns the
	// deployment, so each has its own, in its directory.
	conf := filepath.Join(p.dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir %q\nlogfile %q\n",
		p.port, p.dir, filepath.Join(p.dir, "sentinel.log")) + monitor
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	cmd, done, err := startProcess(bin, p.dir, append([]string{conf}, flags...))
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err = poll(ctx, "sentinel "+p.addr(), func() error {
		select {
		case <-done:
			return nil // reported below
		default:
		}
		// Plain TCP until the port accepts: a go-redis pool whose dials
		// fail backs off for a second.
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", p.addr())
		if err != nil {
			return err
		}
		conn.Close()
		return p.adminClient().Ping(ctx).Err()
	})
	select {
	case <-done:
		err = fmt.Errorf("process exited: %v", cmd.ProcessState)
	default:
	}
	if err != nil {
		p.kill()
		return fmt.Errorf("redistest: sentinel on %s did not start: %w\n%s", p.addr(), err, p.logTail(20))
	}
	return nil
}

func (p *sentinelProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
		return !p.stopped
	}
}

// adminClient returns the harness's own client: no retries, short
// timeouts, as for the data nodes.
func (p *sentinelProc) adminClient() *redis.SentinelClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.admin == nil {
		p.admin = redis.NewSentinelClient(adminOptions(p.addr(), 2))
	}
	return p.admin
}

// kill sends SIGKILL to the process group of a sentinel that failed to
// start, waits for the exit and closes the admin client.
func (p *sentinelProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	if p.admin != nil {
		p.admin.Close()
		p.admin = nil
	}
}

// stop shuts the sentinel down (SIGTERM, then SIGKILL after stopTimeout)
// and removes its directory. It is idempotent.
func (p *sentinelProc) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	var err error
	if p.cmd.Process.Signal(syscall.SIGTERM) == nil {
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			err = fmt.Errorf("redistest: sentinel on %s ignored SIGTERM for %v and was killed", p.addr(), stopTimeout)
		}
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	if p.admin != nil {
		p.admin.Close()
		p.admin = nil
	}
	if rmErr := os.RemoveAll(p.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("redistest: %w", rmErr)
	}
	return err
}

// logTail returns the last n lines of the sentinel's log and of anything
// it printed before opening it.
func (p *sentinelProc) logTail(n int) string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "sentinel.log"} {
		if data, err := os.ReadFile(filepath.Join(p.dir, name)); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", name, tail(string(data), n))
		}
	}
	if b.Len() == 0 {
		return "(no log output)"
	}
	return b.String()
}
