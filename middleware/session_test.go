package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
)

const cookie = middleware.DefaultCookieName + "="

func TestMalformedTokensAreRefusedWithoutRedis(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	cases := []struct {
		name   string
		header http.Header
	}{
		{"no cookie", http.Header{}},
		{"empty cookie", http.Header{"Cookie": {cookie}}},
		{"cookie without value", http.Header{"Cookie": {middleware.DefaultCookieName}}},
		{"10 KB cookie", http.Header{"Cookie": {cookie + strings.Repeat("a", 10<<10)}}},
		{"bad base64 alphabet", http.Header{"Cookie": {cookie + tok[:40] + "+" + tok[41:]}}},
		{"bad base64 trailing bits", http.Header{"Cookie": {cookie + tok[:79] + "B"}}},
		{"one part", http.Header{"Cookie": {cookie + strings.Replace(tok, ".", "x", 1)}}},
		{"three parts", http.Header{"Cookie": {cookie + tok[:50] + "." + tok[51:]}}},
		{"id only", http.Header{"Cookie": {cookie + tok[:36]}}},
		{"NUL byte", http.Header{"Cookie": {cookie + tok[:40] + "\x00" + tok[41:]}}},
		{"non-ASCII bytes", http.Header{"Cookie": {cookie + tok[:40] + "é" + tok[42:]}}},
		{"upper-case id", http.Header{"Cookie": {cookie + strings.ToUpper(tok[:36]) + tok[36:]}}},
		{"not a session id", http.Header{"Cookie": {cookie + uuid.New().String() + tok[36:]}}},
		{"other cookie only", http.Header{"Cookie": {"session=" + tok + "; __Host-sessionx=" + tok}}},
		{"bearer when not allowed", http.Header{"Authorization": {"Bearer " + tok}}},
	}
	for _, optional := range []bool{false, true} {
		a := f.auth(t, middleware.Options{Optional: optional})
		for _, tc := range cases {
			t.Run(tc.name+map[bool]string{false: "/required", true: "/optional"}[optional], func(t *testing.T) {
				var s seen
				r := request("", "")
				r.Header = tc.header
				rec := httptest.NewRecorder()
				f.Calls.Reset()
				a.Middleware(probe(&s)).ServeHTTP(rec, r)
				if n := f.Calls.Commands(); n != 0 {
					t.Errorf("redis commands: got %d, want 0", n)
				}
				if optional {
					if rec.Code != http.StatusOK || !s.called || s.ok {
						t.Errorf("optional: got status %d, called %v, session %v; want 200, called, anonymous", rec.Code, s.called, s.ok)
					}
					return
				}
				if rec.Code != http.StatusUnauthorized || s.called {
					t.Fatalf("got status %d, handler called %v; want 401, not called", rec.Code, s.called)
				}
				if p := problem(t, rec); p.Reason != middleware.ReasonNoSession {
					t.Errorf("reason: got %q, want %q", p.Reason, middleware.ReasonNoSession)
				}
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Cookie ") {
					t.Errorf("WWW-Authenticate: got %q, want a Cookie challenge", got)
				}
				if got := rec.Header().Get("Vary"); got != "Cookie" {
					t.Errorf("Vary: got %q, want Cookie", got)
				}
				if got := rec.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control: got %q, want no-store", got)
				}
			})
		}
	}
}

