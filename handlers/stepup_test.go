package handlers_test

import (
	"crypto"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// sensitive mounts GET /sensitive behind RequireRecentAuth(5 min) and
// GET /strong behind RequireLevel(aal2).
func (f *fixture) sensitive() {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.mux.Handle("GET /sensitive", f.auth.Middleware(f.auth.RequireRecentAuth(5*time.Minute)(ok)))
	f.mux.Handle("GET /strong", f.auth.Middleware(f.auth.RequireLevel(sessionkit.AAL2)(ok)))
}

func TestReauthenticateCookieSession(t *testing.T) {
	f := newFixture(t, setup{})
	f.sensitive()
	c := f.client(t)
	s, oldCookie := f.login(t, c, "alice")
	if s.AAL != sessionkit.AAL1 || s.AuthenticatedAt.IsZero() {
		t.Fatalf("a new session: aal %q, authenticated_at %v", s.AAL, s.AuthenticatedAt)
	}
	if r := f.do(t, c, "GET", "/sensitive", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("just signed in: got %d", r.status)
	}
	f.clock.Advance(6 * time.Minute)
	f.do(t, c, "GET", "/sensitive", nil, nil).wantProblem(t, http.StatusUnauthorized, middleware.ReasonReauthenticationRequired)
	if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Fatalf("the session itself is still valid: got %d", r.status)
	}

	// Another user's credentials: refused, and nothing changes.
	body := func(user string) *strings.Reader {
		return strings.NewReader(`{"username":"` + user + `","password":"password"}`)
	}
	f.do(t, c, "POST", "/sessions/current/reauthenticate", body("bob"), jsonType).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidCredentials)
	f.do(t, c, "POST", "/sessions/current/reauthenticate", strings.NewReader(`{"username":"alice","password":"nope"}`), jsonType).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidCredentials)
	if r := f.do(t, nil, "GET", "/sessions/current", nil, withToken(oldCookie)); r.status != http.StatusOK {
		t.Fatalf("after refused re-authentications the cookie still works: got %d", r.status)
	}

	r := f.do(t, c, "POST", "/sessions/current/reauthenticate", body("alice"), jsonType)
	if r.status != http.StatusOK {
		t.Fatalf("re-authenticate: got %d (%s)", r.status, r.body)
	}
	var after handlers.SessionJSON
	r.decode(t, &after)
	ck := r.sessionCookie()
	if ck == nil || ck.Value == oldCookie || after.ID != s.ID || !after.AuthenticatedAt.After(s.AuthenticatedAt) {
		t.Fatalf("re-authenticate: cookie %v, id %v (want %v), authenticated_at %v", ck, after.ID, s.ID, after.AuthenticatedAt)
	}
	if r := f.do(t, c, "GET", "/sensitive", nil, nil); r.status != http.StatusNoContent {
		t.Errorf("after re-authenticating: got %d", r.status)
	}
	f.do(t, nil, "GET", "/sessions/current", nil, withToken(oldCookie)).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)

	// The level: aal1 until the app raises it after a second factor.
	f.do(t, c, "GET", "/strong", nil, nil).wantProblem(t, http.StatusUnauthorized, middleware.ReasonReauthenticationRequired)
	res, err := f.m.Reauthenticate(t.Context(), sessionkit.Reauthenticate{SessionID: s.ID, UserID: f.alice, AAL: sessionkit.AAL2})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, nil, "GET", "/strong", nil, withToken(res.Token)); r.status != http.StatusNoContent {
		t.Errorf("at aal2: got %d", r.status)
	}
	if _, err := f.m.Reauthenticate(t.Context(), sessionkit.Reauthenticate{SessionID: s.ID, UserID: f.alice, AAL: "aal9"}); err == nil {
		t.Error("an unknown level was accepted")
	}
}

func TestReauthenticateBearerSession(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) { reauthenticateBearerSession(t, cached) })
	}
}

// reauthenticateBearerSession is TestReauthenticateBearerSession, over the
// verified-session cache when cached: the cache's entry then holds the
// session's new authentication, which the old access token must not get.
func reauthenticateBearerSession(t *testing.T, cached bool) {
	s := setup{
		mopts: []sessionkit.Option{sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
			SigningKeys: []crypto.Signer{newSigningKey(t)}, Issuer: testIssuer, TTL: time.Hour,
		})},
		session: func(o *middleware.Options) { o.AllowBearer = true },
		cached:  cached,
	}
	f := newFixture(t, s)
	f.sensitive()
	p, _ := f.tokenLogin(t, "alice")
	f.clock.Advance(6 * time.Minute)
	r := f.do(t, nil, "GET", "/sensitive", nil, bearer(p.AccessToken))
	r.wantProblem(t, http.StatusUnauthorized, middleware.ReasonReauthenticationRequired)
	if ch := r.header.Get("Www-Authenticate"); !strings.Contains(ch, `error="insufficient_user_authentication"`) || !strings.Contains(ch, "max_age=300") {
		t.Errorf("WWW-Authenticate: got %q, want insufficient_user_authentication with max_age=300", ch)
	}
	rr := f.do(t, nil, "POST", "/sessions/current/reauthenticate",
		strings.NewReader(`{"username":"alice","password":"password"}`),
		http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + p.AccessToken}})
	if rr.status != http.StatusOK {
		t.Fatalf("re-authenticate: got %d (%s)", rr.status, rr.body)
	}
	var q tokenPair
	rr.decode(t, &q)
	if q.Session.ID != p.Session.ID || q.AccessToken == p.AccessToken || q.RefreshToken == p.RefreshToken {
		t.Fatalf("re-authenticate: %+v", q)
	}
	if r := f.do(t, nil, "GET", "/sensitive", nil, bearer(q.AccessToken)); r.status != http.StatusNoContent {
		t.Errorf("the new access token: got %d", r.status)
	}
	// The access token minted before the re-authentication is refused
	// everywhere, as the old refresh token is.
	for _, path := range []string{"/sessions/current", "/sensitive"} {
		r := f.do(t, nil, "GET", path, nil, bearer(p.AccessToken))
		r.wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
		if ch := strings.Join(r.header.Values("Www-Authenticate"), ", "); !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("%s with the old access token: WWW-Authenticate %q, want invalid_token", path, ch)
		}
	}
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken)
}
