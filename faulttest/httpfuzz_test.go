package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/internal/token"
)

// countingStore counts the sessions a Store created, so a fuzz target can
// tell exactly whether a request created one.
type countingStore struct {
	sessionkit.Store
	creates atomic.Int64
}

// Create implements sessionkit.Store.
func (c *countingStore) Create(ctx context.Context, call backend.Call, s sessionkit.Session, cred backend.Credentials, limit backend.Limit) (backend.Created, []sessionkit.Event, error) {
	out, events, err := c.Store.Create(ctx, call, s, cred, limit)
	if err == nil {
		c.creates.Add(1)
	}
	return out, events, err
}

// webFuzzEnv is the app a fuzzing process drives in process, for its whole
// life, on its own key prefix of the shared server, with a signed-in alice
// (two devices) and bob.
type webFuzzEnv struct {
	a                 *app
	st                *countingStore
	mu                sync.Mutex
	alice, aliceOther string // tokens
	bob               string
	ready             error
}

var (
	webFuzzOnce sync.Once
	webFuzz     webFuzzEnv
)

func webFuzzSetup(tb testing.TB) *webFuzzEnv {
	tb.Helper()
	srv := sharedServer(tb)
	webFuzzOnce.Do(func() {
		e := &webFuzz
		// Unlimited: fuzzed logins must not evict the sessions the checks rely on.
		f, err := sessiontest.Build(sessiontest.Options{
			Client: redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true}),
			Prefix: fmt.Sprintf("t:FuzzHTTP:%06x:", rand.Uint32()&0xffffff), RealTime: true,
			Wrap: func(s sessionkit.Store) sessionkit.Store { e.st = &countingStore{Store: s}; return e.st },
		}, withAppLogger([]sessionkit.Option{sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited))})...)
		if err != nil {
			e.ready = err
			return
		}
		e.a, e.ready = buildApp(&fixture{f}, appOptions{})
	})
	if webFuzz.ready != nil {
		tb.Fatal(webFuzz.ready)
	}
	return &webFuzz
}

// signIn logs username in, in process, and returns the token.
func (e *webFuzzEnv) signIn(tb testing.TB, username string) string {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/sessions", strings.NewReader(`{"username":"`+username+`","password":"password"}`))
	req.Header.Set("Content-Type", "application/json")
	r := e.a.serveRaw(req)
	c := r.sessionCookie()
	if r.status != http.StatusCreated || c == nil {
		tb.Fatalf("login of %s: got %d %s", username, r.status, r.body)
	}
	return c.Value
}

// valid reports whether tok is an active session, asking the Manager.
func (e *webFuzzEnv) valid(tb testing.TB, tok string) bool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.a.f.M.Authenticate(ctx, tok, testAddr)
	switch kind(err) {
	case "ok":
		return true
	case "revoked", "not_found":
		return false
	}
	tb.Fatalf("Authenticate: %v", err)
	return false
}

// ensure signs in whichever of the three sessions is not active.
func (e *webFuzzEnv) ensure(tb testing.TB) {
	tb.Helper()
	for _, s := range []struct {
		tok  *string
		user string
	}{{&e.alice, "alice"}, {&e.aliceOther, "alice"}, {&e.bob, "bob"}} {
		if *s.tok == "" || !e.valid(tb, *s.tok) {
			*s.tok = e.signIn(tb, s.user)
		}
	}
}

// checkResponse fails the test for a server error, or a response that is
// neither JSON nor problem JSON nor empty.
func checkResponse(t *testing.T, r response) {
	t.Helper()
	if r.status >= 500 {
		t.Fatalf("got %d %s: no input may cause a server error while Redis is healthy", r.status, r.body)
	}
	ct := r.header.Get("Content-Type")
	switch {
	case r.body == "":
	case ct == "application/json", ct == "application/problem+json":
		if !json.Valid([]byte(r.body)) {
			t.Fatalf("%s body is not JSON: %q", ct, r.body)
		}
	case r.status >= 300 && r.status < 400: // the mux's path-cleaning redirect
	default:
		t.Fatalf("got %d with Content-Type %q", r.status, ct)
	}
}

