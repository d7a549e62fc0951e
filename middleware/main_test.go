package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
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
	os.Exit(redistest.RunWithServer(m, redistest.Options{}, func(s *redistest.Server) { shared = s }))
}

const chromeMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// fixture is a Manager on its own key prefix of a server, with a command counter.
type fixture struct {
	m      *sessionkit.Manager
	calls  *redistest.Counter
	clock  *redistest.Clock
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
	calls := &redistest.Counter{}
	rdb.AddHook(calls)
	st, err := store.NewRedis(rdb, store.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	clock := redistest.NewClock()
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
