package main

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

var (
	sessionIDs = regexp.MustCompile(`data-session-id="([0-9a-f-]{36})"`)
	revokeIDs  = regexp.MustCompile(`action="/devices/([0-9a-f-]{36})/revoke"`)
)

// devices fetches /devices (or the page at path) and returns it and the
// session ids it lists.
func devices(t *testing.T, c *client, path ...string) (string, []string) {
	t.Helper()
	r := c.get(append(path, "/devices")[0])
	if r.Status != http.StatusOK {
		t.Fatalf("GET /devices: got %d (to %q), want 200", r.Status, r.Location)
	}
	var ids []string
	for _, m := range sessionIDs.FindAllStringSubmatch(r.Body, -1) {
		ids = append(ids, m[1])
	}
	return r.Body, ids
}

func TestLoginPage(t *testing.T) {
	ra := startApp(t, testConfig(t))
	tests := []struct {
		query string
		want  string // in the page; empty: no reason shown
	}{
		{"", ""},
		{"?reason=session_limit_exceeded", "You were signed out because you signed in on another device (session limit)."},
		{"?reason=session_revoked", "This session was revoked"},
		{"?reason=session_expired", "Your session expired"},
		{"?reason=session_idle", "period of inactivity"},
		{"?reason=signed_out", "You signed out."},
		{"?reason=%3Cscript%3Ealert(1)%3C/script%3E", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := newClient(t, ra.URL).get("/login" + tt.query)
			if r.Status != http.StatusOK {
				t.Fatalf("got status %d, want 200", r.Status)
			}
			if !strings.Contains(r.Body, `<form method="post" action="/login"`) {
				t.Errorf("got no login form in the page")
			}
			hasReason := strings.Contains(r.Body, `id="reason"`)
			if tt.want == "" && hasReason {
				t.Errorf("got a reason shown, want none")
			}
			if tt.want != "" && !strings.Contains(r.Body, tt.want) {
				t.Errorf("got page without %q", tt.want)
			}
			if strings.Contains(r.Body, "<script") {
				t.Errorf("got a <script> element in the page, want none")
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("got Content-Security-Policy %q, want default-src 'none'", csp)
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	ra := startApp(t, testConfig(t))
	tests := []struct {
		name, user, password string
		wantStatus           int
		wantText             string
	}{
		{"alice", "alice", "password", http.StatusSeeOther, ""},
		{"bob", "bob", "password", http.StatusSeeOther, ""},
		{"wrong password", "alice", "passw0rd", http.StatusUnauthorized, "Wrong username or password."},
		{"unknown user", "mallory", "password", http.StatusUnauthorized, "Wrong username or password."},
		{"empty", "", "", http.StatusUnauthorized, "Wrong username or password."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, ra.URL)
			r := c.post("/login", url.Values{"username": {tt.user}, "password": {tt.password}})
			if r.Status != tt.wantStatus {
				t.Fatalf("got status %d, want %d", r.Status, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusSeeOther {
				if !strings.Contains(r.Body, tt.wantText) {
					t.Errorf("got page without %q", tt.wantText)
				}
				if len(r.Cookies) != 0 {
					t.Errorf("got %d cookies on a refused login, want none", len(r.Cookies))
				}
				return
			}
			if r.Location != "/devices" {
				t.Errorf("got Location %q, want /devices", r.Location)
			}
			if len(r.Cookies) != 1 {
				t.Fatalf("got %d cookies, want 1", len(r.Cookies))
			}
			ck := r.Cookies[0]
			if ck.Name != "__Host-session" || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" ||
				ck.SameSite != http.SameSiteLaxMode || ck.MaxAge <= 0 {
				t.Errorf("got cookie %s; want __Host-session, Secure, HttpOnly, Path=/, no Domain, SameSite=Lax, Max-Age > 0", ck)
			}
			body, ids := devices(t, c)
			if len(ids) != 1 {
				t.Errorf("got %d devices, want 1", len(ids))
			}
			if !strings.Contains(body, ">"+tt.user+" <") {
				t.Errorf("got devices page not naming %s", tt.user)
			}
		})
	}
}

func TestPagesWithoutSession(t *testing.T) {
	ra := startApp(t, testConfig(t))
	c := newClient(t, ra.URL)
	tests := []struct {
		method, path string
	}{
		{http.MethodGet, "/devices"},
		{http.MethodPost, "/logout"},
		{http.MethodPost, "/devices/revoke-others"},
		{http.MethodGet, "/providers/schwab/accounts"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := c.do(tt.method, tt.path, url.Values{})
			if r.Status != http.StatusSeeOther || r.Location != "/login?reason=no_session" {
				t.Errorf("browser: got %d to %q, want 303 to /login?reason=no_session", r.Status, r.Location)
			}
			r = c.do(tt.method, tt.path, url.Values{}, "Accept", "application/json")
			if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Content-Type"), "application/problem+json") ||
				!strings.Contains(r.Body, `"reason":"no_session"`) {
				t.Errorf("API client: got %d %q %s, want 401 problem JSON with reason no_session", r.Status, r.Header.Get("Content-Type"), r.Body)
			}
		})
	}
	if r := c.get("/"); r.Status != http.StatusSeeOther || r.Location != "/login" {
		t.Errorf("GET /: got %d to %q, want 303 to /login", r.Status, r.Location)
	}
}

func TestTwoDevicesRevoke(t *testing.T) {
	ra := startApp(t, testConfig(t))
	laptop, phone := newClient(t, ra.URL), newClient(t, ra.URL)
	phone.header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
	laptop.login("alice")
	phone.login("alice")

	body, ids := devices(t, laptop)
	if len(ids) != 2 {
		t.Fatalf("got %d devices, want 2", len(ids))
	}
	if n := strings.Count(body, `id="this-device"`); n != 1 {
		t.Errorf("got %d \"this device\" badges, want 1", n)
	}
	for _, want := range []string{"Chrome 131 on Linux", "Safari on iPhone", "Sign out everywhere else", "This computer"} {
		if !strings.Contains(body, want) {
			t.Errorf("got devices page without %q", want)
		}
	}
	revoke := revokeIDs.FindAllStringSubmatch(body, -1)
	if len(revoke) != 1 {
		t.Fatalf("got %d revoke buttons, want 1 (none on this device)", len(revoke))
	}
	other := revoke[0][1]
	if other != ids[1] {
		t.Errorf("got the revoke button on %s, want it on the other device %s (this device is listed first)", other, ids[1])
	}

	r := laptop.post("/devices/"+other+"/revoke", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/devices" {
		t.Fatalf("revoke: got %d to %q, want 303 to /devices", r.Status, r.Location)
	}
	// The notice is a flash message in the session's data: shown once.
	const flash = `id="notice"`
	body, ids = devices(t, laptop, r.Location)
	if len(ids) != 1 || !strings.Contains(body, flash) || !strings.Contains(body, "Signed out Safari on iPhone.") {
		t.Errorf("after revoking: got %d devices, notice shown %v; want 1 and \"Signed out Safari on iPhone.\"", len(ids), strings.Contains(body, flash))
	}
	if again, _ := devices(t, laptop); strings.Contains(again, flash) {
		t.Error("the flash message was shown twice")
	}
	if !strings.Contains(body, "Signed out from another device") {
		t.Errorf("got a timeline without the revocation")
	}

	r = phone.get("/devices")
	if want := "/login?reason=session_revoked&revoked_reason=revoked_by_user"; r.Status != http.StatusSeeOther || r.Location != want {
		t.Fatalf("revoked phone: got %d to %q, want 303 to %s", r.Status, r.Location, want)
	}
	if len(phone.cookies) != 0 {
		t.Errorf("got the revoked cookie kept, want it cleared")
	}
	if page := phone.get(r.Location); !strings.Contains(page.Body, "This session was revoked") ||
		!strings.Contains(page.Body, "It was signed out from another device.") {
		t.Errorf("got a login page without the reason and the stored reason")
	}
	// A revoked_reason the page does not know is not echoed.
	if page := phone.get("/login?reason=session_revoked&revoked_reason=%3Cscript%3E"); strings.Contains(page.Body, "script") {
		t.Errorf("the login page echoed an unknown revoked_reason")
	}

	// The page's revoke of an id that is gone, foreign or malformed.
	for _, tt := range []struct {
		id         string
		wantStatus int
	}{
		{other, http.StatusSeeOther},                                  // already revoked: back to the list
		{"00000000-0000-0000-0000-000000000000", http.StatusSeeOther}, // unknown: the same
		{"not-a-uuid", http.StatusBadRequest},
		{ids[0], http.StatusBadRequest}, // this device: use sign out
	} {
		if r := laptop.post("/devices/"+tt.id+"/revoke", nil); r.Status != tt.wantStatus {
			t.Errorf("revoke %s: got %d, want %d", tt.id, r.Status, tt.wantStatus)
		}
	}
	if _, ids := devices(t, laptop); len(ids) != 1 {
		t.Errorf("got %d devices after the refused revokes, want 1", len(ids))
	}
}

func TestSignOutEverywhereElseAndSignOut(t *testing.T) {
	ra := startApp(t, testConfig(t))
	cs := []*client{newClient(t, ra.URL), newClient(t, ra.URL), newClient(t, ra.URL)}
	for _, c := range cs {
		c.login("alice")
	}
	r := cs[0].post("/devices/revoke-others", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/devices?revoked=2" {
		t.Fatalf("sign out everywhere else: got %d to %q, want 303 to /devices?revoked=2", r.Status, r.Location)
	}
	for i, c := range cs[1:] {
		if got, want := c.get("/devices").Location, "/login?reason=session_revoked&revoked_reason=logout_everywhere"; got != want {
			t.Errorf("other browser %d: got a redirect to %q, want %s", i+1, got, want)
		}
	}
	if _, ids := devices(t, cs[0]); len(ids) != 1 {
		t.Errorf("got %d devices left, want 1", len(ids))
	}

	old := cs[0].cookies["__Host-session"]
	r = cs[0].post("/logout", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/login?reason=signed_out" {
		t.Fatalf("sign out: got %d to %q, want 303 to /login?reason=signed_out", r.Status, r.Location)
	}
	if len(cs[0].cookies) != 0 {
		t.Errorf("got the cookie kept after signing out, want it cleared")
	}
	// Replaying the old cookie is refused with the reason.
	cs[0].cookies[old.Name] = old
	if got, want := cs[0].get("/devices").Location, "/login?reason=session_revoked&revoked_reason=logout"; got != want {
		t.Errorf("replayed cookie: got a redirect to %q, want %s", got, want)
	}
}

func TestSessionLimit(t *testing.T) {
	ra := startApp(t, testConfig(t))
	first, second := newClient(t, ra.URL), newClient(t, ra.URL)
	first.login("bob")
	r := second.login("bob")
	if r.Location != "/devices?evicted=1" {
		t.Errorf("second login: got Location %q, want /devices?evicted=1", r.Location)
	}
	body, ids := devices(t, second, r.Location)
	if len(ids) != 1 || !strings.Contains(body, "oldest session elsewhere was signed out") {
		t.Errorf("second browser: got %d devices, notice shown %v; want 1 device and the eviction notice", len(ids), strings.Contains(body, "oldest session elsewhere"))
	}
	if !strings.Contains(body, "Signed out by the session limit") {
		t.Errorf("got a timeline without the eviction")
	}
	r = first.get("/devices")
	if r.Status != http.StatusSeeOther || r.Location != "/login?reason=session_limit_exceeded" {
		t.Fatalf("evicted browser: got %d to %q, want 303 to /login?reason=session_limit_exceeded", r.Status, r.Location)
	}
	if page := first.get(r.Location); !strings.Contains(page.Body, "You were signed out because you signed in on another device (session limit).") {
		t.Errorf("got a login page without the eviction reason")
	}
	// Signing in again in the same browser replaces the session without
	// evicting anyone (bob's limit is one).
	second.login("bob")
	if _, ids := devices(t, second); len(ids) != 1 {
		t.Errorf("after a re-login: got %d devices, want 1", len(ids))
	}
}

func TestProviderAccounts(t *testing.T) {
	ra := startApp(t, testConfig(t))
	c := newClient(t, ra.URL)
	c.login("alice")

	r := c.get("/providers/schwab/accounts", "Accept", "application/json")
	if r.Status != http.StatusOK {
		t.Fatalf("JSON: got %d, want 200", r.Status)
	}
	var got providerAccountsView
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatalf("JSON: %v in %s", err, r.Body)
	}
	if got.Provider != "schwab" || len(got.Accounts) == 0 {
		t.Errorf("JSON: got provider %q with %d accounts, want schwab with some", got.Provider, len(got.Accounts))
	}
	if r := c.get("/providers/fidelity/accounts"); r.Status != http.StatusOK || !strings.Contains(r.Body, "Fidelity accounts") {
		t.Errorf("page: got %d, want 200 with the Fidelity accounts page", r.Status)
	}
	if r := c.get("/providers/bad%20name/accounts", "Accept", "application/json"); r.Status != http.StatusBadRequest {
		t.Errorf("invalid provider name: got %d, want 400", r.Status)
	}

	body, _ := devices(t, c)
	for _, want := range []string{`<span class="chip">Fidelity</span><span class="chip">Schwab</span>`, "Opened Schwab accounts", "Opened Fidelity accounts"} {
		if !strings.Contains(body, want) {
			t.Errorf("got devices page without %q", want)
		}
	}
}

func TestCrossOriginFormsRefused(t *testing.T) {
	ra := startApp(t, testConfig(t))
	victim, other := newClient(t, ra.URL), newClient(t, ra.URL)
	victim.login("alice")
	other.login("alice")
	for _, path := range []string{"/devices/revoke-others", "/logout", "/login"} {
		r := victim.post(path, url.Values{"username": {"alice"}, "password": {"password"}},
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if r.Status != http.StatusForbidden {
			t.Errorf("cross-site POST %s: got %d, want 403", path, r.Status)
		}
	}
	if _, ids := devices(t, victim); len(ids) != 2 {
		t.Errorf("got %d devices after refused cross-site forms, want 2", len(ids))
	}
	// Same-origin forms, as a browser sends them, pass.
	if r := victim.post("/devices/revoke-others", nil, "Sec-Fetch-Site", "same-origin", "Origin", ra.URL); r.Status != http.StatusSeeOther {
		t.Errorf("same-origin POST: got %d, want 303", r.Status)
	}
}

func TestSessionsAPI(t *testing.T) {
	ra := startApp(t, testConfig(t))
	c := newClient(t, ra.URL)
	c.header.Set("Accept", "application/json")
	r := c.do(http.MethodPost, "/sessions", nil)
	if r.Status != http.StatusUnsupportedMediaType {
		t.Errorf("POST /sessions without a body: got %d, want 415", r.Status)
	}
	r = c.post("/sessions", url.Values{"username": {"alice"}, "password": {"wrong"}})
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "invalid_credentials") {
		t.Errorf("bad password: got %d %s, want 401 invalid_credentials", r.Status, r.Body)
	}
	r = c.post("/sessions", url.Values{"username": {"alice"}, "password": {"password"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("login: got %d %s, want 201", r.Status, r.Body)
	}
	// The page login and the API login share the cookie: the page works.
	if _, ids := devices(t, c); len(ids) != 1 {
		t.Errorf("devices page after an API login: got %d devices, want 1", len(ids))
	}
	c.get("/providers/vanguard/accounts")
	r = c.get("/sessions")
	var list struct {
		Sessions []struct {
			IsCurrent         bool     `json:"is_current"`
			ProvidersAccessed []string `json:"providers_accessed"`
		} `json:"sessions"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(r.Body), &list); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /sessions: got %d %s (%v), want 200 JSON", r.Status, r.Body, err)
	}
	if list.Total != 1 || !list.Sessions[0].IsCurrent || strings.Join(list.Sessions[0].ProvidersAccessed, ",") != "vanguard" {
		t.Errorf("GET /sessions: got %+v, want one current session that accessed vanguard", list)
	}
	if r := c.get("/sessions/events"); r.Status != http.StatusOK || !strings.Contains(r.Body, `"provider_accessed"`) {
		t.Errorf("GET /sessions/events: got %d %s, want 200 with provider_accessed", r.Status, r.Body)
	}
}

func TestStoreDownIs503(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	cfg := testConfig(t)
	cfg.RedisURL = "redis://" + srv.Addr()
	ra := startApp(t, cfg)
	c := newClient(t, ra.URL)
	c.login("alice")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	r := c.get("/devices")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "store_unavailable") {
		t.Errorf("Redis down: got %d to %q, want 503 store_unavailable, never a redirect to sign in", r.Status, r.Location)
	}
	if len(c.cookies) != 1 {
		t.Errorf("Redis down: got the cookie cleared, want it kept")
	}
	r = c.post("/login", url.Values{"username": {"bob"}, "password": {"password"}})
	if r.Status != http.StatusServiceUnavailable || len(r.Cookies) != 0 {
		t.Errorf("login with Redis down: got %d with %d cookies, want 503 and none", r.Status, len(r.Cookies))
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The server lost its data (no persistence): the session is gone, and
	// the browser is sent to sign in. After failed dials, go-redis answers
	// with its last dial error until its background redial succeeds, so
	// the app may say 503 a little longer; only that is allowed meanwhile.
	redistest.WaitFor(10*time.Second, func() error {
		if r = c.get("/devices"); r.Status == http.StatusServiceUnavailable {
			return errors.New("still 503") // only this may last a little past the restart
		}
		return nil
	})
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Errorf("after Redis restarted empty: got %d to %q, want 303 to /login", r.Status, r.Location)
	}
}

func TestEmbeddedRedis(t *testing.T) {
	cfg := testConfig(t)
	cfg.RedisURL = ""
	ra := startApp(t, cfg)
	if out := ra.stdout.String(); !strings.Contains(out, "embedded in-memory Redis") || !strings.Contains(out, "REDIS_URL=redis://") {
		t.Errorf("got start-up output %q, want it to say Redis is embedded and how to use a real one", out)
	}
	laptop, phone := newClient(t, ra.URL), newClient(t, ra.URL)
	laptop.login("alice")
	phone.login("alice")
	if _, ids := devices(t, laptop); len(ids) != 2 {
		t.Fatalf("got %d devices, want 2", len(ids))
	}
	laptop.post("/devices/revoke-others", nil)
	if r, want := phone.get("/devices"), "/login?reason=session_revoked&revoked_reason=logout_everywhere"; r.Location != want {
		t.Errorf("revoked browser: got %d to %q, want %s", r.Status, r.Location, want)
	}
	c := newClient(t, ra.URL)
	c.header.Set("Accept", "application/json")
	if r := c.get("/providers/schwab/accounts"); r.Status != http.StatusUnauthorized {
		t.Errorf("no session: got %d, want 401", r.Status)
	}
}

func TestInsecureDevCookies(t *testing.T) {
	cfg := testConfig(t)
	cfg.InsecureCookies = true
	ra := startApp(t, cfg)
	c := newClient(t, ra.URL)
	r := c.login("alice")
	if len(r.Cookies) != 1 || r.Cookies[0].Name != "session" || r.Cookies[0].Secure || !r.Cookies[0].HttpOnly {
		t.Fatalf("got cookies %v, want one HttpOnly cookie \"session\" without Secure", r.Cookies)
	}
	if _, ids := devices(t, c); len(ids) != 1 {
		t.Errorf("got %d devices, want 1", len(ids))
	}
	// The API's login sets the same cookie: the API and the pages share one Authenticator.
	api := newClient(t, ra.URL)
	api.header.Set("Accept", "application/json")
	r = api.post("/sessions", url.Values{"username": {"alice"}, "password": {"password"}})
	if r.Status != http.StatusCreated || len(r.Cookies) != 1 || r.Cookies[0].Name != "session" || r.Cookies[0].Secure {
		t.Fatalf("API login: got %d, cookies %v; want 201 and one cookie \"session\" without Secure", r.Status, r.Cookies)
	}
	if _, ids := devices(t, api); len(ids) != 2 {
		t.Errorf("devices page after an API login: got %d devices, want 2", len(ids))
	}
}

func TestSessionsAPIErrorsAreProblemJSONForBrowsers(t *testing.T) {
	// The API shares the pages' Authenticator, whose error writer sends a
	// browser to the login page; the API's errors stay problem JSON.
	ra := startApp(t, testConfig(t))
	c := newClient(t, ra.URL)
	for _, tc := range []struct {
		method, path string
		status       int
		reason       string
	}{
		{http.MethodGet, "/sessions", http.StatusUnauthorized, "no_session"},
		{http.MethodGet, "/sessions/current", http.StatusUnauthorized, "no_session"},
		{http.MethodGet, "/sessions/events", http.StatusUnauthorized, "no_session"},
		{http.MethodGet, "/sessions/a/b", http.StatusNotFound, "not_found"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := c.do(tc.method, tc.path, nil)
			if r.Status != tc.status || !strings.Contains(r.Header.Get("Content-Type"), "application/problem+json") ||
				!strings.Contains(r.Body, `"reason":"`+tc.reason+`"`) {
				t.Errorf("browser: got %d to %q, %q %s; want %d problem JSON with reason %s",
					r.Status, r.Location, r.Header.Get("Content-Type"), r.Body, tc.status, tc.reason)
			}
		})
	}
	c.login("alice")
	r := c.get("/sessions/not-a-uuid")
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `"reason":"invalid_id"`) {
		t.Errorf("signed-in browser, bad id: got %d to %q %s, want 400 problem JSON invalid_id", r.Status, r.Location, r.Body)
	}
	if len(c.cookies) != 1 {
		t.Errorf("signed-in browser, bad id: got the cookie cleared, want it kept")
	}
}

// containsHTML reports whether page holds text, escaped as html/template
// escapes it.
func containsHTML(page, text string) bool {
	return strings.Contains(page, template.HTMLEscapeString(text))
}

// TestRejectingLimit: dave's tier allows two sessions and refuses a third
// sign-in rather than signing a device out.
func TestRejectingLimit(t *testing.T) {
	ra := startApp(t, testConfig(t))
	first, second, third := newClient(t, ra.URL), newClient(t, ra.URL), newClient(t, ra.URL)
	first.login("dave")
	second.login("dave")
	r := third.post("/login", url.Values{"username": {"dave"}, "password": {"password"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "signed in on 2 devices") {
		t.Fatalf("third sign-in: got %d, want 409 with the count", r.Status)
	}
	if len(third.cookies) != 0 {
		t.Error("a refused sign-in set a cookie")
	}
	for i, c := range []*client{first, second} {
		if _, ids := devices(t, c); len(ids) != 2 {
			t.Errorf("device %d: got %d devices, want 2", i+1, len(ids))
		}
	}
	// On a browser alice is signed in on, dave's refused sign-in leaves
	// her session as it was.
	shared := newClient(t, ra.URL)
	shared.login("alice")
	if r := shared.post("/login", url.Values{"username": {"dave"}, "password": {"password"}}); r.Status != http.StatusConflict {
		t.Fatalf("dave's sign-in on alice's browser: got %d, want 409", r.Status)
	}
	if _, ids := devices(t, shared); len(ids) != 1 {
		t.Errorf("alice after dave's refused sign-in: got %d devices, want her one", len(ids))
	}
}

// TestStepUpForVanguard: Vanguard's accounts need the password entered
// recently; past that, the page asks for it again, keeps the session, and
// continues to the accounts.
func TestStepUpForVanguard(t *testing.T) {
	cfg := testConfig(t)
	// A window a loaded machine does not pass between two requests.
	const window = time.Second
	cfg.reauthWithin = window
	ra := startApp(t, cfg)
	c := newClient(t, ra.URL)
	c.login("alice")
	if r := c.get("/providers/vanguard/accounts"); r.Status != http.StatusOK {
		t.Fatalf("just signed in: got %d", r.Status)
	}
	time.Sleep(window + 100*time.Millisecond)
	r := c.get("/providers/vanguard/accounts")
	if want := "/reauthenticate?next=%2Fproviders%2Fvanguard%2Faccounts"; r.Status != http.StatusSeeOther || r.Location != want {
		t.Fatalf("after the window: got %d to %q, want 303 to %s", r.Status, r.Location, want)
	}
	_, before := devices(t, c)
	page := c.get(r.Location)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Confirm it is you") {
		t.Fatalf("the re-authentication page: got %d", page.Status)
	}
	if w := c.post("/reauthenticate", url.Values{"password": {"wrong"}, "next": {"/providers/vanguard/accounts"}}); w.Status != http.StatusUnauthorized {
		t.Errorf("a wrong password: got %d, want 401", w.Status)
	}
	old := c.cookies["__Host-session"].Value
	done := c.post("/reauthenticate", url.Values{"password": {"password"}, "next": {"/providers/vanguard/accounts"}})
	if done.Status != http.StatusSeeOther || done.Location != "/providers/vanguard/accounts" {
		t.Fatalf("re-authenticate: got %d to %q", done.Status, done.Location)
	}
	if c.cookies["__Host-session"].Value == old {
		t.Error("the cookie did not rotate")
	}
	if r := c.get(done.Location); r.Status != http.StatusOK || !strings.Contains(r.Body, "Vanguard") {
		t.Errorf("after re-authenticating: got %d", r.Status)
	}
	if _, after := devices(t, c); len(after) != len(before) || after[0] != before[0] {
		t.Errorf("devices: got %v, want the same session %v", after, before)
	}
	// An open redirect is not: next stays on this site, also when a
	// browser would drop the tab or newline that splits "//" (WHATWG URL
	// parsing) or read a backslash as a slash.
	for _, next := range []string{"//evil.example/", "/\\evil.example/", "/\t/evil.example/", "/\n/evil.example/",
		"/\r/evil.example", "\t//evil.example/", "https://evil.example/", "/%09/evil.example/x\x00"} {
		if r := c.post("/reauthenticate", url.Values{"password": {"password"}, "next": {next}}); r.Location != "/devices" {
			t.Errorf("next=%q: got a redirect to %q, want /devices", next, r.Location)
		}
	}
	if r := c.post("/reauthenticate", url.Values{"password": {"password"}, "next": {"/providers/vanguard/accounts?x=1"}}); r.Location != "/providers/vanguard/accounts?x=1" {
		t.Errorf("a path of this site: got a redirect to %q", r.Location)
	}
}

var supportRevokeIDs = regexp.MustCompile(`action="/admin/page/users/alice/sessions/([0-9a-f-]{36})/revoke"`)

// TestSupportDesk: carol, a support agent, finds alice on /admin, signs her
// phone out and then every device, and opens a support session as bob;
// alice and bob see what carol did, and a support session cannot sign bob
// out everywhere.
func TestSupportDesk(t *testing.T) {
	ra := startApp(t, testConfig(t))
	ids := demoUsers()
	laptop, phone, carol := newClient(t, ra.URL), newClient(t, ra.URL), newClient(t, ra.URL)
	phone.header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
	laptop.login("alice")
	phone.login("alice")
	carol.login("carol")
	_, phoneIDs := devices(t, phone)

	r := carol.get("/admin")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `id="user-search"`) || !strings.Contains(r.Body, "support (carol)") {
		t.Fatalf("GET /admin: got %d, want 200 with the search form and carol's label", r.Status)
	}
	if r := carol.get("/admin?user=mallory"); r.Status != http.StatusOK || !strings.Contains(r.Body, `id="not-found"`) {
		t.Errorf("unknown user: got %d, want 200 saying no such user", r.Status)
	}
	r = carol.get("/admin?user=alice")
	if got := supportRevokeIDs.FindAllStringSubmatch(r.Body, -1); len(got) != 2 {
		t.Fatalf("alice's devices on /admin: got %d revoke buttons, want 2", len(got))
	}
	for _, want := range []string{"Safari on iPhone", "Chrome 131 on Linux", `id="revoke-all"`, `id="impersonate"`, "Signed in from"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("alice on /admin: got a page without %q", want)
		}
	}

	// One device: the phone.
	r = carol.post("/admin/page/users/alice/sessions/"+phoneIDs[0]+"/revoke", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/admin?user=alice&revoked=1" {
		t.Fatalf("revoke the phone: got %d to %q, want 303 to /admin?user=alice&revoked=1", r.Status, r.Location)
	}
	if page := carol.get(r.Location); !strings.Contains(page.Body, "Signed out 1 session.") || !strings.Contains(page.Body, "Signed out by support (carol)") {
		t.Errorf("carol's page after the revoke: want the notice and the event with its actor")
	}
	r = phone.get("/devices")
	if want := "/login?reason=session_revoked&revoked_reason=revoked_by_support"; r.Location != want {
		t.Fatalf("the revoked phone: got %d to %q, want %s", r.Status, r.Location, want)
	}
	if page := phone.get(r.Location); !strings.Contains(page.Body, "The support team signed it out.") {
		t.Errorf("got a login page that does not say support signed the phone out")
	}
	body, left := devices(t, laptop)
	if len(left) != 1 || !strings.Contains(body, "Signed out by support (carol)") {
		t.Errorf("alice's laptop: got %d devices, timeline with the support sign-out %v; want 1 and true",
			len(left), strings.Contains(body, "Signed out by support (carol)"))
	}

	// Every device.
	r = carol.post("/admin/page/users/alice/revoke-all", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/admin?user=alice&revoked=1" {
		t.Fatalf("revoke all: got %d to %q, want 303 to /admin?user=alice&revoked=1", r.Status, r.Location)
	}
	if got, want := laptop.get("/devices").Location, "/login?reason=session_revoked&revoked_reason=revoked_by_support"; got != want {
		t.Errorf("alice's laptop after revoke all: got a redirect to %q, want %s", got, want)
	}

	// The JSON admin API answers carol, and only her.
	api := "/admin/users/" + ids.named("alice").ID.String() + "/sessions"
	if r := carol.get(api, "Accept", "application/json"); r.Status != http.StatusOK || !strings.Contains(r.Body, `"sessions"`) {
		t.Errorf("carol, GET %s: got %d %s, want 200", api, r.Status, r.Body)
	}

	// A support session as bob: outside his limit of one, marked on his page.
	bob := newClient(t, ra.URL)
	bob.login("bob")
	r = carol.post("/admin/page/users/bob/impersonate", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/devices" {
		t.Fatalf("impersonate bob: got %d to %q, want 303 to /devices", r.Status, r.Location)
	}
	body, _ = devices(t, carol)
	if !containsHTML(body, "Support session for bob, opened by support (carol)") || strings.Contains(body, `id="revoke-others"`) {
		t.Errorf("carol as bob: want the support banner and no sign-out-everywhere button")
	}
	body, bobIDs := devices(t, bob)
	if len(bobIDs) != 2 || !containsHTML(body, "Support: support (carol)") || !containsHTML(body, "Support session opened by support (carol)") {
		t.Errorf("bob's page: got %d devices, badge %v; want 2 and the support badge and event", len(bobIDs), containsHTML(body, "Support: support (carol)"))
	}
	// What only bob may do is refused in a support session, as is the desk.
	if r := carol.post("/devices/revoke-others", nil); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "impersonation_forbidden") {
		t.Errorf("support session, sign out everywhere else: got %d, want 403 impersonation_forbidden", r.Status)
	}
	if r := carol.get("/admin"); r.Status != http.StatusForbidden {
		t.Errorf("support session, GET /admin: got %d, want 403", r.Status)
	}
	if _, bobIDs := devices(t, bob); len(bobIDs) != 2 {
		t.Errorf("bob after the refused sign-out: got %d devices, want 2", len(bobIDs))
	}
}

// TestSupportDeskRefused: the support desk and the JSON admin routes refuse
// a user who is not a support agent, and a cross-site form.
func TestSupportDeskRefused(t *testing.T) {
	ra := startApp(t, testConfig(t))
	ids := demoUsers()
	alice, carol := newClient(t, ra.URL), newClient(t, ra.URL)
	alice.login("alice")
	carol.login("carol")
	bobID := ids.named("bob").ID.String()
	for _, tt := range []struct {
		method, path, accept string
		wantJSON             bool
	}{
		{http.MethodGet, "/admin", "", false},
		{http.MethodGet, "/admin?user=bob", "", false},
		{http.MethodPost, "/admin/page/users/bob/impersonate", "", false},
		{http.MethodPost, "/admin/page/users/bob/revoke-all", "", false},
		{http.MethodGet, "/admin/users/" + bobID + "/sessions", "application/json", true},
		{http.MethodGet, "/admin/users/" + bobID + "/sessions", "", true}, // a browser too gets JSON there
		{http.MethodDelete, "/admin/users/" + bobID + "/sessions", "application/json", true},
		{http.MethodPost, "/admin/users/" + bobID + "/impersonate", "application/json", true},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var extra []string
			if tt.accept != "" {
				extra = []string{"Accept", tt.accept}
			}
			r := alice.do(tt.method, tt.path, url.Values{}, extra...)
			if r.Status != http.StatusForbidden {
				t.Fatalf("alice: got %d to %q, want 403", r.Status, r.Location)
			}
			if isJSON := strings.Contains(r.Header.Get("Content-Type"), "application/problem+json"); isJSON != tt.wantJSON ||
				!strings.Contains(r.Body, "forbidden") {
				t.Errorf("alice: got %q %s, want problem JSON %v with reason forbidden", r.Header.Get("Content-Type"), r.Body, tt.wantJSON)
			}
		})
	}
	if _, got := devices(t, alice); len(got) != 1 {
		t.Errorf("alice after the refusals: got %d devices, want 1", len(got))
	}
	// carol's forms, sent from another site, are refused too.
	r := carol.post("/admin/page/users/alice/revoke-all", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if r.Status != http.StatusForbidden {
		t.Errorf("cross-site support form: got %d, want 403", r.Status)
	}
	if r := carol.post("/admin/page/users/mallory/revoke-all", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown user: got %d, want 404", r.Status)
	}
	if _, got := devices(t, alice); len(got) != 1 {
		t.Errorf("alice after the refused forms: got %d devices, want 1", len(got))
	}
}

// TestSupportDeskNeedsARecentPassword: the support desk acts on other
// users' accounts, so, like Vanguard's accounts, it needs carol's password
// entered recently: past that, the page and its forms ask for it again,
// and a form does nothing until she has.
func TestSupportDeskNeedsARecentPassword(t *testing.T) {
	cfg := testConfig(t)
	// A window a loaded machine does not pass between two requests.
	const window = time.Second
	cfg.reauthWithin = window
	ra := startApp(t, cfg)
	alice, carol := newClient(t, ra.URL), newClient(t, ra.URL)
	alice.login("alice")
	carol.login("carol")
	if r := carol.get("/admin?user=alice"); r.Status != http.StatusOK {
		t.Fatalf("just signed in: got %d", r.Status)
	}
	time.Sleep(window + 100*time.Millisecond)
	if r := carol.get("/admin?user=alice"); r.Status != http.StatusSeeOther || r.Location != "/reauthenticate?next=%2Fadmin%3Fuser%3Dalice" {
		t.Errorf("the page after the window: got %d to %q", r.Status, r.Location)
	}
	r := carol.post("/admin/page/users/alice/revoke-all", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/reauthenticate?next=%2Fadmin%3Fuser%3Dalice" {
		t.Errorf("a form after the window: got %d to %q", r.Status, r.Location)
	}
	if r := alice.get("/devices"); r.Status != http.StatusOK {
		t.Fatalf("alice after the refused form: got %d", r.Status)
	}
	aliceID := demoUsers().named("alice").ID.String()
	if r := carol.get("/admin/users/" + aliceID + "/sessions"); r.Status != http.StatusForbidden {
		t.Errorf("the JSON admin routes after the window: got %d, want 403", r.Status)
	}
	if r := carol.post("/reauthenticate", url.Values{"password": {"password"}, "next": {"/admin?user=alice"}}); r.Location != "/admin?user=alice" {
		t.Fatalf("re-authenticating: got a redirect to %q", r.Location)
	}
	if r := carol.post("/admin/page/users/alice/revoke-all", nil); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/admin?user=alice") {
		t.Errorf("the form after re-authenticating: got %d to %q", r.Status, r.Location)
	}
}
