package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
)

// Deadlines for the slow-Redis test. The margin is generous on purpose: the
// machine running the tests is shared and noisy; what matters is that the
// caller gets its answer near its deadline, not after Redis's delay.
const (
	slowDeadline = time.Second
	slowDelay    = 3 * time.Second
	slowMargin   = time.Second
)

// TestRedisSlowerThanDeadline puts a latency proxy between the Manager and
// Redis and makes Redis answer later than the request deadline. Every call
// must fail with ErrUnavailable, and every HTTP request with 503 and no
// cookie, within its deadline plus a margin; the Manager must work again
// once Redis is fast, and no goroutine may be left behind.
func TestRedisSlowerThanDeadline(t *testing.T) {
	srv := sharedServer(t)
	// Everything this test starts is stopped before the count after.
	before := stableGoroutines()

	proxy := redistest.NewProxy(t, srv.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true})
	f := newFixture(t, rdb)
	web := newApp(t, f, appOptions{deadline: slowDeadline})
	user := uuid.New()
	var tokens []string
	for range 4 {
		tokens = append(tokens, f.mustLogin(t, user).Token)
	}

	proxy.SetDelay(slowDelay)
	type result struct {
		op      string
		err     error
		elapsed time.Duration
	}
	results := make(chan result, 64)
	var wg sync.WaitGroup
	timed := func(op string, fn func(ctx context.Context) error) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), slowDeadline)
			defer cancel()
			start := time.Now()
			err := fn(ctx)
			results <- result{op, err, time.Since(start)}
		})
	}
	for range 3 {
		for _, tok := range tokens {
			timed("authenticate", func(ctx context.Context) error {
				_, err := f.M.Authenticate(ctx, tok, testAddr)
				return err
			})
		}
		timed("login", func(ctx context.Context) error {
			_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: testIP, UserAgent: testUA})
			return err
		})
		timed("list", func(ctx context.Context) error {
			_, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{})
			return err
		})
		timed("revoke_all", func(ctx context.Context) error {
			_, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: sessionkit.ReasonLogoutAll})
			return err
		})
	}
	// Through the HTTP layer, with the app's per-request deadline: 503 and no cookie.
	httpTimed := func(op string, send func() response) {
		wg.Go(func() {
			start := time.Now()
			r := send()
			var err error
			if r.status != http.StatusServiceUnavailable || r.reason() != middleware.ReasonStoreUnavailable || len(r.cookies) > 0 {
				err = fmt.Errorf("got %d %q with %d cookies, want 503 store_unavailable without", r.status, r.reason(), len(r.cookies))
			} else {
				err = sessionkit.ErrUnavailable
			}
			results <- result{op, err, time.Since(start)}
		})
	}
	for range 2 {
		httpTimed("GET /app/data", func() response { return web.mustDo(t, http.MethodGet, "/app/data", tokens[1], "", nil) })
		httpTimed("POST /sessions", func() response { return web.signIn(t, "alice", "") })
	}
	wg.Wait()
	close(results)
	n := 0
	for r := range results {
		n++
		if !errors.Is(r.err, sessionkit.ErrUnavailable) {
			t.Errorf("%s with Redis slower than the deadline: got %v, want ErrUnavailable", r.op, r.err)
		}
		if limit := slowDeadline + slowMargin; r.elapsed > limit {
			t.Errorf("%s answered after %v, want within %v (deadline %v)", r.op, r.elapsed, limit, slowDeadline)
		}
	}
	t.Logf("%d calls against a Redis %v slower than their %v deadline", n, slowDelay, slowDeadline)

	proxy.SetDelay(0)
	// The revocations sent while slow may still land; either way the
	// Manager must answer cleanly again.
	if err := redistest.WaitFor(10*time.Second, func() error {
		err := f.auth(tokens[0])
		if err == nil || errors.Is(err, sessionkit.ErrRevoked) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatalf("after Redis is fast again: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.M.Close(ctx); err != nil {
		t.Fatalf("Manager.Close: %v", err)
	}
	web.srv.Close()
	rdb.Close()
	proxy.Close()
	if after := settledGoroutines(before, 10*time.Second); after > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: got %d after, want at most %d as before\n%s", after, before, firstLines(string(buf), 200))
	}
}

// settledGoroutines waits, up to timeout, for the number of goroutines to
// fall to at most want, and returns the last count.
func settledGoroutines(want int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// stableGoroutines returns the number of goroutines once two counts 50 ms
// apart agree (or after a second).
func stableGoroutines() int {
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