func TestAmbiguousTokensAreRefusedInBothModes(t *testing.T) {
	f := newFixture(t)
	user := uuid.New()
	one := f.Login(t, user).Token
	two := f.Login(t, user).Token
	cases := []struct {
		name   string
		header http.Header
	}{
		{"two valid cookies", http.Header{"Cookie": {cookie + one + "; " + cookie + two}}},
		{"the same cookie twice", http.Header{"Cookie": {cookie + one + "; " + cookie + one}}},
		{"two Cookie lines", http.Header{"Cookie": {cookie + one, cookie + two}}},
		{"valid and malformed", http.Header{"Cookie": {cookie + one + "; " + cookie + "junk"}}},
		{"cookie and another bearer", http.Header{"Cookie": {cookie + one}, "Authorization": {"Bearer " + two}}},
		{"two bearer headers", http.Header{"Authorization": {"Bearer " + one, "Bearer " + one}}},
	}
	for _, optional := range []bool{false, true} {
		a := f.auth(t, middleware.Options{Optional: optional, AllowBearer: true})
		for _, tc := range cases {
			t.Run(tc.name+map[bool]string{false: "/required", true: "/optional"}[optional], func(t *testing.T) {
				var s seen
				r := request("", "")
				r.Header = tc.header
				rec := httptest.NewRecorder()
				f.Calls.Reset()
				a.Middleware(probe(&s)).ServeHTTP(rec, r)
				if rec.Code != http.StatusUnauthorized || s.called {
					t.Fatalf("got status %d, handler called %v; want 401, not called", rec.Code, s.called)
				}
				if p := problem(t, rec); p.Reason != middleware.ReasonNoSession {
					t.Errorf("reason: got %q, want %q", p.Reason, middleware.ReasonNoSession)
				}
				if n := f.Calls.Commands(); n != 0 {
					t.Errorf("redis commands: got %d, want 0", n)
				}
			})
		}
	}
}

