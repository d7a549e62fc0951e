package middleware_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
)

// shared is the redis-server every test of the package uses, each on its own prefix.
var shared *redistest.Server

// redisAddr is shared's address, for the examples (any Redis 7 will do).
var redisAddr string

func TestMain(m *testing.M) {
	os.Exit(redistest.RunWithServer(m, redistest.Options{}, func(s *redistest.Server) {
		shared, redisAddr = s, s.Addr()
	}))
}

// fixture is a Manager on its own key prefix of a server, with a command
// counter and a clock (sessiontest), and the package's own helpers.
type fixture struct{ *sessiontest.Fixture }

// newFixture is a fixture on the shared server.
func newFixture(t testing.TB, opts ...sessionkit.Option) *fixture {
	t.Helper()
	return newFixtureWith(t, sessiontest.Options{Addr: shared.Addr()}, opts...)
}

// newFixtureWith is a fixture as o says: on another server, or on
// another fixture's prefix to share its sessions.
func newFixtureWith(t testing.TB, o sessiontest.Options, opts ...sessionkit.Option) *fixture {
	t.Helper()
	return &fixture{sessiontest.New(t, o, opts...)}
}

func (f *fixture) auth(t testing.TB, opts middleware.Options) *middleware.Authenticator {
	t.Helper()
	a, err := middleware.NewAuthenticator(f.M, opts)
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
