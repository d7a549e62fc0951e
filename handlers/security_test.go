package handlers_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
)

func TestCrossSiteRequestsAreRefused(t *testing.T) {
	f := newFixture(t, setup{options: func(o *handlers.Options) { o.TrustedOrigins = []string{"https://app.example.com"} }})
	laptop, phone := f.client(t), f.client(t)
	mine, _ := f.login(t, laptop, "alice")
	other, _ := f.login(t, phone, "alice")
	login := `{"username":"alice","password":"password"}`
	crossSite := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}}
	sameSite := http.Header{"Sec-Fetch-Site": {"same-site"}}
	foreign := http.Header{"Origin": {"https://evil.example"}, "Content-Type": {"application/json"}}
	trusted := http.Header{"Origin": {"https://app.example.com"}, "Sec-Fetch-Site": {"cross-site"}}
	cases := []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
	}{
		{"DELETE id cross-site", "DELETE", "/sessions/" + other.ID.String(), "", crossSite, 403},
		{"DELETE id from a foreign Origin", "DELETE", "/sessions/" + other.ID.String(), "", foreign, 403},
		{"DELETE id same-site", "DELETE", "/sessions/" + other.ID.String(), "", sameSite, 403},
		{"DELETE all cross-site", "DELETE", "/sessions", "", crossSite, 403},
		{"logout cross-site", "DELETE", "/sessions/current", "", crossSite, 403},
		{"login cross-site", "POST", "/sessions", login, crossSite, 403},
		{"login from a foreign Origin", "POST", "/sessions", login, foreign, 403},
		{"GET cross-site is safe", "GET", "/sessions", "", crossSite, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.countSessions(t, f.alice)
			r := f.do(t, laptop, tc.method, tc.path, strings.NewReader(tc.body), tc.header)
			if tc.status == 403 {
				r.wantProblem(t, 403, middleware.ReasonCrossOrigin)
				if ck := r.sessionCookie(); ck != nil {
					t.Errorf("Set-Cookie: got %v, want none", ck)
				}
			} else if r.status != tc.status {
				t.Fatalf("got %d, want %d", r.status, tc.status)
			}
			if n := f.countSessions(t, f.alice); n != before {
				t.Errorf("alice's sessions: got %d, want %d", n, before)
			}
		})
	}
	for _, c := range []*http.Client{laptop, phone} {
		if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
			t.Errorf("after refused requests: got %d, want 200", r.status)
		}
	}
	// Same-origin and trusted origins pass.
	if r := f.do(t, laptop, "DELETE", "/sessions/"+other.ID.String(), nil, trusted); r.status != http.StatusNoContent {
		t.Errorf("trusted origin: got %d (%s), want 204", r.status, r.body)
	}
	sameOrigin := http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {f.srv.URL}}
	if r := f.do(t, laptop, "DELETE", "/sessions/"+mine.ID.String(), nil, sameOrigin); r.status != http.StatusBadRequest {
		t.Errorf("same origin: got %d, want 400 (reached the handler)", r.status)
	}
}

func TestStoreDownAndBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	f := newFixture(t, setup{server: srv})
	c := f.client(t)
	s, _ := f.login(t, c, "alice")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	login := `{"username":"alice","password":"password"}`
	cases := []struct {
		name, method, path, body string
		client                   *http.Client
	}{
		{"login", "POST", "/sessions", login, f.client(t)},
		{"login carrying a session", "POST", "/sessions", login, c},
		{"list", "GET", "/sessions", "", c},
		{"current", "GET", "/sessions/current", "", c},
		{"get", "GET", "/sessions/" + s.ID.String(), "", c},
		{"events", "GET", "/sessions/events", "", c},
		{"revoke", "DELETE", "/sessions/" + s.ID.String(), "", c},
		{"revoke all", "DELETE", "/sessions", "", c},
		{"logout", "DELETE", "/sessions/current", "", c},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, tc.client, tc.method, tc.path, strings.NewReader(tc.body), jsonType)
			r.wantProblem(t, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable)
			if got := r.header.Get("Set-Cookie"); got != "" {
				t.Errorf("Set-Cookie: got %q, want none", got)
			}
		})
	}
	if !strings.Contains(f.logs.String(), "store_unavailable") {
		t.Errorf("log: got %q, want the store failures logged", f.logs.String())
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.WaitFor(10*time.Second, func() error {
		if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
			return fmt.Errorf("got %d (%s), want 200", r.status, r.body)
		}
		return nil
	}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	again, _ := f.login(t, c, "alice")
	if again.ID == s.ID {
		t.Error("login after restart reused the session")
	}
	if n := f.countSessions(t, f.alice); n != 2 {
		t.Errorf("alice's sessions: got %d, want 2 (nothing created while down)", n)
	}
}

