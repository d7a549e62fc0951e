package handlers_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
)

const (
	testIssuer = "https://api.example.test"
	testGrace  = 10 * time.Second
	testTTL    = 5 * time.Minute
)

// tokenPair is the answer of the token routes.
type tokenPair struct {
	Session          handlers.SessionJSON `json:"session"`
	TokenType        string               `json:"token_type"`
	AccessToken      string               `json:"access_token"`
	ExpiresIn        int64                `json:"expires_in"`
	RefreshToken     string               `json:"refresh_token"`
	RefreshExpiresIn int64                `json:"refresh_expires_in"`
}

func newSigningKey(t *testing.T) crypto.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func accessTokens(key crypto.Signer) sessionkit.Option {
	return sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
		SigningKeys: []crypto.Signer{key}, Issuer: testIssuer, TTL: testTTL, RefreshGrace: testGrace,
	})
}

// tokenSetup is a fixture whose Manager issues bearer tokens and whose
// Authenticator accepts them; more adds Manager options.
func tokenSetup(t *testing.T, more ...sessionkit.Option) setup {
	return setup{
		mopts:   append([]sessionkit.Option{accessTokens(newSigningKey(t))}, more...),
		session: func(o *middleware.Options) { o.AllowBearer = true },
	}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// tokenLogin signs user in for tokens.
func (f *fixture) tokenLogin(t *testing.T, user string) (tokenPair, response) {
	t.Helper()
	f.clock.Advance(time.Millisecond)
	r := f.do(t, nil, "POST", "/sessions/token", strings.NewReader(`{"username":"`+user+`","password":"password"}`),
		http.Header{"Content-Type": {"application/json"}, "User-Agent": {chromeMac}})
	if r.status != http.StatusCreated {
		t.Fatalf("token login %s: got %d (%s), want 201", user, r.status, r.body)
	}
	var p tokenPair
	r.decode(t, &p)
	return p, r
}

// refresh posts a refresh token.
func (f *fixture) refresh(t *testing.T, rt string) response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": rt})
	return f.do(t, nil, "POST", "/sessions/refresh", strings.NewReader(string(body)), jsonType)
}

func TestTokenSignIn(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, r := f.tokenLogin(t, "alice")
	if r.sessionCookie() != nil || len(r.resp.Cookies()) != 0 {
		t.Errorf("token sign-in set a cookie: %v", r.resp.Cookies())
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	if p.TokenType != "Bearer" || p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("pair: %+v", p)
	}
	if p.ExpiresIn != int64(testTTL/time.Second) || p.RefreshExpiresIn != int64(30*24*time.Hour/time.Second) {
		t.Errorf("expires_in %d, refresh_expires_in %d; want %d and 30 days", p.ExpiresIn, p.RefreshExpiresIn, int64(testTTL/time.Second))
	}
	if p.Session.Credential != "bearer" || !p.Session.IsCurrent || p.Session.UserID != f.alice {
		t.Errorf("session: credential %q, is_current %v, user %v", p.Session.Credential, p.Session.IsCurrent, p.Session.UserID)
	}
	if secret := strings.SplitN(p.RefreshToken, ".", 3)[2]; f.logs.Count(secret) != 0 || f.logs.Count(p.AccessToken) != 0 {
		t.Error("a token reached the log")
	}

	// The access token authenticates the session routes.
	cur := f.do(t, nil, "GET", "/sessions/current", nil, bearer(p.AccessToken))
	if cur.status != http.StatusOK {
		t.Fatalf("GET /sessions/current with the access token: got %d (%s)", cur.status, cur.body)
	}
	var s handlers.SessionJSON
	cur.decode(t, &s)
	if s.ID != p.Session.ID || !s.IsCurrent {
		t.Errorf("current: got %v (current %v), want %v", s.ID, s.IsCurrent, p.Session.ID)
	}

	// A form works too; bad credentials are 401 invalid_credentials.
	form := f.do(t, nil, "POST", "/sessions/token", strings.NewReader("username=bob&password=password"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if form.status != http.StatusCreated {
		t.Errorf("form sign-in: got %d (%s)", form.status, form.body)
	}
	f.do(t, nil, "POST", "/sessions/token", strings.NewReader(`{"username":"alice","password":"wrong"}`), jsonType).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidCredentials)

	// Token sessions and cookie sessions are listed side by side, told apart.
	c := f.client(t)
	f.login(t, c, "alice")
	var list struct {
		Sessions []handlers.SessionJSON `json:"sessions"`
	}
	f.do(t, c, "GET", "/sessions", nil, nil).decode(t, &list)
	kinds := map[string]int{}
	for _, s := range list.Sessions {
		kinds[s.Credential]++
	}
	if kinds["bearer"] != 1 || kinds["cookie"] != 1 {
		t.Errorf("credentials listed: got %v, want one bearer and one cookie", kinds)
	}
}

func TestRefreshRotatesAndKeepsTheSession(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	f.clock.Advance(2 * time.Minute)
	calls := f.calls.RoundTrips()
	r := f.refresh(t, p.RefreshToken)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: got %d (%s)", r.status, r.body)
	}
	if n := f.calls.RoundTrips() - calls; n != 1 {
		t.Errorf("refresh: %d round trips, want 1", n)
	}
	var q tokenPair
	r.decode(t, &q)
	if q.Session.ID != p.Session.ID {
		t.Errorf("session id: got %v, want %v (kept)", q.Session.ID, p.Session.ID)
	}
	if q.RefreshToken == p.RefreshToken || q.AccessToken == p.AccessToken {
		t.Error("refresh returned the same tokens")
	}
	if !q.Session.LastActivityAt.Equal(f.clock.Now().UTC().Truncate(time.Millisecond)) {
		t.Errorf("activity: got %v, want %v", q.Session.LastActivityAt, f.clock.Now())
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q", got)
	}
	if s := f.do(t, nil, "GET", "/sessions/current", nil, bearer(q.AccessToken)); s.status != http.StatusOK {
		t.Errorf("the new access token: got %d (%s)", s.status, s.body)
	}
	// The device list did not change: still one session.
	if n := f.countSessions(t, f.alice); n != 1 {
		t.Errorf("sessions after refresh: got %d, want 1", n)
	}
	// Refreshing again with the new token works.
	f.clock.Advance(time.Minute)
	if r := f.refresh(t, q.RefreshToken); r.status != http.StatusOK {
		t.Errorf("second refresh: got %d (%s)", r.status, r.body)
	}
}