func TestValidSessionReachesTheHandler(t *testing.T) {
	f := newFixture(t)
	user := uuid.New()
	res := f.Login(t, user)
	a := f.auth(t, middleware.Options{})
	var s seen
	h := a.Middleware(probe(&s))
	serve := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(cookie+res.Token, "203.0.113.7:4711"))
		return rec
	}
	serve()
	f.Calls.Reset()
	rec := serve()
	if rec.Code != http.StatusOK || !s.ok {
		t.Fatalf("got status %d, session %v; want 200 with a session", rec.Code, s.ok)
	}
	if n := f.Calls.RoundTrips(); n != 1 {
		t.Errorf("redis round trips per request: got %d, want 1", n)
	}
	if n := f.Calls.Scripts(); n != 0 {
		t.Errorf("scripts run within the activity throttle: got %d, want 0 (no write)", n)
	}
	if s.session.ID != res.Session.ID || s.session.UserID != user {
		t.Errorf("session: got %s of %s, want %s of %s", s.session.ID, s.session.UserID, res.Session.ID, user)
	}
	if s.changed {
		t.Errorf("IPChanged: got %+v, want no change", s.change)
	}
	if got := rec.Header().Get("Vary"); got != "Cookie" {
		t.Errorf("Vary: got %q, want Cookie", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	// Quoted values are unquoted as net/http does; other cookies are ignored.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request(`theme=dark; `+cookie+`"`+res.Token+`"; lang=en`, "203.0.113.7:4711"))
	if rec.Code != http.StatusOK {
		t.Errorf("quoted cookie among others: got %d, want 200", rec.Code)
	}
}

func TestActivityIsThrottledAndRecorded(t *testing.T) {
	f := newFixture(t)
	res := f.Login(t, uuid.New())
	h := f.auth(t, middleware.Options{}).Middleware(probe(&seen{}))
	serve := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(cookie+res.Token, "203.0.113.7:1"))
		if rec.Code != http.StatusOK {
			t.Fatalf("got %d, want 200", rec.Code)
		}
	}
	created := res.Session.LastActivityAt
	f.Clock.Advance(30 * time.Second)
	serve()
	if got := f.Session(t, res.Session.ID).LastActivityAt; !got.Equal(created) {
		t.Errorf("within the throttle: last activity %v, want %v (no write)", got, created)
	}
	f.Clock.Advance(31 * time.Second)
	serve()
	// The write is queued (sessionkit.WithActivityWriteDelay) and lands
	// within the delay and a round trip.
	want := f.M.Now()
	if err := redistest.WaitFor(5*time.Second, func() error {
		if got := f.Session(t, res.Session.ID).LastActivityAt; !got.Equal(want) {
			return fmt.Errorf("after the throttle: last activity %v, want %v", got, want)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

func TestWrongSecretLeavesTheSessionUntouched(t *testing.T) {
	f := newFixture(t)
	res := f.Login(t, uuid.New())
	other := f.Login(t, uuid.New()).Token
	forged := res.Token[:37] + other[37:] // the real id with another valid secret
	a := f.auth(t, middleware.Options{})
	before := f.Session(t, res.Session.ID)
	f.Clock.Advance(2 * time.Minute) // past the throttle: a touch would write
	var s seen
	rec := httptest.NewRecorder()
	a.Middleware(probe(&s)).ServeHTTP(rec, request(cookie+forged, "198.51.100.9:1"))
	if rec.Code != http.StatusUnauthorized || s.called {
		t.Fatalf("got status %d, called %v; want 401, not called", rec.Code, s.called)
	}
	if p := problem(t, rec); p.Reason != middleware.ReasonNoSession {
		t.Errorf("reason: got %q, want %q", p.Reason, middleware.ReasonNoSession)
	}
	if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, "Cookie") {
		t.Errorf("WWW-Authenticate: got %q, want a Cookie challenge", got)
	}
	after := f.Session(t, res.Session.ID)
	if !after.LastActivityAt.Equal(before.LastActivityAt) || after.IPChangeCount != 0 || after.LastIPAddress != before.LastIPAddress {
		t.Errorf("session after a forged token: activity %v, ip changes %d, last ip %v; want %v, 0, %v",
			after.LastActivityAt, after.IPChangeCount, after.LastIPAddress, before.LastActivityAt, before.LastIPAddress)
	}
	if st := after.StateAt(f.M.Now()); st != sessionkit.StateActive {
		t.Errorf("state: got %v, want active", st)
	}
	rec = httptest.NewRecorder()
	a.Middleware(probe(&seen{})).ServeHTTP(rec, request(cookie+res.Token, "203.0.113.7:1"))
	if rec.Code != http.StatusOK {
		t.Errorf("the real token afterwards: got %d, want 200", rec.Code)
	}
}

func TestRefusalReasons(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		opts   []sessionkit.Option
		end    func(t *testing.T, f *fixture, victim sessionkit.CreateSessionResult)
		reason string
	}{
		{"replay after logout", nil, func(t *testing.T, f *fixture, v sessionkit.CreateSessionResult) {
			if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: v.Session.UserID, Reason: sessionkit.ReasonLogout}); err != nil {
				t.Fatal(err)
			}
		}, middleware.ReasonSessionRevoked},
		{"replay after logout everywhere", nil, func(t *testing.T, f *fixture, v sessionkit.CreateSessionResult) {
			keep := f.Login(t, v.Session.UserID)
			if _, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: v.Session.UserID, Reason: sessionkit.ReasonLogoutAll, ExceptSessionID: keep.Session.ID}); err != nil {
				t.Fatal(err)
			}
		}, middleware.ReasonSessionRevoked},
		{"eviction", []sessionkit.Option{sessionkit.WithLimit(sessionkit.FixedLimit(1))}, func(t *testing.T, f *fixture, v sessionkit.CreateSessionResult) {
			f.Clock.Advance(time.Millisecond)
			f.Login(t, v.Session.UserID)
		}, middleware.ReasonSessionLimitExceeded},
		{"expiry", []sessionkit.Option{sessionkit.WithLifetime(time.Hour)}, func(t *testing.T, f *fixture, v sessionkit.CreateSessionResult) {
			f.Clock.Advance(time.Hour)
		}, middleware.ReasonSessionExpired},
		{"idle", []sessionkit.Option{sessionkit.WithIdleTimeout(10 * time.Minute)}, func(t *testing.T, f *fixture, v sessionkit.CreateSessionResult) {
			f.Clock.Advance(10 * time.Minute)
		}, middleware.ReasonSessionIdle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			victim := f.Login(t, uuid.New())
			tc.end(t, f, victim)
			var s seen
			rec := httptest.NewRecorder()
			f.auth(t, middleware.Options{}).Middleware(probe(&s)).ServeHTTP(rec, request(cookie+victim.Token, "203.0.113.7:1"))
			if rec.Code != http.StatusUnauthorized || s.called {
				t.Fatalf("got status %d, called %v; want 401, not called", rec.Code, s.called)
			}
			if p := problem(t, rec); p.Reason != tc.reason {
				t.Errorf("reason: got %q, want %q", p.Reason, tc.reason)
			}
			// Optional mode serves the same request anonymously.
			s = seen{}
			rec = httptest.NewRecorder()
			f.auth(t, middleware.Options{Optional: true}).Middleware(probe(&s)).ServeHTTP(rec, request(cookie+victim.Token, "203.0.113.7:1"))
			if rec.Code != http.StatusOK || s.ok {
				t.Errorf("optional: got status %d, session %v; want 200, anonymous", rec.Code, s.ok)
			}
		})
	}
}

