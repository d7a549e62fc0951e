package handlers_test

// HTTP edge cases of the mounted routes: methods, body limits,
// content types, JSON oddities, step-up challenges, CSRF with bearer.

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// The admin routes answer a wrong method on a served path 405
// method_not_allowed with Allow, as the user routes do (http-api.md's
// error table), where they answered 404 not_found.
func TestAdminWrongMethodIs405WithAllow(t *testing.T) {
	f := operatorFixture(t, nil)
	op := f.client(t)
	f.login(t, op, "carol")
	alice := "/admin/users/" + f.alice.String()
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", alice + "/sessions", "GET, DELETE, HEAD"},
		{"PATCH", alice + "/limit", "PUT, DELETE"},
		{"GET", alice + "/impersonate", "POST"},
		{"OPTIONS", alice + "/sessions", "GET, DELETE, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := f.do(t, op, tc.method, tc.path, nil, nil)
			if r.status != http.StatusMethodNotAllowed {
				t.Errorf("got %d %s, want 405 method_not_allowed", r.status, strings.TrimSpace(string(r.body)))
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow: got %q, want %q", got, tc.allow)
			}
		})
	}
}

// An unknown route under /sessions or /admin is 404 not_found with a
// title about the route, not a session.
func TestUnknownRouteTitle(t *testing.T) {
	f := operatorFixture(t, nil)
	op := f.client(t)
	f.login(t, op, "carol")
	for _, path := range []string{"/sessions/nope/x", "/admin/nothing", "/admin/users/" + f.alice.String() + "/nothing"} {
		t.Run(path, func(t *testing.T) {
			r := f.do(t, op, "GET", path, nil, nil)
			r.wantProblem(t, http.StatusNotFound, middleware.ReasonNotFound)
			if p := r.problem(t); p.Title != "Not found" {
				t.Errorf("title: got %q, want %q", p.Title, "Not found")
			}
		})
	}
}

// OPTIONS (a CORS preflight carries no credentials) and HEAD on the user
// routes: 405 with Allow and problem JSON, or the GET's status, always with
// the session caching headers.
func TestOptionsAndHeadOnSessionRoutes(t *testing.T) {
	f := newFixture(t, setup{options: func(o *handlers.Options) { o.TrustedOrigins = []string{"https://app.example.com"} }})
	c := f.client(t)
	f.login(t, c, "alice")
	pre := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"DELETE"}}
	for _, tc := range []struct {
		method, path string
		client       *http.Client
		status       int
	}{
		{"OPTIONS", "/sessions", nil, 405},
		{"OPTIONS", "/sessions/current", nil, 405},
		{"HEAD", "/sessions", c, 200},
		{"HEAD", "/sessions", nil, 401},
		{"HEAD", "/sessions/token", nil, 401}, // GET /sessions/{id} matches: 400 invalid_id with a session
		{"HEAD", "/sessions/nope/x", nil, 404},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := f.do(t, tc.client, tc.method, tc.path, nil, pre)
			if r.status != tc.status {
				t.Fatalf("got %d, want %d", r.status, tc.status)
			}
			if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Vary") != "Cookie" {
				t.Errorf("caching headers: %v", r.header)
			}
		})
	}
}

