package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

func TestLoginSetsTheCookieOnly(t *testing.T) {
	f := newFixture(t, setup{})
	c := f.client(t)
	r := f.do(t, c, "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password","remember":true}`),
		http.Header{"Content-Type": {"application/json; charset=utf-8"}, "User-Agent": {chromeMac}})
	if r.status != http.StatusCreated {
		t.Fatalf("got %d (%s), want 201", r.status, r.body)
	}
	var s handlers.SessionJSON
	r.decode(t, &s)
	if s.UserID != f.alice || !s.IsCurrent || s.IPAddress == nil || *s.IPAddress != "127.0.0.1" || s.UserAgent == nil || *s.UserAgent != chromeMac {
		t.Errorf("session: got user %s current %v ip %v ua %v; want alice, current, 127.0.0.1, the UA", s.UserID, s.IsCurrent, s.IPAddress, s.UserAgent)
	}
	if got, want := r.header.Get("Location"), "/sessions/"+s.ID.String(); got != want {
		t.Errorf("Location: got %q, want %q", got, want)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	ck := r.sessionCookie()
	if ck == nil {
		t.Fatal("no session cookie")
	}
	wantMaxAge := int((30 * 24 * time.Hour).Seconds())
	if ck.Name != "__Host-session" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode ||
		ck.Path != "/" || ck.Domain != "" || ck.MaxAge != wantMaxAge {
		t.Errorf("cookie: got %+v, want __Host-session, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age %d", ck, wantMaxAge)
	}
	if strings.Contains(string(r.body), ck.Value) || strings.Contains(string(r.body), ck.Value[37:]) {
		t.Error("the token is in the body")
	}
	if strings.Contains(r.header.Get("Location"), ck.Value[37:]) {
		t.Error("the token is in the Location header")
	}
	if strings.Contains(f.logs.String(), ck.Value[37:]) {
		t.Error("the token is in the log")
	}
	// The cookie works.
	if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("GET /sessions/current: got %d, want 200", r.status)
	}
}

func TestLoginWithAForm(t *testing.T) {
	f := newFixture(t, setup{})
	var extra string
	f.h, _ = handlers.New(f.auth, handlers.Options{Login: func(r *http.Request) (uuid.UUID, error) {
		extra = r.PostFormValue("otp")
		return f.users.login(r)
	}})
	form := url.Values{"username": {"bob"}, "password": {"password"}, "otp": {"123456"}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/sessions?username=mallory", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("got %d (%s), want 201", rec.Code, rec.Body)
	}
	if extra != "123456" {
		t.Errorf("other form field: got %q, want 123456", extra)
	}
	if n := f.countSessions(t, f.bob); n != 1 {
		t.Errorf("bob's sessions: got %d, want 1", n)
	}
}

func TestLoginRefusals(t *testing.T) {
	f := newFixture(t, setup{})
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	cases := []struct {
		name       string
		header     http.Header
		body       string
		loginErr   error
		status     int
		reason     string
		loginCalls int64
	}{
		{"malformed JSON", jsonType, `{"username":"alice",`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"JSON array", jsonType, `["alice","password"]`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"JSON null", jsonType, `null`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"wrong types", jsonType, `{"username":1,"password":true}`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"trailing data", jsonType, `{"username":"alice","password":"password"} {}`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"missing password", jsonType, `{"username":"alice"}`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"missing username", jsonType, `{"password":"password"}`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"empty fields", jsonType, `{"username":"","password":""}`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"empty body", jsonType, ``, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"1 MB body", jsonType, `{"username":"alice","password":"` + strings.Repeat("p", 1<<20) + `"}`, nil, 413, middleware.ReasonRequestTooLarge, 0},
		{"form missing password", form, `username=alice`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"form with repeated fields", form, `username=alice&username=bob&password=password`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"malformed form", form, `username=%zz&password=password`, nil, 400, middleware.ReasonInvalidRequest, 0},
		{"text/plain", http.Header{"Content-Type": {"text/plain"}}, `{"username":"alice","password":"password"}`, nil, 415, middleware.ReasonUnsupportedMedia, 0},
		{"no content type", nil, `{"username":"alice","password":"password"}`, nil, 415, middleware.ReasonUnsupportedMedia, 0},
		{"wrong password", jsonType, `{"username":"alice","password":"hunter2"}`, nil, 401, middleware.ReasonInvalidCredentials, 1},
		{"unknown user", jsonType, `{"username":"mallory","password":"password"}`, nil, 401, middleware.ReasonInvalidCredentials, 1},
		{"wrapped bad credentials", jsonType, `{"username":"alice","password":"password"}`, fmt.Errorf("locked: %w", handlers.ErrBadCredentials), 401, middleware.ReasonInvalidCredentials, 1},
		{"credential store down", jsonType, `{"username":"alice","password":"password"}`, fmt.Errorf("users db: %w", context.DeadlineExceeded), 503, middleware.ReasonStoreUnavailable, 1},
		{"credential check failed", jsonType, `{"username":"alice","password":"password"}`, errors.New("users db: corrupt row"), 500, middleware.ReasonInternal, 1},
		// The app's own errors are the server's, whatever sentinel of
		// sessionkit they wrap: not a session's refusal.
		{"app error wrapping ErrNotFound", jsonType, `{"username":"alice","password":"password"}`, fmt.Errorf("users db: %w", sessionkit.ErrNotFound), 500, middleware.ReasonInternal, 1},
		{"app error wrapping ErrInvalid", jsonType, `{"username":"alice","password":"password"}`, fmt.Errorf("users db: %w", sessionkit.ErrInvalid), 500, middleware.ReasonInternal, 1},
		{"app error wrapping a revocation", jsonType, `{"username":"alice","password":"password"}`, fmt.Errorf("users db: %w", &sessionkit.RevokedError{Reason: "x"}), 500, middleware.ReasonInternal, 1},
		{"credential store unavailable", jsonType, `{"username":"alice","password":"password"}`, fmt.Errorf("users db: %w", sessionkit.ErrUnavailable), 503, middleware.ReasonStoreUnavailable, 1},
		// The app's own refusals, with a problem of their own.
		{"too many attempts", jsonType, `{"username":"alice","password":"password"}`,
			handlers.Refuse(middleware.NewProblem(http.StatusTooManyRequests, "too_many_attempts", "Try again in a minute.")), 429, "too_many_attempts", 1},
		{"wrapped refusal", jsonType, `{"username":"alice","password":"password"}`,
			fmt.Errorf("lockout: %w", handlers.Refuse(middleware.NewProblem(http.StatusForbidden, "account_locked", ""))), 403, "account_locked", 1},
		{"refusal with a 5xx", jsonType, `{"username":"alice","password":"password"}`,
			handlers.Refuse(middleware.NewProblem(http.StatusBadGateway, "upstream", "")), 500, middleware.ReasonInternal, 1},
		{"refusal with a 2xx", jsonType, `{"username":"alice","password":"password"}`,
			handlers.Refuse(middleware.NewProblem(http.StatusOK, "fine", "")), 500, middleware.ReasonInternal, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.users.err.Store(nil)
			if tc.loginErr != nil {
				f.users.err.Store(&tc.loginErr)
			}
			before := f.users.calls.Load()
			r := f.do(t, f.client(t), "POST", "/sessions", strings.NewReader(tc.body), tc.header)
			r.wantProblem(t, tc.status, tc.reason)
			if ck := r.sessionCookie(); ck != nil {
				t.Errorf("Set-Cookie: got %v, want none", ck)
			}
			if n := f.users.calls.Load() - before; n != tc.loginCalls {
				t.Errorf("Login calls: got %d, want %d", n, tc.loginCalls)
			}
			if n := f.countSessions(t, f.alice); n != 0 {
				t.Errorf("alice's sessions: got %d, want 0", n)
			}
			if tc.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestLoginRevokesTheCarriedSession(t *testing.T) {
	f := newFixture(t, setup{})
	c := f.client(t)
	first, firstTok := f.login(t, c, "bob") // bob may hold one session
	second, _ := f.login(t, c, "bob")
	if first.ID == second.ID {
		t.Fatal("login reused the session")
	}
	old, err := f.m.Session(context.Background(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if old.RevokedReason != sessionkit.ReasonLogin {
		t.Errorf("carried session: revoked reason %q, want %q", old.RevokedReason, sessionkit.ReasonLogin)
	}
	f.do(t, nil, "GET", "/sessions/current", nil, withToken(firstTok)).wantProblem(t, 401, middleware.ReasonSessionRevoked)
	if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != 200 {
		t.Errorf("new session: got %d, want 200", r.status)
	}
	// Logging in as alice from bob's browser revokes bob's session there too.
	third, _ := f.login(t, c, "alice")
	if third.UserID != f.alice {
		t.Errorf("user: got %s, want alice", third.UserID)
	}
	if s, _ := f.m.Session(context.Background(), second.ID); s.RevokedReason != sessionkit.ReasonLogin {
		t.Errorf("bob's session after alice's login: reason %q, want %q", s.RevokedReason, sessionkit.ReasonLogin)
	}
	// Two carried cookies: neither is revoked, and the login still succeeds.
	_, a1 := f.login(t, f.client(t), "alice")
	_, a2 := f.login(t, f.client(t), "alice")
	r := f.do(t, nil, "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`),
		http.Header{"Content-Type": {"application/json"}, "Cookie": {cookieName + "=" + a1 + "; " + cookieName + "=" + a2}})
	if r.status != http.StatusCreated {
		t.Fatalf("login with two cookies: got %d, want 201", r.status)
	}
	for _, tok := range []string{a1, a2} {
		if r := f.do(t, nil, "GET", "/sessions/current", nil, withToken(tok)); r.status != 200 {
			t.Errorf("a session carried twice: got %d, want 200 (not revoked)", r.status)
		}
	}
}