// serveHeader runs a's middleware, over a handler that records the
// session, for a request with header.
func serveHeader(a *middleware.Authenticator, header http.Header) *httptest.ResponseRecorder {
	var s seen
	r := request("", "203.0.113.7:1")
	r.Header = header
	rec := httptest.NewRecorder()
	a.Middleware(probe(&s)).ServeHTTP(rec, r)
	return rec
}

func TestBearerTokens(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	a := f.auth(t, middleware.Options{AllowBearer: true})
	cases := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"bearer", http.Header{"Authorization": {"Bearer " + tok}}, http.StatusOK},
		{"lower-case scheme", http.Header{"Authorization": {"bearer  " + tok}}, http.StatusOK},
		{"cookie and the same bearer", http.Header{"Cookie": {cookie + tok}, "Authorization": {"Bearer " + tok}}, http.StatusOK},
		{"other scheme is ignored", http.Header{"Cookie": {cookie + tok}, "Authorization": {"Basic YTpi"}}, http.StatusOK},
		{"malformed bearer", http.Header{"Authorization": {"Bearer abc"}}, http.StatusUnauthorized},
		{"no token", http.Header{}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveHeader(a, tc.header)
			if rec.Code != tc.want {
				t.Fatalf("got status %d, want %d", rec.Code, tc.want)
			}
			if got := rec.Header().Get("Vary"); got != "Cookie, Authorization" {
				t.Errorf("Vary: got %q, want %q", got, "Cookie, Authorization")
			}
			if tc.want == http.StatusUnauthorized {
				ch := strings.Join(rec.Header().Values("WWW-Authenticate"), " | ")
				if !strings.Contains(ch, "Bearer realm") || !strings.Contains(ch, "Cookie realm") {
					t.Errorf("WWW-Authenticate: got %q, want Cookie and Bearer challenges", ch)
				}
				if presented := tc.name != "no token"; presented != strings.Contains(ch, "invalid_token") {
					t.Errorf("WWW-Authenticate: got %q, want error=invalid_token only for a presented token", ch)
				}
			}
		})
	}
}

func TestStackedMiddlewareAuthenticatesOnce(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	outer := f.auth(t, middleware.Options{Optional: true})
	inner := f.auth(t, middleware.Options{})
	var s seen
	h := outer.Middleware(inner.Middleware(probe(&s)))
	h.ServeHTTP(httptest.NewRecorder(), request(cookie+tok, "203.0.113.7:1"))
	f.Calls.Reset()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request(cookie+tok, "203.0.113.7:1"))
	if rec.Code != http.StatusOK || !s.ok {
		t.Fatalf("got status %d, session %v; want 200 with a session", rec.Code, s.ok)
	}
	if n := f.Calls.RoundTrips(); n != 1 {
		t.Errorf("redis round trips: got %d, want 1", n)
	}
	if got := rec.Header().Values("Vary"); len(got) != 1 {
		t.Errorf("Vary: got %q, want one Cookie", got)
	}
	// A session of another Manager is not trusted: the inner one checks again.
	g := newFixture(t)
	other := g.auth(t, middleware.Options{})
	s = seen{}
	rec = httptest.NewRecorder()
	outer.Middleware(other.Middleware(probe(&s))).ServeHTTP(rec, request(cookie+tok, "203.0.113.7:1"))
	if rec.Code != http.StatusUnauthorized || s.called {
		t.Errorf("other manager: got status %d, called %v; want 401, not called", rec.Code, s.called)
	}
}

