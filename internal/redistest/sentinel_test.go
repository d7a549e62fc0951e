package redistest_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

func TestStartSentinel(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	ctx := ctxT(t, 30*time.Second)
	nodes := s.Nodes()
	if s.MasterName() != "sessionkit" || len(s.SentinelAddrs()) != 3 || len(nodes) != 2 {
		t.Fatalf("MasterName, SentinelAddrs, Nodes = %q, %v, %d nodes; want \"sessionkit\", 3 sentinels, 2 nodes",
			s.MasterName(), s.SentinelAddrs(), len(nodes))
	}
	if s.Master() != nodes[0].Addr() {
		t.Errorf("Master() = %s, want the first node %s", s.Master(), nodes[0].Addr())
	}
	if role, err := nodes[1].Role(ctx); err != nil || role != "slave" {
		t.Errorf("second node's role = %q, %v; want slave", role, err)
	}

	// Through the failover client, and replicated.
	rdb := s.Client(t)
	key := redistest.Prefix(t) + "k"
	cn := rdb.Conn()
	defer cn.Close()
	if err := cn.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET through the failover client: %v", err)
	}
	if n, err := cn.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
	}
	if got, err := nodes[1].Client(t).Get(ctx, key).Result(); err != nil || got != "v" {
		t.Errorf("GET on the replica = %q, %v; want \"v\"", got, err)
	}

	addrs := append(s.SentinelAddrs(), nodes[0].Addr(), nodes[1].Addr())
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s accepts connections after Stop, want every process gone", a)
		}
	}
	for _, n := range nodes {
		if _, err := os.Stat(n.Dir()); err == nil {
			t.Errorf("node directory %s still exists after Stop", n.Dir())
		}
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
}

func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Sentinel failover takes several seconds; skipped with -short")
	}
	t.Parallel()
	s := redistest.StartSentinel(t, redistest.SentinelOptions{MasterName: "orders", DownAfter: 1500 * time.Millisecond})
	ctx := ctxT(t, 50*time.Second)
	rdb := s.Client(t)
	key := redistest.Prefix(t) + "k"
	cn := rdb.Conn()
	if err := cn.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if n, err := cn.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
	}
	cn.Close()

	old := s.Master()
	start := time.Now()
	killed, err := s.KillMaster()
	if err != nil {
		t.Fatalf("KillMaster: %v", err)
	}
	if killed.Addr() != old || killed.Running() {
		t.Errorf("KillMaster killed %s (running %t), want %s stopped", killed.Addr(), killed.Running(), old)
	}
	promoted, err := s.WaitFailover(30 * time.Second)
	if err != nil {
		t.Fatalf("WaitFailover: %v", err)
	}
	t.Logf("failover from %s to %s took %v", old, promoted, time.Since(start).Round(time.Millisecond))
	if promoted != s.Nodes()[1].Addr() || s.Master() != promoted {
		t.Errorf("WaitFailover = %s, Master() = %s; want both the replica %s", promoted, s.Master(), s.Nodes()[1].Addr())
	}

	// The client follows: the write replicated before the kill is there,
	// and the new master takes writes.
	if err := redistest.WaitFor(15*time.Second, func() error {
		got, err := rdb.Get(ctx, key).Result()
		if err == nil && got != "v" {
			err = fmt.Errorf("GET = %q, want \"v\"", got)
		}
		return err
	}); err != nil {
		t.Fatalf("GET through the failover client after failover: %v", err)
	}
	if err := rdb.Set(ctx, key, "w", time.Minute).Err(); err != nil {
		t.Errorf("SET after failover: %v", err)
	}
}

// The name is written into the sentinels' configuration, so it is checked.
func TestStartSentinelRejectsBadName(t *testing.T) {
	t.Parallel()
	tb := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatalStop); !ok {
					panic(r)
				}
			}
		}()
		redistest.StartSentinel(tb, redistest.SentinelOptions{MasterName: "two words"})
	}()
	if !strings.Contains(tb.msg, "two words") {
		t.Errorf("StartSentinel with a bad name failed the test with %q, want the name rejected", tb.msg)
	}
}

// skipTB records Skip calls and stops the caller by panicking, as a real
// t.Skip stops the test goroutine.
type skipTB struct {
	testing.TB
	msg string
}

func (s *skipTB) Helper() {}
func (s *skipTB) Skipf(format string, args ...any) {
	s.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

// Not parallel: it empties PATH, which parallel tests must not see.
func TestStartSentinelSkipsWithoutBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	tb := &skipTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatalStop); !ok {
					panic(r)
				}
			}
		}()
		redistest.StartSentinel(tb, redistest.SentinelOptions{})
		t.Error("StartSentinel without binaries returned, want the test skipped")
	}()
	if !strings.Contains(tb.msg, "redis-sentinel not found") || !strings.Contains(tb.msg, "make test") {
		t.Errorf("StartSentinel without binaries skipped with %q, want the reason and the make test hint", tb.msg)
	}
}

func TestStartSentinelReportsLog(t *testing.T) {
	t.Parallel()
	tb := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatalStop); !ok {
					panic(r)
				}
			}
		}()
		redistest.StartSentinel(tb, redistest.SentinelOptions{Args: []string{"--no-such-directive", "1"}})
	}()
	if !strings.Contains(tb.msg, "no-such-directive") {
		t.Errorf("StartSentinel with a bad argument failed the test with %q, want the log line naming it", tb.msg)
	}
}
