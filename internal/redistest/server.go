package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoRedisServer is returned by StartServer and StartCluster when
// redis-server (or, for a cluster, redis-cli) is not on PATH.
var ErrNoRedisServer = errors.New("redis-server not found: run `make test`, which installs it")

const (
	startTimeout = 15 * time.Second // from exec to answering PING with its data loaded
	stopTimeout  = 10 * time.Second // from SIGTERM to exit, before SIGKILL
	startTries   = 5                // ports raced away by another process are retried
)

// Options configures a standalone server. The zero value is a plain server
// with no persistence.
type Options struct {
	// AppendOnly turns on the append-only file with appendfsync always, so
	// every acknowledged write survives Kill and Restart.
	AppendOnly bool
	// MaxMemory sets maxmemory, e.g. "1mb". Empty means no limit.
	MaxMemory string
	// MaxMemoryPolicy sets maxmemory-policy; "noeviction" when MaxMemory is
	// set and this is empty.
	MaxMemoryPolicy string
	// Args are extra redis-server arguments, as "--key", "value" pairs.
	// They come last, so they override the defaults above.
	Args []string
}

// Server is one redis-server process on a loopback port. Its methods are
// safe for concurrent use.
type Server struct {
	opts  Options
	extra []string // arguments added by the harness itself (cluster mode)
	port  int
	dir   string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	stopped bool          // Stop was called; the server cannot come back
	admin   *redis.Client // the harness's own connection, for health checks
}

// StartServer starts a redis-server on a free loopback port in a new
// temporary directory and waits until it answers PING. The caller must call
// Stop; in a test, use Start instead.
func StartServer(opts Options) (*Server, error) {
	return startServer(opts, nil)
}

// Start starts a server like StartServer and stops it when the test and
// its subtests finish, failing the test if redis-server is missing or does
// not start. If the test failed, the tail of the server's log is logged.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	requireBinaries(tb, "redis-server")
	s, err := StartServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.cleanup(tb) })
	return s
}

func startServer(opts Options, extra []string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	var s *Server
	err = onFreePort("redistest-", func(port int, dir string) error {
		s = &Server{opts: opts, extra: extra, port: port, dir: dir}
		return s.launch(bin)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// onFreePort runs launch with a free loopback port and a new temporary
// directory named from prefix, retrying on another port when a process
// took the port (or its cluster bus port) between the probe and the bind.
// A failed launch's directory is removed.
func onFreePort(prefix string, launch func(port int, dir string) error) error {
	var lastErr error
	for range startTries {
		port, err := freePort()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", prefix+strconv.Itoa(port)+"-")
		if err != nil {
			return fmt.Errorf("redistest: %w", err)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return fmt.Errorf("redistest: %w", err)
		}
		if err := launch(port, dir); err != nil {
			lastErr = err
			os.RemoveAll(dir)
			if strings.Contains(err.Error(), "already in use") {
				continue
			}
			return err
		}
		return nil
	}
	return lastErr
}

// Addr returns the server's address, "127.0.0.1:port". It stays the same
// across Restart.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir returns the server's working directory, which holds its log
// (redis.log), its AOF or RDB files and, in a cluster, nodes.conf.
func (s *Server) Dir() string { return s.dir }

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Client returns a new client for the server, closed when the test
// finishes. Context deadlines apply to its network I/O.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  s.Addr(),
		ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}

// Stop shuts the server down gracefully (SIGTERM: the AOF, if any, is
// flushed; no RDB is saved unless Args configured save points), waits for
// it to exit, killing it after 10 s, and removes its directory. Stop is
// final and idempotent: a stopped server cannot Restart.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	err := s.terminateLocked()
	s.closeAdminLocked()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("redistest: %w", rmErr)
	}
	return err
}

// Kill sends SIGKILL to the server's process group and waits for it to
// exit, as a crash would. Data not yet in the AOF is lost. Restart brings
// the server back.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("redistest: kill %s: server was stopped", s.Addr())
	}
	if !s.runningLocked() {
		return nil
	}
	s.killLocked()
	return nil
}

// Restart starts the server again on the same port and directory, so it
// reloads its AOF (or RDB) and, in a cluster, its nodes.conf. A running
// server is first shut down gracefully. Restart returns once the server
// answers PING and has finished loading.
//
// A go-redis client whose dials failed while the server was down may keep
// returning the last dial error for up to a second after Restart, while its
// pool backs off: poll, or use a new client.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("redistest: restart %s: server was stopped", s.Addr())
	}
	if err := s.terminateLocked(); err != nil {
		return err
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return ErrNoRedisServer
	}
	return s.launchLocked(bin)
}

func (s *Server) launch(bin string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launchLocked(bin)
}