func TestRefreshGraceThenReuseRevokes(t *testing.T) {
	var hooked sync.Map
	f := newFixture(t, tokenSetup(t, sessionkit.WithHook(func(_ context.Context, e sessionkit.Event) {
		if e.Type == sessionkit.EventRevoked {
			hooked.Store(e.Reason, e.SessionID)
		}
	})))
	p, _ := f.tokenLogin(t, "alice")
	var q tokenPair
	f.refresh(t, p.RefreshToken).decode(t, &q)

	// Within the grace window the superseded token gets the current one.
	f.clock.Advance(testGrace - time.Second)
	var again tokenPair
	r := f.refresh(t, p.RefreshToken)
	if r.status != http.StatusOK {
		t.Fatalf("retry within the grace window: got %d (%s)", r.status, r.body)
	}
	r.decode(t, &again)
	if again.RefreshToken != q.RefreshToken {
		t.Errorf("retry: refresh token %q, want the current %q", again.RefreshToken, q.RefreshToken)
	}

	// After it, the superseded token revokes the session.
	f.clock.Advance(2 * time.Second)
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
	f.do(t, nil, "GET", "/sessions/current", nil, bearer(q.AccessToken)).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
	f.refresh(t, q.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
	// One reuse, one revocation, one warning: the refusals after it revoke
	// nothing, and say so at debug only.
	if n := f.logs.Count("level=WARN msg=\"sessionkit: a replaced refresh token was used again"); n != 1 {
		t.Errorf("reuse warnings: got %d, want 1\n%s", n, f.logs.String())
	}

	s, err := f.m.Session(t.Context(), p.Session.ID)
	if err != nil || s.RevokedReason != sessionkit.ReasonRefreshReused {
		t.Errorf("session: revoked %q, %v; want %s", s.RevokedReason, err, sessionkit.ReasonRefreshReused)
	}
	events, err := f.m.Events(t.Context(), f.alice, sessionkit.EventQuery{})
	if err != nil || len(events) == 0 || events[0].Type != sessionkit.EventRevoked || events[0].Reason != sessionkit.ReasonRefreshReused {
		t.Errorf("newest event: %+v, %v; want session_revoked refresh_token_reused", events, err)
	}
	if err := f.m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if id, ok := hooked.Load(sessionkit.ReasonRefreshReused); !ok || id != p.Session.ID {
		t.Errorf("hook: got %v %v, want the session's revocation", id, ok)
	}
}

// TestRefreshReuseOfOlderTokenRevokes: a refresh token two or more
// rotations old, presented again, revokes the session as the one just
// superseded does after the grace window (RFC 9700 §4.14.2): whoever
// rotated a stolen token on, the other party's replay ends the family.
func TestRefreshReuseOfOlderTokenRevokes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rotate  int  // refreshes before the replay, each with the token the last one returned
		replay  int  // which token is replayed: 0 is the one from sign-in
		inGrace bool // the replay comes within the grace window of the last rotation
	}{
		{name: "two rotations old", rotate: 2, replay: 0},
		{name: "two rotations old, within the grace window", rotate: 2, replay: 0, inGrace: true},
		{name: "five rotations old", rotate: 5, replay: 1},
		{name: "the one just superseded, after the grace window", rotate: 1, replay: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tokenSetup(t))
			p, _ := f.tokenLogin(t, "alice")
			held := []tokenPair{p}
			for range tc.rotate {
				f.clock.Advance(time.Minute)
				var q tokenPair
				r := f.refresh(t, held[len(held)-1].RefreshToken)
				if r.status != http.StatusOK {
					t.Fatalf("rotation %d: got %d (%s)", len(held), r.status, r.body)
				}
				r.decode(t, &q)
				held = append(held, q)
			}
			if tc.inGrace {
				f.clock.Advance(time.Second)
			} else {
				f.clock.Advance(time.Minute)
			}
			f.refresh(t, held[tc.replay].RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
			current := held[len(held)-1]
			f.refresh(t, current.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
			f.do(t, nil, "GET", "/sessions/current", nil, bearer(current.AccessToken)).
				wantProblem(t, http.StatusUnauthorized, middleware.ReasonRefreshReused)
			if s, err := f.m.Session(t.Context(), p.Session.ID); err != nil || s.RevokedReason != sessionkit.ReasonRefreshReused {
				t.Errorf("session: revoked %q, %v; want %s", s.RevokedReason, err, sessionkit.ReasonRefreshReused)
			}
		})
	}
}

