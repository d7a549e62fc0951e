package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// shared is the redis-server every test of the package uses, each on its own prefix.
var shared *redistest.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	srv, err := redistest.StartServer(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()
	shared = srv
	return m.Run()
}

const chromeMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// counter is a go-redis hook counting the commands a client sends, to prove
// that a refusal made no Redis call, the round trips (a pipeline is one),
// and the scripts run (the only commands of the hot path that can write).
type counter struct{ n, trips, scripts atomic.Int64 }

func (c *counter) reset() { c.n.Store(0); c.trips.Store(0); c.scripts.Store(0) }

func (c *counter) count(cmds ...redis.Cmder) {
	c.n.Add(int64(len(cmds)))
	for _, cmd := range cmds {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.scripts.Add(1)
		}
	}
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.trips.Add(1)
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.trips.Add(1)
		c.count(cmds...)
		return next(ctx, cmds)
	}
}

// fakeClock is a settable clock near real time, so Redis TTLs stay meaningful.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a Manager on its own key prefix of a server, with a command counter.
type fixture struct {
	m      *sessionkit.Manager
	calls  *counter
	clock  *fakeClock
	rdb    *redis.Client
	prefix string
}

func newFixture(t testing.TB, opts ...sessionkit.Option) *fixture {
	t.Helper()
	return newFixtureOn(t, shared, opts...)
}

func newFixtureOn(t testing.TB, srv *redistest.Server, opts ...sessionkit.Option) *fixture {
	t.Helper()
	return newFixtureAt(t, srv.Addr(), redistest.Prefix(t), opts...)
}

// newFixtureAt is a fixture on the Redis at addr with the given key prefix:
// two fixtures with one prefix share their sessions.
func newFixtureAt(t testing.TB, addr, prefix string, opts ...sessionkit.Option) *fixture {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr: addr, ContextTimeoutEnabled: true,
		MaxRetries: 1, DialTimeout: time.Second, DialerRetries: 1, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	calls := &counter{}
	rdb.AddHook(calls)
	st, err := store.NewRedis(rdb, store.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.UnixMilli(time.Now().UnixMilli())}
	m, err := sessionkit.New(st, append([]sessionkit.Option{sessionkit.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return &fixture{m: m, calls: calls, clock: clock, rdb: rdb, prefix: prefix}
}

// login creates a session for user from ip.
func (f *fixture) login(t testing.TB, user uuid.UUID, ip string) sessionkit.CreateSessionResult {
	t.Helper()
	res, err := f.m.CreateSession(context.Background(), sessionkit.CreateSession{UserID: user, IPAddress: ip, UserAgent: chromeMac})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return res
}

// session reads a session back from the store.
func (f *fixture) session(t testing.TB, id uuid.UUID) sessionkit.Session {
	t.Helper()
	s, err := f.m.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

func (f *fixture) auth(t testing.TB, opts middleware.Options) *middleware.Authenticator {
	t.Helper()
	a, err := middleware.NewAuthenticator(f.m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// seen records what the handler behind the middleware observed.
type seen struct {
	called  bool
	session sessionkit.Session
	ok      bool
	change  middleware.IPChange
	changed bool
}

// probe returns a handler that records what it sees and answers 200.
func probe(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.session, s.ok = sessionkit.FromContext(r.Context())
		s.change, s.changed = middleware.IPChanged(r.Context())
		w.WriteHeader(http.StatusOK)
	})
}

// request builds a GET with the given session cookie value (none when empty and !withCookie).
func request(cookieHeader string, remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/accounts", nil)
	if cookieHeader != "" {
		r.Header.Set("Cookie", cookieHeader)
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	return r
}

// problem decodes a problem+json response, failing the test when it is not one.
func problem(t testing.TB, rec *httptest.ResponseRecorder) middleware.Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type: got %q, want application/problem+json (body %q)", ct, rec.Body.String())
	}
	var p middleware.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body.String(), err)
	}
	if p.Status != rec.Code {
		t.Errorf("problem status: got %d, want %d (the response status)", p.Status, rec.Code)
	}
	return p
}

// logBuffer is a concurrency-safe log sink for slog.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