func TestLoginClientIP(t *testing.T) {
	f := newFixture(t, setup{session: func(o *middleware.Options) { o.TrustedProxies = []string{"10.0.0.0/8"} }})
	cases := []struct {
		name, remote, xff, want string
	}{
		{"untrusted peer", "198.51.100.9:5000", "1.2.3.4", "198.51.100.9"},
		{"spoof, real via a trusted proxy", "10.0.0.2:443", "6.6.6.6, 203.0.113.7", "203.0.113.7"},
		{"not-an-ip via a trusted proxy", "10.0.0.2:443", "not-an-ip", "10.0.0.2"},
		{"zoned peer", "[fe80::1%eth0]:5000", "", "fe80::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = tc.remote
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				t.Fatalf("got %d (%s), want 201", rec.Code, rec.Body)
			}
			var s handlers.SessionJSON
			response{status: rec.Code, body: rec.Body.Bytes()}.decode(t, &s)
			if s.IPAddress == nil || *s.IPAddress != tc.want {
				t.Errorf("ip_address: got %v, want %s", s.IPAddress, tc.want)
			}
			// The same route again: no false address change.
			tok := rec.Result().Cookies()[0].Value
			req = httptest.NewRequest("GET", "/sessions/current", nil)
			req.RemoteAddr = tc.remote
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			req.Header.Set("Cookie", cookieName+"="+tok)
			rec = httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			var cur handlers.SessionJSON
			response{status: rec.Code, body: rec.Body.Bytes()}.decode(t, &cur)
			if cur.IPChangeCount != 0 || cur.LastIPAddress == nil || *cur.LastIPAddress != tc.want {
				t.Errorf("after a second request: %d changes, last ip %v; want 0, %s", cur.IPChangeCount, cur.LastIPAddress, tc.want)
			}
		})
	}
	t.Run("unusable RemoteAddr", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/sessions", strings.NewReader(`{"username":"bob","password":"password"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "@"
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusInternalServerError || rec.Header().Get("Set-Cookie") != "" {
			t.Errorf("got %d with Set-Cookie %q, want 500 without a cookie", rec.Code, rec.Header().Get("Set-Cookie"))
		}
		if n := f.countSessions(t, f.bob); n != 0 {
			t.Errorf("bob's sessions: got %d, want 0", n)
		}
	})
}