// TestRefreshForgedFamilyRevokesNothing: a session's id is not secret (the
// device list shows it), so tokens made up around it, in either form, are
// unknown and end nothing; the genuine token works after them all.
func TestRefreshForgedFamilyRevokesNothing(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	var q tokenPair
	f.clock.Advance(time.Minute)
	f.refresh(t, p.RefreshToken).decode(t, &q)
	f.clock.Advance(time.Minute)
	other, _ := f.tokenLogin(t, "alice") // another session of the same user: another family
	id, _, _ := strings.Cut(p.RefreshToken, ".")
	zero := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	parts := strings.Split(q.RefreshToken, ".") // id, generation, family, secret
	if len(parts) != 4 {
		t.Fatalf("refresh token %q: %d parts, want 4", q.RefreshToken, len(parts))
	}
	otherParts := strings.Split(other.RefreshToken, ".")
	for name, rt := range map[string]string{
		"a made-up family, generation 0":  id + ".0." + zero + "." + zero,
		"a made-up family, generation 1":  id + ".1." + zero + "." + parts[3],
		"another session's family":        id + ".0." + otherParts[2] + "." + otherParts[3],
		"the current secret, no family":   id + ".1." + parts[3],
		"the current secret, made-up one": id + ".1." + zero + "." + parts[3],
	} {
		t.Run(name, func(t *testing.T) {
			f.refresh(t, rt).wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken)
		})
	}
	if r := f.refresh(t, q.RefreshToken); r.status != http.StatusOK {
		t.Errorf("the genuine token: got %d (%s)", r.status, r.body)
	}
}

func TestConcurrentRefreshesLeaveOneToken(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	const n = 20
	var wg sync.WaitGroup
	results := make([]sessionkit.RefreshSessionResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = f.m.RefreshSession(t.Context(), sessionkit.RefreshSession{RefreshToken: p.RefreshToken})
		})
	}
	wg.Wait()
	rotated, tokens := 0, map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if results[i].Rotated {
			rotated++
		}
		tokens[results[i].Tokens.RefreshToken] = true
	}
	if rotated != 1 || len(tokens) != 1 {
		t.Errorf("%d concurrent refreshes: %d rotated, %d distinct refresh tokens; want 1 and 1", n, rotated, len(tokens))
	}
}