func TestRequireRefusesWhateverOptionalSays(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	revoked := f.Login(t, uuid.New())
	if _, err := f.M.RevokeSession(context.Background(), sessionkit.RevokeSession{
		SessionID: revoked.Session.ID, UserID: revoked.Session.UserID, Reason: sessionkit.ReasonUserRevoked,
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cookie string
		status int
		reason string
	}{
		{"valid session", cookie + tok, http.StatusOK, ""},
		{"no cookie", "", http.StatusUnauthorized, middleware.ReasonNoSession},
		{"unknown token", cookie + f.Login(t, uuid.New()).Token[:37] + strings.Repeat("A", 43), http.StatusUnauthorized, middleware.ReasonNoSession},
		{"revoked session", cookie + revoked.Token, http.StatusUnauthorized, middleware.ReasonSessionRevoked},
	}
	for _, optional := range []bool{false, true} {
		a := f.auth(t, middleware.Options{Optional: optional})
		for _, tc := range cases {
			t.Run(tc.name+map[bool]string{false: "/required", true: "/optional"}[optional], func(t *testing.T) {
				var s seen
				rec := httptest.NewRecorder()
				a.Require(probe(&s)).ServeHTTP(rec, request(tc.cookie, "203.0.113.7:1"))
				if rec.Code != tc.status {
					t.Fatalf("got status %d (%s), want %d", rec.Code, rec.Body, tc.status)
				}
				if tc.status != http.StatusOK {
					if s.called {
						t.Error("handler called, want not called")
					}
					if p := problem(t, rec); p.Reason != tc.reason {
						t.Errorf("reason: got %q, want %q", p.Reason, tc.reason)
					}
					return
				}
				if !s.ok {
					t.Error("handler saw no session, want one")
				}
				if got := rec.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control: got %q, want no-store", got)
				}
			})
		}
	}

	// An app-wide optional Middleware in front of Require, both of one
	// Authenticator: one round trip for a session, 401 for none.
	a := f.auth(t, middleware.Options{Optional: true})
	var s seen
	h := a.Middleware(a.Require(probe(&s)))
	h.ServeHTTP(httptest.NewRecorder(), request(cookie+tok, "203.0.113.7:1"))
	f.Calls.Reset()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request(cookie+tok, "203.0.113.7:1"))
	if rec.Code != http.StatusOK || !s.ok {
		t.Fatalf("stacked: got status %d, session %v; want 200 with a session", rec.Code, s.ok)
	}
	if n := f.Calls.RoundTrips(); n != 1 {
		t.Errorf("stacked: redis round trips: got %d, want 1", n)
	}
	if got := rec.Header().Values("Vary"); len(got) != 1 {
		t.Errorf("stacked: Vary: got %q, want one Cookie", got)
	}
	s = seen{}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request("", "203.0.113.7:1"))
	if rec.Code != http.StatusUnauthorized || s.called {
		t.Errorf("stacked without a cookie: got status %d, called %v; want 401, not called", rec.Code, s.called)
	}
}

func TestResponseControllerStillWorks(t *testing.T) {
	f := newFixture(t)
	tok := f.LoginFrom(t, uuid.New(), "127.0.0.1").Token
	mw, err := middleware.New(f.M, middleware.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("streamed"))
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.AddCookie(&http.Cookie{Name: middleware.DefaultCookieName, Value: tok})
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got %d, want 200", resp.StatusCode)
	}
}

