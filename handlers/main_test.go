package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// shared is the redis-server every test of the package uses, each on its own prefix.
var shared *redistest.Server

// redisAddr is shared's address, for the example (any Redis 7 will do).
var redisAddr string

func TestMain(m *testing.M) {
	os.Exit(redistest.RunWithServer(m, redistest.Options{}, func(s *redistest.Server) {
		shared, redisAddr = s, s.Addr()
	}))
}

const (
	chromeMac  = sessiontest.ChromeMac
	cookieName = middleware.DefaultCookieName
)

// users is the app's credential check: alice and bob, password "password".
type users struct {
	ids   map[string]uuid.UUID
	calls atomic.Int64
	err   atomic.Pointer[error] // when set, Login fails with it
}

func (u *users) login(r *http.Request) (uuid.UUID, error) {
	u.calls.Add(1)
	if e := u.err.Load(); e != nil {
		return uuid.Nil, *e
	}
	name, pass, err := handlers.Credentials(r)
	if err != nil {
		return uuid.Nil, err
	}
	id, ok := u.ids[name]
	if !ok || pass != "password" {
		return uuid.Nil, handlers.ErrBadCredentials
	}
	return id, nil
}

// setup varies a fixture.
type setup struct {
	server  *redistest.Server // default: shared
	addr    string            // Redis's address when not server's (a proxy's)
	mopts   []sessionkit.Option
	session func(*middleware.Options) // the app's Authenticator
	options func(*handlers.Options)
	plain   bool // plain HTTP instead of TLS
	cached  bool // the Manager over the verified-session cache, on the fixture's clock
}

// fixture is the handlers mounted on a TLS server, over a Manager built
// by sessiontest (its clock and command counter kept here by their names).
type fixture struct {
	m          *sessionkit.Manager
	clock      *redistest.Clock
	calls      *redistest.Counter
	users      *users
	h          *handlers.Handler
	srv        *httptest.Server
	alice, bob uuid.UUID
	logs       *logtest.Buffer // the Manager's logger
	auth       *middleware.Authenticator
	mux        *http.ServeMux // h mounted, nothing else
}

func newFixture(t *testing.T, s setup) *fixture {
	t.Helper()
	if s.server == nil {
		s.server = shared
	}
	f := &fixture{alice: uuid.New(), bob: uuid.New(), logs: &logtest.Buffer{}}
	tiers := sessionkit.Tiers{"plus": 10, "free": 1}.Limit(func(_ context.Context, id uuid.UUID) (string, error) {
		if id == f.bob {
			return "free", nil
		}
		return "plus", nil
	})
	mopts := append([]sessionkit.Option{sessionkit.WithLimit(tiers), sessionkit.WithLogger(f.logs.Logger())}, s.mopts...)
	o := sessiontest.Options{Addr: s.server.Addr()}
	if s.addr != "" {
		o.Addr = s.addr
	}
	if s.cached {
		o.Clock = redistest.NewClock()
		o.Cache = &store.CacheOptions{Clock: o.Clock.Now}
	}
	base := sessiontest.New(t, o, mopts...)
	f.m, f.clock, f.calls = base.M, base.Clock, base.Calls
	var err error
	f.users = &users{ids: map[string]uuid.UUID{"alice": f.alice, "bob": f.bob}}
	var sopts middleware.Options
	if s.session != nil {
		s.session(&sopts)
	}
	if f.auth, err = middleware.NewAuthenticator(f.m, sopts); err != nil {
		t.Fatal(err)
	}
	opts := handlers.Options{Login: f.users.login}
	if s.options != nil {
		s.options(&opts)
	}
	if f.h, err = handlers.New(f.auth, opts); err != nil {
		t.Fatal(err)
	}
	f.mux = http.NewServeMux()
	f.h.Mount(f.mux)
	if s.plain {
		f.srv = httptest.NewServer(f.mux)
	} else {
		f.srv = httptest.NewTLSServer(f.mux)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// client is one device: a browser-like client with its own cookie jar.
func (f *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Transport:     f.srv.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// response is a read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
	resp   *http.Response
}

func (r response) problem(t *testing.T) middleware.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type: got %q, want application/problem+json (status %d, body %q)", ct, r.status, r.body)
	}
	var p middleware.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem %q: %v", r.body, err)
	}
	if p.Status != r.status {
		t.Errorf("problem status: got %d, want %d", p.Status, r.status)
	}
	return p
}

// wantProblem fails the test unless r is the problem status/reason.
func (r response) wantProblem(t *testing.T, status int, reason string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d (%s), want %d", r.status, r.body, status)
	}
	if p := r.problem(t); p.Reason != reason {
		t.Errorf("reason: got %q, want %q", p.Reason, reason)
	}
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// sessionCookie returns the Set-Cookie for the session cookie, if any.
func (r response) sessionCookie() *http.Cookie {
	for _, c := range r.resp.Cookies() {
		if c.Name == cookieName || c.Name == middleware.DevCookieName {
			return c
		}
	}
	return nil
}

// do sends a request from c (nil: a client without cookies) with extra headers.
func (f *fixture) do(t *testing.T, c *http.Client, method, path string, body io.Reader, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c == nil {
		c = &http.Client{Transport: f.srv.Client().Transport}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, resp: resp}
}

// withToken is a header carrying token as the session cookie.
func withToken(token string) http.Header {
	return http.Header{"Cookie": {cookieName + "=" + token}}
}

var jsonType = http.Header{"Content-Type": {"application/json"}}

// login signs user in from c and returns the session and its token.
func (f *fixture) login(t *testing.T, c *http.Client, user string) (handlers.SessionJSON, string) {
	t.Helper()
	// A later login is later: the limit evicts the session that expires
	// first, and sessions created in the same millisecond would tie.
	f.clock.Advance(time.Millisecond)
	r := f.do(t, c, "POST", "/sessions", strings.NewReader(`{"username":"`+user+`","password":"password"}`),
		http.Header{"Content-Type": {"application/json"}, "User-Agent": {chromeMac}})
	if r.status != http.StatusCreated {
		t.Fatalf("login %s: got %d (%s), want 201", user, r.status, r.body)
	}
	var s handlers.SessionJSON
	r.decode(t, &s)
	ck := r.sessionCookie()
	if ck == nil {
		t.Fatalf("login %s: no session cookie", user)
	}
	return s, ck.Value
}

// countSessions returns how many sessions, in any state, the user has.
func (f *fixture) countSessions(t *testing.T, user uuid.UUID) int {
	t.Helper()
	list, err := f.m.ListUserSessions(context.Background(), user, sessionkit.ListOptions{IncludeRevoked: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}