// Bodies: limits with and without Content-Length, types, JSON oddities.
func TestLoginBodies(t *testing.T) {
	f := newFixture(t, setup{options: func(o *handlers.Options) { o.MaxBodyBytes = 256 }})
	creds := `{"username":"alice","password":"password"}`
	pad := strings.Repeat(" ", 300)
	cases := []struct {
		name, body, ctype string
		chunked           bool
		status            int
	}{
		{"over the limit, Content-Length", creds + pad, "application/json", false, 413},
		{"over the limit, chunked", creds + pad, "application/json", true, 413},
		{"no Content-Type", creds, "", false, 415},
		{"text/plain", creds, "text/plain", false, 415},
		{"json with charset", creds, "application/json; charset=utf-8", false, 201},
		{"upper-case media type", creds, "Application/JSON", false, 201},
		{"+json suffix", creds, "application/vnd.api+json", false, 415},
		{"unknown field", `{"username":"alice","password":"password","otp":"123"}`, "application/json", false, 201},
		{"trailing garbage", creds + `x`, "application/json", false, 400},
		{"second object", creds + `{}`, "application/json", false, 400},
		{"empty body", ``, "application/json", false, 400},
		{"null", `null`, "application/json", false, 400},
		{"array", `[]`, "application/json", false, 400},
		{"number password", `{"username":"alice","password":1}`, "application/json", false, 400},
		// encoding/json v1: duplicate keys, last wins, and keys match
		// case-insensitively. Forms refuse duplicates (400).
		{"case-insensitive key alone", `{"USERNAME":"alice","Password":"password"}`, "application/json", false, 201},
		{"form duplicate", `username=alice&username=bob&password=password`, "application/x-www-form-urlencoded", false, 400},
		{"form with semicolon", `username=alice;password=password`, "application/x-www-form-urlencoded", false, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.srv.URL+"/sessions", strings.NewReader(tc.body))
			if tc.chunked {
				req.Body = io.NopCloser(strings.NewReader(tc.body))
				req.ContentLength = -1
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("got %d (%s), want %d", resp.StatusCode, b, tc.status)
			}
			if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// RequireRecentAuth's and RequireLevel's 401 to a cookie session carries
// the Cookie challenge, as every other 401 of the package does (RFC 9110
// §15.5.2: a 401 sends one); it carried none.
func TestStepUp401CarriesAChallenge(t *testing.T) {
	f := newFixture(t, setup{})
	f.sensitive()
	c := f.client(t)
	f.login(t, c, "alice")
	f.clock.Advance(6 * time.Minute)
	for _, path := range []string{"/sensitive", "/strong"} {
		r := f.do(t, c, "GET", path, nil, nil)
		r.wantProblem(t, http.StatusUnauthorized, middleware.ReasonReauthenticationRequired)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate (headers %v)", path, r.header)
		}
	}
}

// A bearer request carries no ambient credential, yet the mounted
// POST/DELETE routes refuse it cross-origin like a cookie request: a
// browser SPA on another origin that uses access tokens must be listed in
// TrustedOrigins, which also opens those routes to that origin's cookie
// requests.
func TestBearerCrossOriginIsRefusedToo(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	pair, _ := f.tokenLogin(t, "alice")
	h := bearer(pair.AccessToken)
	h.Set("Origin", "https://spa.example")
	h.Set("Sec-Fetch-Site", "cross-site")
	r := f.do(t, nil, "DELETE", "/sessions/current", nil, h)
	r.wantProblem(t, http.StatusForbidden, middleware.ReasonCrossOrigin)
}

// A JSON body that names a field twice, letter case aside, is refused
// (400), as a form that repeats one is: encoding/json took the last, so the
// credentials checked were not those a proxy, WAF or rate limiter in front
// that reads the first "username" saw. The refresh route likewise.
func TestJSONDuplicateCredentialKeysAreRefused(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	for _, tc := range []struct{ name, path, body string }{
		{"login, repeated username", "/sessions", `{"username":"bob","username":"alice","password":"password"}`},
		{"login, username in two cases", "/sessions", `{"username":"bob","Username":"alice","password":"password"}`},
		{"login, repeated password", "/sessions", `{"username":"alice","password":"x","password":"password"}`},
		{"token login, repeated username", "/sessions/token", `{"username":"bob","USERNAME":"alice","password":"password"}`},
		{"refresh, repeated refresh_token", "/sessions/refresh", `{"refresh_token":"a","refresh_token":"b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, nil, "POST", tc.path, strings.NewReader(tc.body), jsonType)
			if r.status != http.StatusBadRequest {
				t.Errorf("got %d (%s), want 400 invalid_request, as a form with a repeated field", r.status, strings.TrimSpace(string(r.body)))
			}
		})
	}
}

var _ = errors.New
var _ = sessionkit.AAL2