func TestCredentialsOutsideLogin(t *testing.T) {
	if _, _, err := handlers.Credentials(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, handlers.ErrNoCredentials) {
		t.Errorf("got %v, want ErrNoCredentials", err)
	}
}

// Every refusal of a sign-in is logged at debug (operations.md), with its
// reason, whichever part of the handler refuses it; never the password.
func TestLoginRefusalsAreLogged(t *testing.T) {
	f := newFixture(t, setup{})
	cases := []struct {
		name, body, contentType string
		header                  http.Header
		status                  int
		reason                  string
	}{
		{"wrong password", `{"username":"alice","password":"hunter2"}`, "application/json", nil, http.StatusUnauthorized, middleware.ReasonInvalidCredentials},
		{"not JSON", `{"username":`, "application/json", nil, http.StatusBadRequest, middleware.ReasonInvalidRequest},
		{"another media type", `<login/>`, "application/xml", nil, http.StatusUnsupportedMediaType, middleware.ReasonUnsupportedMedia},
		{"too large", `{"username":"` + strings.Repeat("a", 70<<10) + `"}`, "application/json", nil, http.StatusRequestEntityTooLarge, middleware.ReasonRequestTooLarge},
		{"from another site", `{"username":"alice","password":"password"}`, "application/json", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden, middleware.ReasonCrossOrigin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {tc.contentType}}
			for k, v := range tc.header {
				h[k] = v
			}
			before := f.logs.Count("reason=" + tc.reason)
			f.do(t, nil, "POST", "/sessions", strings.NewReader(tc.body), h).wantProblem(t, tc.status, tc.reason)
			if n := f.logs.Count("reason=" + tc.reason); n != before+1 {
				t.Errorf("debug lines with reason=%s: got %d more, want 1\n%s", tc.reason, n-before, f.logs.String())
			}
		})
	}
	if strings.Contains(f.logs.String(), "hunter2") {
		t.Error("the log holds the password")
	}
}