// startProcess starts bin with args in dir, in its own process group, its
// output appended to dir/stdout.log; done closes when it exits.
func startProcess(bin, dir string, args []string) (cmd *exec.Cmd, done chan struct{}, err error) {
	out, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("redistest: %w", err)
	}
	defer out.Close() // the child has its own descriptor
	cmd = exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("redistest: start %s: %w", filepath.Base(bin), err)
	}
	done = make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	return cmd, done, nil
}

func (s *Server) launchLocked(bin string) error {
	cmd, done, err := startProcess(bin, s.dir, s.args())
	if err != nil {
		return err
	}
	s.cmd, s.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReadyLocked(ctx); err != nil {
		s.killLocked()
		return fmt.Errorf("redistest: redis-server on %s did not start: %w\n%s", s.Addr(), err, s.logTail(20))
	}
	return nil
}

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "yes",
		// A replica's full sync would otherwise wait 5 s for more replicas.
		"--repl-diskless-sync-delay", "0",
	}
	if s.opts.AppendOnly {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		a = append(a, "--appendonly", "no")
	}
	policy := s.opts.MaxMemoryPolicy
	if s.opts.MaxMemory != "" {
		a = append(a, "--maxmemory", s.opts.MaxMemory)
		if policy == "" {
			policy = "noeviction"
		}
	}
	if policy != "" {
		a = append(a, "--maxmemory-policy", policy)
	}
	a = append(a, s.extra...)
	return append(a, s.opts.Args...)
}

// waitReadyLocked polls until the server answers PING and reports that it
// is not loading, or the process exits, or ctx ends. It probes with plain
// TCP connects until the port accepts: a go-redis pool whose dials keep
// failing backs off for a second, which would slow every start.
func (s *Server) waitReadyLocked(ctx context.Context) error {
	s.closeAdminLocked() // a fresh pool, with no dial failures behind it
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = s.readyLocked(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("process exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

func (s *Server) readyLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return err
	}
	conn.Close()
	c := s.adminLocked()
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return err
	}
	if infoField(info, "loading") != "0" || infoField(info, "async_loading") == "1" {
		return errors.New("still loading")
	}
	return nil
}

// terminateLocked shuts the process down with SIGTERM, then SIGKILL if it
// has not exited within stopTimeout.
func (s *Server) terminateLocked() error {
	if !s.runningLocked() {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.killLocked()
		return nil // it exited meanwhile
	}
	select {
	case <-s.done:
		// Reap forked children (BGSAVE, AOF rewrite) that a graceful
		// shutdown should have ended anyway.
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		return nil
	case <-time.After(stopTimeout):
		s.killLocked()
		return fmt.Errorf("redistest: redis-server on %s ignored SIGTERM for %v and was killed\n%s", s.Addr(), stopTimeout, s.logTail(20))
	}
}

func (s *Server) killLocked() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// adminLocked returns the harness's own client: no retries, short
// timeouts, so health checks answer quickly while a node is down.
func (s *Server) adminLocked() *redis.Client {
	if s.admin == nil {
		s.admin = redis.NewClient(adminOptions(s.Addr(), 4))
	}
	return s.admin
}

// adminOptions are the options of the harness's own clients: no retries,
// short timeouts, so health checks answer quickly while a node is down.
func adminOptions(addr string, pool int) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		DialerRetries:         1,
		DialerRetryTimeout:    10 * time.Millisecond,
		PoolSize:              pool,
	}
}

func (s *Server) adminClient() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adminLocked()
}

func (s *Server) closeAdminLocked() {
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
}

// cleanup is Start's and StartClusterT's test cleanup.
func (s *Server) cleanup(tb testing.TB) {
	if tb.Failed() {
		tb.Logf("redistest: log of redis-server on %s:\n%s", s.Addr(), s.logTail(30))
	}
	if err := s.Stop(); err != nil {
		tb.Error(err)
	}
}

// logTail returns the last n lines of the server's log and anything it
// printed before opening the log (such as a bad argument).
func (s *Server) logTail(n int) string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "redis.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", name, tail(string(data), n))
	}
	if b.Len() == 0 {
		return "(no log output)"
	}
	return b.String()
}

// infoField returns the value of one "field:value" line of INFO output.
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// requireBinaries fails the test with the install hint when a binary is
// missing.
func requireBinaries(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			tb.Fatalf("%s not found: run `make test`, which installs it", name)
		}
	}
}

// RunWithServer is a TestMain for packages whose tests share one server:
// it starts a server with opts, hands it to use, runs the tests and stops
// the server. It returns the exit code for os.Exit.
func RunWithServer(m *testing.M, opts Options, use func(*Server)) int {
	srv, err := StartServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()
	use(srv)
	return m.Run()
}