func TestNoTokenInLogs(t *testing.T) {
	var logs logtest.Buffer
	f := newFixture(t, sessionkit.WithLogger(logs.Logger()))
	res := f.Login(t, uuid.New())
	a := f.auth(t, middleware.Options{IPPolicy: middleware.IPRevoke})
	h := a.Middleware(probe(&seen{}))
	secret := res.Token[37:]
	for _, c := range []string{
		res.Token, res.Token[:37] + strings.Repeat("A", 43), "junk" + secret, res.Token + "; " + cookie + res.Token,
	} {
		h.ServeHTTP(httptest.NewRecorder(), request(cookie+c, "203.0.113.7:1"))
	}
	h.ServeHTTP(httptest.NewRecorder(), request(cookie+res.Token, "198.51.100.1:1")) // revoked: logged
	out := logs.String()
	if !strings.Contains(out, "revoked after an address change") {
		t.Errorf("log: got %q, want the revocation logged", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, res.Token) {
		t.Errorf("log contains the token: %q", out)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		opts middleware.Options
	}{
		{"cookie name without __Host-", middleware.Options{CookieName: "session"}},
		{"cookie name with a space", middleware.Options{CookieName: "__Host-a b"}},
		{"cookie name with =", middleware.Options{CookieName: "__Host-a=b"}},
		{"insecure __Host- cookie", middleware.Options{CookieName: "__Host-session", InsecureDevCookies: true}},
		{"insecure __Secure- cookie", middleware.Options{CookieName: "__Secure-session", InsecureDevCookies: true}},
		{"bad trusted proxy", middleware.Options{TrustedProxies: []string{"10.0.0.0/8", "proxy.internal"}}},
		{"unknown policy", middleware.Options{IPPolicy: 7}},
		{"decision with a policy", middleware.Options{IPPolicy: middleware.IPRevoke, IPDecision: func(*http.Request, sessionkit.Session, middleware.IPChange) middleware.IPPolicy {
			return middleware.IPFlag
		}}},
		{"negative timeout", middleware.Options{StoreTimeout: -time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := middleware.New(f.M, tc.opts)
			if !errors.Is(err, sessionkit.ErrInvalid) {
				t.Errorf("got %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
	if _, err := middleware.New(nil, middleware.Options{}); !errors.Is(err, sessionkit.ErrInvalid) {
		t.Errorf("nil Manager: got %v, want ErrInvalid", err)
	}
	var logs logtest.Buffer
	dev := newFixture(t, sessionkit.WithLogger(logs.Logger()))
	a, err := middleware.NewAuthenticator(dev.M, middleware.Options{InsecureDevCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Options().CookieName; got != middleware.DevCookieName {
		t.Errorf("dev cookie name: got %q, want %q", got, middleware.DevCookieName)
	}
	if !strings.Contains(logs.String(), "InsecureDevCookies") {
		t.Errorf("log: got %q, want a warning about InsecureDevCookies", logs.String())
	}
	if got := f.auth(t, middleware.Options{}).Options().CookieName; got != middleware.DefaultCookieName {
		t.Errorf("default cookie name: got %q, want %q", got, middleware.DefaultCookieName)
	}
}

func TestErrorWriterIsReplaceable(t *testing.T) {
	f := newFixture(t)
	var got []middleware.Problem
	a := f.auth(t, middleware.Options{ErrorWriter: func(w http.ResponseWriter, r *http.Request, p middleware.Problem) {
		got = append(got, p)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(p.Status)
		w.Write([]byte(p.Reason))
	}})
	rec := httptest.NewRecorder()
	a.Middleware(probe(&seen{})).ServeHTTP(rec, request("", ""))
	if len(got) != 1 || got[0].Reason != middleware.ReasonNoSession || got[0].Status != http.StatusUnauthorized {
		t.Fatalf("writer calls: got %+v, want one 401 no_session", got)
	}
	if rec.Body.String() != middleware.ReasonNoSession || rec.Header().Get("Content-Type") != "text/plain" {
		t.Errorf("body: got %q (%s), want the custom writer's", rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	if rec.Header().Get("WWW-Authenticate") == "" || rec.Header().Get("Vary") != "Cookie" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers: got %v, want WWW-Authenticate, Vary and Cache-Control set before the writer", rec.Header())
	}
}

func TestSetCookieAttributes(t *testing.T) {
	f := newFixture(t)
	for name, insecure := range map[string]bool{"default": false, "dev": true} {
		t.Run(name, func(t *testing.T) {
			a := f.auth(t, middleware.Options{InsecureDevCookies: insecure})
			rec := httptest.NewRecorder()
			a.SetCookie(rec, "tok", f.M.Now().Add(90*time.Second))
			c := rec.Result().Cookies()
			if len(c) != 1 {
				t.Fatalf("got %d cookies, want 1", len(c))
			}
			wantName := middleware.DefaultCookieName
			if insecure {
				wantName = middleware.DevCookieName
			}
			got := c[0]
			if got.Name != wantName || got.Value != "tok" || got.Path != "/" || got.Domain != "" || !got.HttpOnly ||
				got.Secure == insecure || got.SameSite != http.SameSiteLaxMode || got.MaxAge != 90 {
				t.Errorf("cookie: got %+v", got)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
			rec = httptest.NewRecorder()
			a.ClearCookie(rec)
			if c := rec.Result().Cookies(); len(c) != 1 || c[0].MaxAge != -1 || c[0].Value != "" {
				t.Errorf("cleared cookie: got %+v, want Max-Age=0", c)
			}
		})
	}
}

// TestRefusedAccessTokenLogsWhy: an access token refused is 401 no_session
// whatever failed, so that the answer says nothing of which check it was;
// the debug line of the refusal says it, so that an operator can tell an
// expired token from one signed by a key another instance does not have
// (instances with mismatched keys look like random 401s). Neither the
// token nor any part of it reaches the log.
func TestRefusedAccessTokenLogsWhy(t *testing.T) {
	var logs logtest.Buffer
	f := newFixture(t, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}), sessionkit.WithLogger(logs.Logger()))
	other := newFixtureWith(t, sessiontest.Options{Addr: shared.Addr(), Prefix: f.Prefix}, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}))
	a := f.auth(t, middleware.Options{AllowBearer: true})
	signIn := func(fx *fixture) string {
		t.Helper()
		res, err := fx.M.CreateSession(t.Context(), sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, Bearer: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.Tokens.AccessToken
	}
	foreign := signIn(other) // signed by a key this Manager does not have
	expired := signIn(f)
	f.Clock.Advance(time.Hour)
	for _, tc := range []struct{ name, token, why string }{
		{"expired", expired, "expired"},
		{"another key", foreign, "kid"},
	} {
		refused := logs.Count("request refused")
		rec := serveHeader(a, http.Header{"Authorization": {"Bearer " + tc.token}})
		if n := logs.Count("request refused") - refused; n != 1 {
			t.Fatalf("%s: %d refusal lines, want 1", tc.name, n)
		}
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), middleware.ReasonNoSession) {
			t.Fatalf("%s: got %d %s, want 401 no_session", tc.name, rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), tc.why) {
			t.Errorf("%s: the answer says why: %s", tc.name, rec.Body)
		}
		line := logs.Last("request refused")
		if !strings.Contains(line, tc.why) {
			t.Errorf("%s: the refusal's log line %q does not say why (%q)", tc.name, line, tc.why)
		}
		for _, part := range strings.Split(tc.token, ".") {
			if logs.Count(part) != 0 {
				t.Errorf("%s: a part of the token reached the log", tc.name)
			}
		}
	}
}
