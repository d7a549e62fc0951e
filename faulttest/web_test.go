package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// cookieName is the session cookie of the test app: the secure default.
const cookieName = middleware.DefaultCookieName

// app is a small web app over a fixture's Manager, as a user of sessionkit
// builds it: the /sessions routes mounted on a mux, and a protected route
// (GET /app/data) behind the session middleware, served over TLS. Every
// request and response it sees is kept for the security checks.
type app struct {
	f       *fixture
	srv     *httptest.Server
	handler http.Handler         // what srv serves, for requests no client would send
	users   map[string]uuid.UUID // username -> user id; password "password"

	mu        sync.Mutex
	record    bool // keep exchanges (newApp's apps do; fuzzing's do not)
	exchanges []exchange
}

// exchange is one request and its response, as the client saw them.
type exchange struct {
	method, url string
	status      int
	header      http.Header
	body        string
}

// appOptions varies an app.
type appOptions struct {
	// deadline, when set, bounds each request's context, as an app's
	// request timeout would (SECURITY-NOTES 20).
	deadline time.Duration
	// bearer accepts access tokens as "Authorization: Bearer"
	// (middleware.Options.AllowBearer); the Manager needs WithAccessTokens.
	bearer bool
}

func newApp(tb testing.TB, f *fixture, o appOptions) *app {
	tb.Helper()
	a, err := buildApp(f, o)
	if err != nil {
		tb.Fatal(err)
	}
	a.record = true
	a.srv = httptest.NewUnstartedServer(a.handler)
	a.srv.StartTLS()
	tb.Cleanup(a.srv.Close)
	return a
}

// buildApp returns the app's handler without a server, for in-process
// requests (serveRaw).
func buildApp(f *fixture, o appOptions) (*app, error) {
	a := &app{f: f, users: map[string]uuid.UUID{"alice": uuid.New(), "bob": uuid.New(), "mallory": uuid.New()}}
	auth, err := middleware.NewAuthenticator(f.M, middleware.Options{AllowBearer: o.bearer})
	if err != nil {
		return nil, err
	}
	h, err := handlers.New(auth, handlers.Options{Login: a.login})
	if err != nil {
		return nil, err
	}
	mw := auth.Middleware
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.Handle("GET /app/data", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessionkit.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session in the context", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user_id":%q,"session_id":%q}`, s.UserID, s.ID)
	})))
	a.handler = mux
	if o.deadline > 0 {
		a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), o.deadline)
			defer cancel()
			mux.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	return a, nil
}

// login is the app's credential check.
func (a *app) login(r *http.Request) (uuid.UUID, error) {
	name, pass, err := handlers.Credentials(r)
	if err != nil {
		return uuid.Nil, err
	}
	id, ok := a.users[name]
	if !ok || pass != "password" {
		return uuid.Nil, handlers.ErrBadCredentials
	}
	return id, nil
}

// tokenPair is what the token routes hand a bearer client (POST
// /sessions/token, POST /sessions/refresh, and re-authentication of a
// bearer session).
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// response is what a request got back.
type response struct {
	status  int
	header  http.Header
	body    string
	cookies []*http.Cookie // Set-Cookie
}

// reason returns the problem's machine-readable reason, or "".
func (r response) reason() string {
	var p middleware.Problem
	if json.Unmarshal([]byte(r.body), &p) != nil {
		return ""
	}
	return p.Reason
}

// sessionCookie returns the Set-Cookie of the session cookie, or nil.
func (r response) sessionCookie() *http.Cookie {
	for _, c := range r.cookies {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

// do sends one request carrying token as the session cookie (none if
// empty) and extra headers, and returns the response. It returns an error
// only when the request could not be made.
func (a *app) do(method, path, token, body string, header http.Header) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", testUA)
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: token})
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(b), cookies: resp.Cookies()}
	a.keep(exchange{method: method, url: req.URL.String(), status: r.status, header: resp.Header.Clone(), body: r.body})
	return r, nil
}

// serveRaw serves req in process, for requests a Go client refuses to send
// (a NUL byte in a header, invalid UTF-8), as a hand-written client could.
func (a *app) serveRaw(req *http.Request) response {
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, req)
	res := w.Result()
	r := response{status: res.StatusCode, header: res.Header, body: w.Body.String(), cookies: res.Cookies()}
	a.keep(exchange{method: req.Method, url: req.URL.String(), status: r.status, header: res.Header.Clone(), body: r.body})
	return r
}

// keep records an exchange when the app records them, and notes the token
// of any session cookie it set, and any token pair its body hands out,
// for the log check.
func (a *app) keep(e exchange) {
	for _, v := range e.header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(v); err == nil && c.Name == cookieName && c.Value != "" {
			noteToken(c.Value)
		}
	}
	if strings.Contains(e.body, `"refresh_token"`) {
		var p tokenPair
		if json.Unmarshal([]byte(e.body), &p) == nil {
			noteTokens(p.AccessToken, p.RefreshToken)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.record {
		a.exchanges = append(a.exchanges, e)
	}
}

// authHTTP sends GET /app/data with tok and maps the answer to the error
// Manager.Authenticate would give, so that HTTP requests can be judged by
// the same rules: 200 is nil; 503 store_unavailable without a cookie is
// ErrUnavailable; 401 session_revoked or session_limit_exceeded is
// ErrRevoked; 401 no_session is ErrNotFound; anything else is an error of
// its own kind.
func (a *app) authHTTP(tok string) error {
	r, err := a.do(http.MethodGet, "/app/data", tok, "", nil)
	switch {
	case err != nil:
		return fmt.Errorf("GET /app/data: %w", err)
	case r.status == http.StatusOK:
		return nil
	case r.status == http.StatusServiceUnavailable && r.reason() == middleware.ReasonStoreUnavailable && len(r.cookies) == 0:
		return fmt.Errorf("%w: GET /app/data: 503", sessionkit.ErrUnavailable)
	case r.status == http.StatusUnauthorized && (r.reason() == middleware.ReasonSessionRevoked || r.reason() == middleware.ReasonSessionLimitExceeded):
		return fmt.Errorf("%w: GET /app/data: 401 %s", sessionkit.ErrRevoked, r.reason())
	case r.status == http.StatusUnauthorized && r.reason() == middleware.ReasonNoSession:
		return fmt.Errorf("%w: GET /app/data: 401 no_session", sessionkit.ErrNotFound)
	}
	return fmt.Errorf("GET /app/data: unexpected %d %q with %d cookies", r.status, r.reason(), len(r.cookies))
}

// mustDo is do that fails the test when the request cannot be made.
func (a *app) mustDo(tb testing.TB, method, path, token, body string, header http.Header) response {
	tb.Helper()
	r, err := a.do(method, path, token, body, header)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// signIn logs username in through POST /sessions, carrying token (may be
// empty), and returns the response.
func (a *app) signIn(tb testing.TB, username, token string) response {
	tb.Helper()
	return a.mustDo(tb, http.MethodPost, "/sessions", token, fmt.Sprintf(`{"username":%q,"password":"password"}`, username), nil)
}

// mustSignIn logs username in and returns the new session's token.
func (a *app) mustSignIn(tb testing.TB, username string) string {
	tb.Helper()
	r := a.signIn(tb, username, "")
	c := r.sessionCookie()
	if r.status != http.StatusCreated || c == nil || c.Value == "" {
		tb.Fatalf("login of %s: got status %d, cookie %v, body %s; want 201 with a cookie", username, r.status, c, r.body)
	}
	return c.Value
}