func TestRefreshRefusals(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	_, cookie := f.login(t, f.client(t), "bob")
	id, _, _ := strings.Cut(p.RefreshToken, ".")
	forged := id + ".0." + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for name, rt := range map[string]string{
		"garbage":                "garbage",
		"a forged secret":        forged,
		"a later generation":     id + ".1." + p.RefreshToken[len(p.RefreshToken)-43:],
		"an access token":        p.AccessToken,
		"a session cookie token": cookie,
		"oversized":              strings.Repeat("a", 4096),
	} {
		t.Run(name, func(t *testing.T) {
			f.refresh(t, rt).wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken)
		})
	}
	for name, body := range map[string]string{
		"no field":   `{}`,
		"not JSON":   `refresh_token=x`,
		"a number":   `{"refresh_token": 7}`,
		"empty":      `{"refresh_token": ""}`,
		"two values": `{"refresh_token": "a", "refresh_token": 1}`,
	} {
		t.Run(name, func(t *testing.T) {
			f.do(t, nil, "POST", "/sessions/refresh", strings.NewReader(body), jsonType).
				wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidRequest)
		})
	}
	// A refresh token is never an access token: refused before Redis.
	calls := f.calls.Commands()
	f.do(t, nil, "GET", "/sessions/current", nil, bearer(p.RefreshToken)).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
	if n := f.calls.Commands() - calls; n != 0 {
		t.Errorf("a refresh token as bearer cost %d Redis commands, want 0", n)
	}
	// The genuine token still works after all that.
	if r := f.refresh(t, p.RefreshToken); r.status != http.StatusOK {
		t.Errorf("the genuine token: got %d (%s)", r.status, r.body)
	}
}

// TestAccessTokenRefusals sends access tokens an attacker could craft: each
// is 401 no_session with no Redis call.
func TestAccessTokenRefusals(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	other := newFixture(t, tokenSetup(t)) // another app: other keys
	op, _ := other.tokenLogin(t, "alice")
	parts := strings.Split(p.AccessToken, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(payload), f.alice.String(), f.bob.String(), 1)
	cases := map[string]string{
		"alg none":         b64([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".",
		"tampered payload": parts[0] + "." + b64([]byte(tampered)) + "." + parts[2],
		"bad signature":    parts[0] + "." + parts[1] + "." + b64(make([]byte, 64)),
		"another app's":    op.AccessToken,
		"truncated":        p.AccessToken[:len(p.AccessToken)-10],
		"oversized":        "eyJ" + strings.Repeat("a", 5000) + ".a.b",
		"garbage":          "eyJhbGciOi.J9.xyz",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			calls := f.calls.Commands()
			f.do(t, nil, "GET", "/sessions/current", nil, bearer(tok)).
				wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
			if n := f.calls.Commands() - calls; n != 0 {
				t.Errorf("%d Redis commands, want 0", n)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.clock.Advance(testTTL)
		calls := f.calls.Commands()
		f.do(t, nil, "GET", "/sessions/current", nil, bearer(p.AccessToken)).
			wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
		if n := f.calls.Commands() - calls; n != 0 {
			t.Errorf("%d Redis commands, want 0", n)
		}
	})
}

func TestAccessTokensRevokedAtOnce(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	phone, _ := f.tokenLogin(t, "alice")
	laptop, _ := f.tokenLogin(t, "alice")

	// Revoked from another device: refused now, not at exp.
	if r := f.do(t, nil, "DELETE", "/sessions/"+phone.Session.ID.String(), nil, bearer(laptop.AccessToken)); r.status != http.StatusNoContent {
		t.Fatalf("revoke the phone: got %d (%s)", r.status, r.body)
	}
	f.do(t, nil, "GET", "/sessions/current", nil, bearer(phone.AccessToken)).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
	// A genuine refresh token of a revoked session says why.
	f.refresh(t, phone.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)

	// Sign-out with the access token revokes the session and its refresh token.
	if r := f.do(t, nil, "DELETE", "/sessions/current", nil, bearer(laptop.AccessToken)); r.status != http.StatusNoContent {
		t.Fatalf("sign out: got %d (%s)", r.status, r.body)
	}
	f.refresh(t, laptop.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)

	// Sign out everywhere with a bearer token.
	a, _ := f.tokenLogin(t, "alice")
	b, _ := f.tokenLogin(t, "alice")
	r := f.do(t, nil, "DELETE", "/sessions", nil, bearer(a.AccessToken))
	if r.status != http.StatusOK {
		t.Fatalf("sign out everywhere else: got %d (%s)", r.status, r.body)
	}
	f.do(t, nil, "GET", "/sessions/current", nil, bearer(b.AccessToken)).
		wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
	if r := f.do(t, nil, "GET", "/sessions/current", nil, bearer(a.AccessToken)); r.status != http.StatusOK {
		t.Errorf("the kept session: got %d", r.status)
	}
}

func TestTokenRoutesStoreDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := tokenSetup(t)
	s.server = srv
	f := newFixture(t, s)
	p, _ := f.tokenLogin(t, "alice")
	srv.Stop()
	r := f.do(t, nil, "POST", "/sessions/token", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType)
	r.wantProblem(t, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable)
	if strings.Contains(string(r.body), "access_token") {
		t.Error("a token in the 503")
	}
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable)
	f.do(t, nil, "GET", "/sessions/current", nil, bearer(p.AccessToken)).
		wantProblem(t, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable)
}