// FuzzLoginBody posts fuzzed bodies, content types and carried cookies to
// POST /sessions. Never a server error or a panic; a session is created,
// with exactly one Set-Cookie, if and only if the answer is 201; anything
// else sets no cookie and leaves a carried session untouched; a 201
// revokes the carried session and signs in one of the app's users.
func FuzzLoginBody(f *testing.F) {
	f.Add([]byte(`{"username":"alice","password":"password"}`), "application/json", uint8(0), "")
	f.Add([]byte(`{"username":"alice","password":"password"}`), "application/json; charset=utf-8", uint8(1), "")
	f.Add([]byte(`username=bob&password=password`), "application/x-www-form-urlencoded", uint8(0), "")
	f.Add([]byte(`{"username":"alice","password":"wrong"}`), "application/json", uint8(1), "")
	f.Add([]byte(`{"username":"alice"}`), "application/json", uint8(0), "")
	f.Add([]byte(`{"username":"alice","password":"password"`), "application/json", uint8(0), "")
	f.Add([]byte(`not json`), "text/plain", uint8(2), "__Host-session=garbage")
	f.Add([]byte(`{"username":["alice"],"password":{"x":1}}`), "application/json", uint8(0), "")

	f.Fuzz(func(t *testing.T, body []byte, contentType string, carry uint8, cookie string) {
		e := webFuzzSetup(t)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.ensure(t)

		req := httptest.NewRequest(http.MethodPost, "/sessions", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		carried := ""
		switch carry % 3 {
		case 1:
			carried = e.alice
			req.AddCookie(&http.Cookie{Name: cookieName, Value: carried})
		case 2:
			req.Header.Set("Cookie", cookie)
		}
		before := e.st.creates.Load()
		r := e.a.serveRaw(req)
		created := e.st.creates.Load() - before
		checkResponse(t, r)

		if r.status == http.StatusCreated {
			c := r.sessionCookie()
			if created != 1 || len(r.cookies) != 1 || c == nil || !token.Plausible(c.Value) {
				t.Fatalf("201 with %d sessions created and %d cookies, want 1 and 1", created, len(r.cookies))
			}
			var s struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal([]byte(r.body), &s); err != nil {
				t.Fatalf("201 body %q: %v", r.body, err)
			}
			known := false
			for _, id := range e.a.users {
				known = known || id.String() == s.UserID
			}
			if !known {
				t.Fatalf("201 signed in user %q, not one of the app's users", s.UserID)
			}
			if carried != "" && e.valid(t, carried) {
				t.Fatal("a login carrying a session left it valid (fixation)")
			}
			return
		}
		if created != 0 {
			t.Fatalf("got %d, but %d sessions were created", r.status, created)
		}
		if len(r.cookies) != 0 {
			t.Fatalf("got %d with %d Set-Cookie, want none", r.status, len(r.cookies))
		}
		if carried != "" && !e.valid(t, carried) {
			t.Fatalf("a refused login (%d) revoked the session it carried", r.status)
		}
	})
}

// FuzzSessionIDPath sends GET and DELETE /sessions/{id} with fuzzed ids
// (or real ids of the caller and of another user, with fuzzed bytes
// appended) as alice, or with no session. Never a server error or a panic;
// only the answers the contract allows; bob's session is never touched; a
// request without a session ends none; and alice's sessions end only by a
// DELETE that said so.
func FuzzSessionIDPath(f *testing.F) {
	f.Add(uint8(0), "00000000-0000-0000-0000-000000000000", false, uint8(0), true)
	f.Add(uint8(1), "not-a-uuid", false, uint8(0), true)
	f.Add(uint8(1), "../../etc/passwd", false, uint8(0), true)
	f.Add(uint8(1), strings.Repeat("a", 10<<10), false, uint8(0), true)
	f.Add(uint8(1), "current", false, uint8(0), true)
	f.Add(uint8(0), "events", false, uint8(0), true)
	f.Add(uint8(1), "", true, uint8(0), true) // alice's own current session by id
	f.Add(uint8(1), "", true, uint8(1), true) // alice's other session
	f.Add(uint8(1), "", true, uint8(2), true) // bob's session
	f.Add(uint8(0), "", true, uint8(2), true) // GET bob's session
	f.Add(uint8(1), "%2F..", true, uint8(5), true)
	f.Add(uint8(0), "x", false, uint8(0), false)

	f.Fuzz(func(t *testing.T, method uint8, id string, real bool, pick uint8, withCookie bool) {
		e := webFuzzSetup(t)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.ensure(t)

		idOf := func(tok string) string { return tok[:36] }
		targets := []string{idOf(e.alice), idOf(e.aliceOther), idOf(e.bob)}
		if real {
			base := targets[int(pick)%3]
			if pick&4 != 0 {
				id = base + id
			} else {
				id = base
			}
		}
		m := http.MethodGet
		if method%2 == 1 {
			m = http.MethodDelete
		}
		req := httptest.NewRequest(m, "/", nil)
		req.URL = &url.URL{Path: "/sessions/" + id}
		req.RequestURI = req.URL.RequestURI()
		if withCookie {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: e.alice})
		}
		aliceTok, otherTok, bobTok := e.alice, e.aliceOther, e.bob
		r := e.a.serveRaw(req)
		checkResponse(t, r)

		allowed := map[int]bool{301: true, 307: true, 308: true, 400: true, 401: true, 404: true, 405: true}
		if m == http.MethodDelete {
			allowed[204] = true // logout is idempotent: 204 even without a session
		}
		if withCookie {
			switch m {
			case http.MethodGet:
				allowed[200] = true
			case http.MethodDelete:
				allowed[204] = true
				allowed[200] = true // the path cleaned to DELETE /sessions: sign out everywhere else
			}
		}
		if !allowed[r.status] {
			t.Fatalf("%s /sessions/%q: got %d %s", m, id, r.status, r.body)
		}
		if r.status == http.StatusOK && m == http.MethodGet && strings.Contains(r.body, `"user_id"`) {
			if strings.Contains(r.body, e.a.users["bob"].String()) {
				t.Fatalf("GET /sessions/%q showed bob's session to alice", id)
			}
		}
		if !withCookie && !(e.valid(t, aliceTok) && e.valid(t, otherTok)) {
			t.Fatalf("%s /sessions/%q without a session (status %d) ended one of alice's sessions", m, id, r.status)
		}
		if !e.valid(t, bobTok) {
			t.Fatalf("%s /sessions/%q as alice revoked bob's session (status %d)", m, id, r.status)
		}
		if !e.valid(t, aliceTok) && !(m == http.MethodDelete && r.status == http.StatusNoContent) {
			t.Fatalf("alice's current session ended, but %s /sessions/%q answered %d", m, id, r.status)
		}
		if !e.valid(t, otherTok) && !(m == http.MethodDelete && (r.status == http.StatusNoContent || r.status == http.StatusOK)) {
			t.Fatalf("alice's other session ended, but %s /sessions/%q answered %d", m, id, r.status)
		}
	})
}