func TestInsecureDevCookiesNeedTheFlag(t *testing.T) {
	f := newFixture(t, setup{})
	for name, tc := range map[string]struct {
		session middleware.Options
		opts    handlers.Options
	}{
		"plain cookie name":     {middleware.Options{CookieName: "session"}, handlers.Options{Login: f.users.login}},
		"__Host- with dev flag": {middleware.Options{CookieName: "__Host-s", InsecureDevCookies: true}, handlers.Options{Login: f.users.login}},
		"no Login":              {middleware.Options{}, handlers.Options{}},
		"negative body limit":   {middleware.Options{}, handlers.Options{Login: f.users.login, MaxBodyBytes: -1}},
		"bad trusted origin":    {middleware.Options{}, handlers.Options{Login: f.users.login, TrustedOrigins: []string{"not an origin"}}},
		// CrossOriginProtection takes the * literally: it would never match.
		"wildcard trusted origin": {middleware.Options{}, handlers.Options{Login: f.users.login, TrustedOrigins: []string{"https://*.example.com"}}},
	} {
		t.Run(name, func(t *testing.T) {
			auth, err := middleware.NewAuthenticator(f.m, tc.session)
			if err == nil {
				_, err = handlers.New(auth, tc.opts)
			}
			if !errors.Is(err, sessionkit.ErrInvalid) {
				t.Errorf("got %v, want an error wrapping ErrInvalid", err)
			}
		})
	}

	dev := newFixture(t, setup{plain: true, session: func(o *middleware.Options) { o.InsecureDevCookies = true }})
	if !strings.Contains(dev.logs.String(), "InsecureDevCookies") {
		t.Errorf("log: got %q, want a warning", dev.logs.String())
	}
	c := dev.client(t)
	r := dev.do(t, c, "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType)
	if r.status != http.StatusCreated {
		t.Fatalf("dev login: got %d (%s), want 201", r.status, r.body)
	}
	ck := r.sessionCookie()
	if ck == nil || ck.Name != middleware.DevCookieName || ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("dev cookie: got %+v, want %q, not Secure, HttpOnly, SameSite=Lax", ck, middleware.DevCookieName)
	}
	if r := dev.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("dev cookie over plain HTTP: got %d, want 200", r.status)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t, setup{})
	c := f.client(t)
	f.login(t, c, "alice")
	f.do(t, c, "GET", "/sessions/a/b", nil, nil).wantProblem(t, 404, middleware.ReasonNotFound)
	f.do(t, c, "GET", "/sessions/", nil, nil).wantProblem(t, 404, middleware.ReasonNotFound)
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/sessions/current", "GET, DELETE, HEAD"},
		{"PATCH", "/sessions", "GET, POST, DELETE, HEAD"},
		{"POST", "/sessions/events", "GET, DELETE, HEAD"}, // DELETE /sessions/{id} matches too
	} {
		r := f.do(t, c, tc.method, tc.path, nil, nil)
		r.wantProblem(t, 405, "method_not_allowed")
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	if r := f.do(t, c, "HEAD", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("HEAD /sessions/current: got %d, want 200", r.status)
	}
}

// TestEveryStateChangingRouteRefusesCrossSite sends every route the tables
// mark CrossOrigin, user and admin, from another site, as the operator
// (who may call every one of them): each is 403 cross_origin, and no
// session of anyone changes. A route that lost its guard fails here.
func TestEveryStateChangingRouteRefusesCrossSite(t *testing.T) {
	f := operatorFixture(t, nil)
	op := f.client(t)
	carol, _ := f.login(t, op, "carol")
	victim, _ := f.login(t, f.client(t), "alice")
	crossSite := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}, "Content-Type": {"application/json"}}
	path := func(p string) string {
		p = strings.ReplaceAll(p, "{user_id}", f.alice.String())
		return strings.ReplaceAll(p, "{id}", victim.ID.String())
	}
	guarded := 0
	for _, rt := range append(handlers.Routes(), handlers.AdminRoutes()...) {
		if !rt.CrossOrigin {
			if rt.Method != http.MethodGet {
				t.Errorf("%s changes state but is not marked CrossOrigin", rt.Pattern())
			}
			continue
		}
		guarded++
		t.Run(rt.Pattern(), func(t *testing.T) {
			f.do(t, op, rt.Method, path(rt.Path), strings.NewReader(`{}`), crossSite).wantProblem(t, http.StatusForbidden, middleware.ReasonCrossOrigin)
		})
	}
	if guarded == 0 {
		t.Error("no route is marked CrossOrigin")
	}
	for _, id := range []uuid.UUID{carol.ID, victim.ID} {
		if s, err := f.m.Session(t.Context(), id); err != nil || !s.RevokedAt.IsZero() {
			t.Errorf("session %v after the refused requests: %+v, %v; want it active", id, s, err)
		}
	}
	if r := f.do(t, op, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("the operator's session after the refused requests: got %d, want 200", r.status)
	}
}