func TestTokenRoutesCrossSiteAndCookies(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	c := f.client(t)
	_, cookie := f.login(t, c, "alice")
	// A cross-site browser request to the token routes is refused.
	cross := http.Header{"Content-Type": {"application/json"}, "Sec-Fetch-Site": {"cross-site"}}
	f.do(t, c, "POST", "/sessions/token", strings.NewReader(`{"username":"alice","password":"password"}`), cross).
		wantProblem(t, http.StatusForbidden, middleware.ReasonCrossOrigin)
	// A same-site token sign-in from a browser holding a cookie neither
	// reads nor revokes the cookie's session.
	if r := f.do(t, c, "POST", "/sessions/token", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType); r.status != http.StatusCreated {
		t.Fatalf("token sign-in: got %d", r.status)
	}
	if r := f.do(t, nil, "GET", "/sessions/current", nil, withToken(cookie)); r.status != http.StatusOK {
		t.Errorf("the cookie session after a token sign-in: got %d (%s)", r.status, r.body)
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	r := f.do(t, nil, "GET", "/sessions/jwks.json", nil, nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: got %d %q", r.status, r.header.Get("Content-Type"))
	}
	if cc, sniff := r.header.Get("Cache-Control"), r.header.Get("X-Content-Type-Options"); cc != "public, max-age=300" || sniff != "nosniff" {
		t.Errorf("jwks: Cache-Control %q, X-Content-Type-Options %q; want public, max-age=300 and nosniff", cc, sniff)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	r.decode(t, &set)
	head, _ := base64.RawURLEncoding.DecodeString(strings.Split(p.AccessToken, ".")[0])
	var h struct {
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(head, &h); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0]["kid"] != h.Kid || set.Keys[0]["d"] != nil {
		t.Errorf("keys %v; want one, kid %q, no private part", set.Keys, h.Kid)
	}
	if h.Typ != "at+jwt" {
		t.Errorf("typ: got %q, want at+jwt", h.Typ)
	}
}

func TestTokenRoutesWithoutAccessTokens(t *testing.T) {
	f := newFixture(t, setup{})
	f.do(t, nil, "POST", "/sessions/token", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType).
		wantProblem(t, http.StatusNotFound, middleware.ReasonTokensDisabled)
	f.refresh(t, "x").wantProblem(t, http.StatusNotFound, middleware.ReasonTokensDisabled)
	f.do(t, nil, "GET", "/sessions/jwks.json", nil, nil).wantProblem(t, http.StatusNotFound, middleware.ReasonTokensDisabled)
	if _, err := f.m.CreateSession(t.Context(), sessionkit.CreateSession{UserID: f.alice, IPAddress: "203.0.113.7", Bearer: true}); !errors.Is(err, sessionkit.ErrInvalid) {
		t.Errorf("CreateSession.Bearer without access tokens: got %v, want ErrInvalid", err)
	}
}

// TestRenewBearerSession: renewal rotates a bearer session's refresh token
// with no grace window, into a new family, and keeps the session id.
func TestRenewBearerSession(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	p, _ := f.tokenLogin(t, "alice")
	s, err := f.m.Session(t.Context(), p.Session.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.m.RenewSession(t.Context(), s, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.ID != p.Session.ID || res.Token != "" || res.Tokens.RefreshToken == "" || res.Tokens.RefreshToken == p.RefreshToken {
		t.Fatalf("renew: id %v, token %q, tokens %+v", res.Session.ID, res.Token, res.Tokens)
	}
	// The refresh token held before the renewal gets nothing, at once.
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken)
	r := f.refresh(t, res.Tokens.RefreshToken)
	if r.status != http.StatusOK {
		t.Fatalf("the renewed refresh token: got %d (%s)", r.status, r.body)
	}
	var q tokenPair
	r.decode(t, &q)
	// Nor, being of the family before the renewal, does it ever revoke the
	// session, however far the new family has rotated.
	f.clock.Advance(time.Minute)
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken)
	if r := f.refresh(t, q.RefreshToken); r.status != http.StatusOK {
		t.Errorf("the current refresh token after it: got %d (%s)", r.status, r.body)
	}
	if r := f.do(t, nil, "GET", "/sessions/current", nil, bearer(res.Tokens.AccessToken)); r.status != http.StatusOK {
		t.Errorf("the renewed access token: got %d", r.status)
	}
}

// TestRefreshExpiredSession: a genuine refresh token of a session past its
// idle timeout says so, not "revoked".
func TestRefreshExpiredSession(t *testing.T) {
	f := newFixture(t, tokenSetup(t, sessionkit.WithIdleTimeout(time.Hour)))
	p, _ := f.tokenLogin(t, "alice")
	f.clock.Advance(2 * time.Hour)
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionIdle)
	// Once a write has moved it out of the active sessions, the same.
	f.tokenLogin(t, "alice")
	f.refresh(t, p.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionIdle)
}

// TestBearerSignOut: an API client signs out with DELETE /sessions/current.
// Its access token may have expired meanwhile (a phone in the background for
// longer than the token's lifetime): a 204 for it would tell the client it
// signed out while its session, and its refresh token, stay valid. So an
// access token that is no longer valid is 401 no_session, nothing revoked,
// and the client signs out with its refresh token in the body instead (with
// or without the expired access token), which revokes the session; a
// refresh token that is not its session's current one (nor the one just
// superseded, within the grace window, which signs out too) is 401
// invalid_refresh_token, and one of a session already ended is 204.
func TestBearerSignOut(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	signOut := func(access, refresh string) response {
		t.Helper()
		var h http.Header
		if access != "" {
			h = bearer(access)
		}
		var body io.Reader
		if refresh != "" {
			h = cloneOr(h)
			h.Set("Content-Type", "application/json")
			b, _ := json.Marshal(map[string]string{"refresh_token": refresh})
			body = strings.NewReader(string(b))
		}
		return f.do(t, nil, "DELETE", "/sessions/current", body, h)
	}
	state := func(id uuid.UUID) sessionkit.State {
		t.Helper()
		s, err := f.m.Session(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return s.StateAt(f.m.Now())
	}

	// The access token expired: refused, and the session goes on.
	phone, _ := f.tokenLogin(t, "alice")
	f.clock.Advance(testTTL + time.Second)
	signOut(phone.AccessToken, "").wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
	if got := state(phone.Session.ID); got != sessionkit.StateActive {
		t.Fatalf("after a refused sign-out: %v, want active", got)
	}
	// With its refresh token, the same request signs out.
	if r := signOut(phone.AccessToken, phone.RefreshToken); r.status != http.StatusNoContent {
		t.Fatalf("sign out with the refresh token: got %d (%s)", r.status, r.body)
	}
	if got := state(phone.Session.ID); got != sessionkit.StateRevoked {
		t.Errorf("after sign-out with the refresh token: %v, want revoked", got)
	}
	f.refresh(t, phone.RefreshToken).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
	// Again: the session has ended, as asked.
	if r := signOut("", phone.RefreshToken); r.status != http.StatusNoContent {
		t.Errorf("sign out again: got %d (%s)", r.status, r.body)
	}

	// The refresh token alone signs out too.
	tablet, _ := f.tokenLogin(t, "alice")
	if r := signOut("", tablet.RefreshToken); r.status != http.StatusNoContent {
		t.Fatalf("sign out with the refresh token alone: got %d (%s)", r.status, r.body)
	}
	if got := state(tablet.Session.ID); got != sessionkit.StateRevoked {
		t.Errorf("after sign-out with the refresh token alone: %v, want revoked", got)
	}

	// A refresh whose reply was lost: the client still holds the token it
	// superseded, which RefreshSession accepts within the grace window,
	// and signs out with it.
	watch, _ := f.tokenLogin(t, "alice")
	f.clock.Advance(time.Second)
	if r := f.refresh(t, watch.RefreshToken); r.status != http.StatusOK {
		t.Fatalf("refresh: got %d (%s)", r.status, r.body)
	}
	if r := signOut("", watch.RefreshToken); r.status != http.StatusNoContent {
		t.Fatalf("sign out with the token just superseded: got %d (%s)", r.status, r.body)
	}
	if got := state(watch.Session.ID); got != sessionkit.StateRevoked {
		t.Errorf("after sign-out with the token just superseded: %v, want revoked", got)
	}

	// A refresh token that is not its session's current one revokes
	// nothing and says so.
	laptop, _ := f.tokenLogin(t, "alice")
	f.clock.Advance(time.Second)
	next := f.refresh(t, laptop.RefreshToken)
	var rotated tokenPair
	next.decode(t, &rotated)
	forged := laptop.RefreshToken[:len(laptop.RefreshToken)-4] + "AAAA"
	signOut("", forged).wantProblem(t, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken)
	if got := state(laptop.Session.ID); got != sessionkit.StateActive {
		t.Errorf("after a sign-out with a forged refresh token: %v, want active", got)
	}
	// A valid access token still signs out on its own.
	if r := signOut(rotated.AccessToken, ""); r.status != http.StatusNoContent {
		t.Fatalf("sign out with a valid access token: got %d (%s)", r.status, r.body)
	}
	if got := state(laptop.Session.ID); got != sessionkit.StateRevoked {
		t.Errorf("after sign-out with the access token: %v, want revoked", got)
	}
	// A body that is not a refresh token is refused, with nothing revoked.
	other, _ := f.tokenLogin(t, "alice")
	for _, tc := range []struct {
		name, body string
		header     http.Header
		status     int
		reason     string
	}{
		{"another field", `{"token":1}`, jsonType, 400, middleware.ReasonInvalidRequest},
		{"text/plain", other.RefreshToken, http.Header{"Content-Type": {"text/plain"}}, 415, middleware.ReasonUnsupportedMedia},
		{"1 MB", `{"refresh_token":"` + strings.Repeat("r", 1<<20) + `"}`, jsonType, 413, middleware.ReasonRequestTooLarge},
	} {
		r := f.do(t, nil, "DELETE", "/sessions/current", strings.NewReader(tc.body), tc.header)
		if r.status != tc.status || r.problem(t).Reason != tc.reason {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.reason)
		}
	}
	if got := state(other.Session.ID); got != sessionkit.StateActive {
		t.Errorf("after refused sign-outs: %v, want active", got)
	}
}

func cloneOr(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h.Clone()
}

// TestTokensTheAuthenticatorRefusesAreRefused: a Manager that issues access
// tokens behind an Authenticator that does not accept them would sign API
// clients in (a session that counts toward the user's limit, and may evict
// one) for tokens every route then refuses, 401 no_session, with nothing
// said. handlers.New refuses the pair, naming AllowBearer; NewAdmin, which
// issues no tokens, takes it.
func TestTokensTheAuthenticatorRefusesAreRefused(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	auth, err := middleware.NewAuthenticator(f.m, middleware.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = handlers.New(auth, handlers.Options{Login: f.users.login})
	if !errors.Is(err, sessionkit.ErrInvalid) || !strings.Contains(err.Error(), "AllowBearer") {
		t.Errorf("got %v, want an error wrapping ErrInvalid naming AllowBearer", err)
	}
	authorize := func(*http.Request) (string, error) { return "ops", nil }
	if _, err := handlers.NewAdmin(auth, handlers.AdminOptions{Authorize: authorize}); err != nil {
		t.Errorf("NewAdmin: %v", err)
	}
	// The operator routes refuse a wildcard origin as the user routes do.
	if _, err := handlers.NewAdmin(auth, handlers.AdminOptions{Authorize: authorize, TrustedOrigins: []string{"https://*.example.com"}}); !errors.Is(err, sessionkit.ErrInvalid) {
		t.Errorf("NewAdmin with a wildcard origin: got %v, want ErrInvalid", err)
	}
}

// TestStoreTimeoutBoundsEveryStoreCall: middleware.Options.StoreTimeout
// bounds a request's store calls, past it 503: the authentication's, and
// the handlers' own (a sign-in, a refresh), which went on until the Redis
// client's own timeouts and retries gave up, several seconds later.
func TestStoreTimeoutBoundsEveryStoreCall(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr())
	s := tokenSetup(t)
	s.server, s.addr = srv, proxy.Addr()
	s.session = func(o *middleware.Options) { o.AllowBearer, o.StoreTimeout = true, 300*time.Millisecond }
	f := newFixture(t, s)
	p, _ := f.tokenLogin(t, "alice")
	proxy.SetDelay(20 * time.Second)
	body := `{"username":"alice","password":"password"}`
	for name, call := range map[string]func() response{
		"sign-in":        func() response { return f.do(t, f.client(t), "POST", "/sessions", strings.NewReader(body), jsonType) },
		"token sign-in":  func() response { return f.do(t, nil, "POST", "/sessions/token", strings.NewReader(body), jsonType) },
		"refresh":        func() response { return f.refresh(t, p.RefreshToken) },
		"authentication": func() response { return f.do(t, nil, "GET", "/sessions/current", nil, bearer(p.AccessToken)) },
	} {
		start := time.Now()
		r := call()
		took := time.Since(start)
		r.wantProblem(t, http.StatusServiceUnavailable, middleware.ReasonStoreUnavailable)
		if took > 2*time.Second {
			t.Errorf("%s: answered after %v with a 300ms StoreTimeout", name, took.Round(time.Millisecond))
		}
	}
}

// TestCookieSignOutIgnoresWhatBearerSignOutReads: the refresh-token body
// and the 401 for an access token no longer valid are a bearer client's.
// A browser signing out with a valid cookie is signed out whatever body its
// DELETE carries (an empty JSON object, an empty chunked body with no
// type), and with a stale cookie it gets 204 and the cookie cleared even
// beside an Authorization header of another scheme (Basic in front of a
// staging site).
func TestCookieSignOutIgnoresWhatBearerSignOutReads(t *testing.T) {
	f := newFixture(t, tokenSetup(t))
	for _, tc := range []struct {
		name, ct, body string
		length         int64
	}{
		{"empty JSON object", "application/json", `{}`, 2},
		{"empty chunked body, no type", "", ``, -1},
	} {
		s, tok := f.login(t, f.client(t), "alice")
		r := httptest.NewRequest("DELETE", "https://example.com/sessions/current", strings.NewReader(tc.body))
		r.ContentLength = tc.length
		r.Header.Set("Cookie", cookieName+"="+tok)
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		got, err := f.m.Session(t.Context(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusNoContent || got.StateAt(f.m.Now()) != sessionkit.StateRevoked {
			t.Errorf("%s: got %d %s, session %v; want 204 and the session revoked", tc.name, w.Code, w.Body, got.StateAt(f.m.Now()))
		}
	}
	_, tok := f.login(t, f.client(t), "alice")
	last := "A"
	if tok[len(tok)-1] == 'A' {
		last = "B"
	}
	stale := tok[:len(tok)-1] + last
	for _, h := range []http.Header{
		{"Cookie": {cookieName + "=" + stale}},
		{"Cookie": {cookieName + "=" + stale}, "Authorization": {"Basic dXNlcjpwYXNz"}},
	} {
		r := f.do(t, nil, "DELETE", "/sessions/current", nil, h)
		if ck := r.sessionCookie(); r.status != http.StatusNoContent || ck == nil || ck.MaxAge >= 0 {
			t.Errorf("stale cookie, Authorization %q: got %d, cookie %v; want 204 and the cookie cleared", h.Get("Authorization"), r.status, ck)
		}
	}
}

// TestSessionIdleTimeoutByClient: Options.IdleTimeout sets each signed-in
// session's own idle timeout from its request, browsers' and API clients'
// apart, in place of the Manager's; a value the Manager refuses is the
// app's fault, a 500, and signs no one in.
func TestSessionIdleTimeoutByClient(t *testing.T) {
	s := tokenSetup(t, sessionkit.WithIdleTimeout(time.Hour))
	var asked []bool
	s.options = func(o *handlers.Options) {
		o.IdleTimeout = func(r *http.Request, bearer bool) time.Duration {
			asked = append(asked, bearer)
			if r.Header.Get("X-Broken") != "" {
				return time.Millisecond
			}
			if bearer {
				return sessionkit.NoIdleTimeout
			}
			return 15 * time.Minute
		}
	}
	f := newFixture(t, s)
	idle := func(id uuid.UUID) time.Duration {
		t.Helper()
		s, err := f.m.Session(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return s.IdleTimeout
	}
	browser, _ := f.login(t, nil, "alice")
	if got := idle(browser.ID); got != 15*time.Minute {
		t.Errorf("browser session: idle timeout %v, want 15m", got)
	}
	phone, _ := f.tokenLogin(t, "alice")
	if got := idle(phone.Session.ID); got != 0 {
		t.Errorf("API client session: idle timeout %v, want none", got)
	}
	if !slices.Equal(asked, []bool{false, true}) {
		t.Errorf("IdleTimeout asked with bearer %v, want [false true]", asked)
	}
	before := f.countSessions(t, f.alice)
	r := f.do(t, nil, "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`),
		http.Header{"Content-Type": {"application/json"}, "X-Broken": {"1"}})
	if r.status != http.StatusInternalServerError {
		t.Errorf("an idle timeout the Manager refuses: got %d (%s), want 500", r.status, r.body)
	}
	if got := f.countSessions(t, f.alice); got != before {
		t.Errorf("sessions after the refused sign-in: %d, want %d", got, before)
	}
}
