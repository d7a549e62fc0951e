package handlers_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/middleware"
)

func TestNewNeedsAnAuthenticator(t *testing.T) {
	f := newFixture(t, setup{})
	_, err := handlers.New(nil, handlers.Options{Login: f.users.login})
	if !errors.Is(err, sessionkit.ErrInvalid) {
		t.Fatalf("got %v, want an error wrapping ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "Authenticator") {
		t.Errorf("error: got %q, want it to name the Authenticator", err)
	}
}

func TestOptionalAuthenticatorStillRequiresASession(t *testing.T) {
	f := newFixture(t, setup{session: func(o *middleware.Options) { o.Optional = true }})
	s, tok := f.login(t, f.client(t), "alice")
	paths := []struct{ method, path string }{
		{"GET", "/sessions"},
		{"GET", "/sessions/current"},
		{"GET", "/sessions/events"},
		{"GET", "/sessions/" + s.ID.String()},
		{"DELETE", "/sessions/" + s.ID.String()},
		{"DELETE", "/sessions"},
	}
	for _, tc := range paths {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			f.do(t, nil, tc.method, tc.path, nil, nil).wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
			f.do(t, nil, tc.method, tc.path, nil, withToken(tok[:37]+strings.Repeat("A", 43))).wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
		})
	}
	if n := f.countSessions(t, f.alice); n != 1 {
		t.Errorf("alice's sessions: got %d, want 1 (nothing revoked)", n)
	}

	// Behind the app's optional middleware of the same Authenticator, a
	// route needing a session costs what it costs alone: no second
	// authentication.
	stacked := httptest.NewTLSServer(f.auth.Middleware(f.mux))
	t.Cleanup(stacked.Close)
	trips := func(srv *httptest.Server) int64 {
		t.Helper()
		var n int64
		for range 2 { // the second: nothing left to write
			f.calls.Reset()
			req, _ := http.NewRequest("GET", srv.URL+"/sessions/current", nil)
			req.Header = withToken(tok)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /sessions/current: got %d, want 200", resp.StatusCode)
			}
			n = f.calls.RoundTrips()
		}
		return n
	}
	alone, both := trips(f.srv), trips(stacked)
	if both != alone || alone == 0 {
		t.Errorf("redis round trips behind the app's middleware: got %d, want %d (as without it)", both, alone)
	}
	req, _ := http.NewRequest("GET", stacked.URL+"/sessions", nil)
	resp, err := stacked.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /sessions behind the optional middleware without a cookie: got %d, want 401", resp.StatusCode)
	}
}

func TestLoginCookieFollowsTheAuthenticator(t *testing.T) {
	f := newFixture(t, setup{session: func(o *middleware.Options) { o.CookieName = "__Host-app" }})
	c := f.client(t)
	r := f.do(t, c, "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType)
	if r.status != http.StatusCreated {
		t.Fatalf("login: got %d (%s), want 201", r.status, r.body)
	}
	cookies := r.resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Host-app" || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("cookies: got %+v, want one __Host-app, Secure, HttpOnly", cookies)
	}
	if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("GET /sessions/current with __Host-app: got %d, want 200", r.status)
	}
	if r := f.do(t, c, "DELETE", "/sessions/current", nil, nil); r.status != http.StatusNoContent || r.resp.Cookies()[0].Name != "__Host-app" {
		t.Errorf("logout: got %d, cookies %+v; want 204 clearing __Host-app", r.status, r.resp.Cookies())
	}
}

func TestLogsReachTheManagerLogger(t *testing.T) {
	var fallback logtest.Buffer
	def := slog.Default()
	slog.SetDefault(fallback.Logger())
	t.Cleanup(func() { slog.SetDefault(def) })

	f := newFixture(t, setup{plain: true, session: func(o *middleware.Options) { o.InsecureDevCookies = true }})
	laptop, phone := f.client(t), f.client(t)
	f.login(t, laptop, "alice")
	f.login(t, phone, "alice")
	f.do(t, nil, "GET", "/sessions", nil, nil).wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
	if r := f.do(t, laptop, "DELETE", "/sessions", nil, nil); r.status != http.StatusOK {
		t.Fatalf("sign out everywhere else: got %d (%s), want 200", r.status, r.body)
	}
	if r := f.do(t, laptop, "DELETE", "/sessions/current", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("logout: got %d (%s), want 204", r.status, r.body)
	}
	for _, tc := range []struct {
		line string
		n    int
	}{
		{"InsecureDevCookies is on", 1}, // the Authenticator
		{"sessionkit: signed in", 2},    // the login route
		{"request refused", 1},          // the routes' Require, at debug
		{"signed out everywhere", 1},    // DELETE /sessions
		{"sessionkit: signed out\"", 1}, // DELETE /sessions/current
	} {
		if got := f.logs.Count(tc.line); got != tc.n {
			t.Errorf("lines with %q in the Manager's logger: got %d, want %d", tc.line, got, tc.n)
		}
	}
	if t.Failed() {
		t.Logf("the Manager's logger:\n%s", f.logs.String())
	}
	if n := fallback.Count("sessionkit:"); n != 0 {
		t.Errorf("lines in slog.Default(): got %d, want 0\n%s", n, fallback.String())
	}
}
