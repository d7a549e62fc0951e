package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	ctx := ctxT(t, 10*time.Second)
	rdb := srv.Client(t)
	key := redistest.Prefix(t) + "k"

	if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want \"v\", nil", got, err)
	}
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("Addr() = %q, want a 127.0.0.1 address", srv.Addr())
	}
	if save, err := rdb.ConfigGet(ctx, "save").Result(); err != nil || save["save"] != "" {
		t.Errorf("CONFIG GET save = %v, %v; want empty (no RDB snapshots)", save, err)
	}

	dir := srv.Dir()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if srv.Running() {
		t.Error("Running() = true after Stop, want false")
	}
	if err := rdb.Ping(ctxT(t, 300*time.Millisecond)).Err(); err == nil {
		t.Error("PING after Stop succeeded, want an error")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(Dir()) after Stop: %v, want not exist", err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
	if err := srv.Restart(); err == nil {
		t.Error("Restart after Stop succeeded, want an error")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{MaxMemory: "1mb", Args: []string{"--hz", "50"}})
	ctx := ctxT(t, 10*time.Second)
	rdb := srv.Client(t)

	for param, want := range map[string]string{
		"maxmemory":        "1048576",
		"maxmemory-policy": "noeviction",
		"appendonly":       "no",
		"hz":               "50",
		"bind":             "127.0.0.1",
		"protected-mode":   "yes",
	} {
		got, err := rdb.ConfigGet(ctx, param).Result()
		if err != nil || got[param] != want {
			t.Errorf("CONFIG GET %s = %v, %v; want %q", param, got, err, want)
		}
	}

	// noeviction: filling the 1 MB makes writes fail with OOM.
	prefix := redistest.Prefix(t)
	big := strings.Repeat("x", 64<<10)
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		err = rdb.Set(ctx, prefix+string(rune('a'+i%26))+strings.Repeat("k", i), big, 0).Err()
	}
	if err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Errorf("writing 4 MB into 1 MB: last error %v, want OOM", err)
	}
}

func TestStartServerReportsLog(t *testing.T) {
	t.Parallel()
	srv, err := redistest.StartServer(redistest.Options{Args: []string{"--no-such-directive", "1"}})
	if err == nil {
		srv.Stop()
		t.Fatal("StartServer with a bad argument succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "no-such-directive") {
		t.Errorf("error %q does not include the log line naming the bad directive", err)
	}
}

func TestRestartWithAOFKeepsKeyAndTTL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	ctx := ctxT(t, 20*time.Second)
	rdb := srv.Client(t)
	prefix := redistest.Prefix(t)

	if err := rdb.Set(ctx, prefix+"graceful", "1", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	checkKeyAndTTL(ctx, t, rdb, prefix+"graceful")

	// appendfsync always: an acknowledged write survives a crash too.
	if err := rdb.Set(ctx, prefix+"crash", "1", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart after Kill: %v", err)
	}
	checkKeyAndTTL(ctx, t, rdb, prefix+"crash")
}

func checkKeyAndTTL(ctx context.Context, t *testing.T, rdb *redis.Client, key string) {
	t.Helper()
	if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "1" {
		t.Errorf("GET %s after restart = %q, %v; want \"1\"", key, got, err)
	}
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL %s after restart = %v, %v; want in (0, 1m]", key, ttl, err)
	}
}

func TestKillThenRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	ctx := ctxT(t, 20*time.Second)
	rdb := srv.Client(t)
	key := redistest.Prefix(t) + "k"
	addr, dir := srv.Addr(), srv.Dir()

	if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if srv.Running() {
		t.Error("Running() = true after Kill, want false")
	}
	if err := rdb.Ping(ctxT(t, 300*time.Millisecond)).Err(); err == nil {
		t.Error("PING after Kill succeeded, want an error")
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if srv.Addr() != addr || srv.Dir() != dir {
		t.Errorf("after Restart Addr, Dir = %s, %s; want %s, %s", srv.Addr(), srv.Dir(), addr, dir)
	}
	// The same client reconnects; without persistence the data is gone.
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after Kill and Restart without AOF = %d, %v; want 0", n, err)
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	a, b := redistest.Prefix(t), redistest.Prefix(t)
	if a == b {
		t.Errorf("two prefixes are both %q, want different", a)
	}
	if !strings.HasPrefix(a, "t:TestPrefix:") || !strings.HasSuffix(a, ":") {
		t.Errorf("Prefix = %q, want t:TestPrefix:<random>:", a)
	}
	t.Run("odd {name} with spaces and a very long tail to be cut", func(t *testing.T) {
		p := redistest.Prefix(t)
		if strings.ContainsAny(p, "{} ") {
			t.Errorf("Prefix = %q, want no braces or spaces", p)
		}
		if len(p) > 48 {
			t.Errorf("len(Prefix) = %d (%q), want at most 48", len(p), p)
		}
		if !strings.Contains(p, "be_cut:") {
			t.Errorf("Prefix = %q, want the end of the subtest name kept", p)
		}
	})
}

// fatalTB records Fatal calls and stops the caller by panicking, as a real
// t.Fatal stops the test goroutine.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(fatalStop{})
}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

// Not parallel: it empties PATH, which parallel tests must not see.
func TestMissingRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	const hint = "redis-server not found: run `make test`, which installs it"

	if _, err := redistest.StartServer(redistest.Options{}); !errors.Is(err, redistest.ErrNoRedisServer) || err.Error() != hint {
		t.Errorf("StartServer without redis-server: %v, want %q", err, hint)
	}
	if _, err := redistest.StartCluster(redistest.ClusterOptions{}); err == nil || !strings.Contains(err.Error(), "make test") {
		t.Errorf("StartCluster without redis: %v, want a hint to run make test", err)
	}

	tb := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatalStop); !ok {
					panic(r)
				}
			}
		}()
		redistest.Start(tb, redistest.Options{})
	}()
	if tb.msg != hint {
		t.Errorf("Start without redis-server failed the test with %q, want %q", tb.msg, hint)
	}
}
