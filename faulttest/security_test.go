package faulttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
)

// Each test here checks one promise of ARCHITECTURE.md ("Security
// promises") through the HTTP layer an app mounts, against a real Redis.
// The fail-closed promise (Redis down, slow or full: 503, no cookie) is
// checked under load in restart_test.go, slow_test.go and oom_test.go.

// newSecurityApp returns an app on the shared server whose Redis client
// counts its commands.
func newSecurityApp(t *testing.T, opts ...sessionkit.Option) (*app, *redistest.Counter) {
	t.Helper()
	rdb := sharedServer(t).Client(t)
	calls := &redistest.Counter{}
	rdb.AddHook(calls)
	return newApp(t, newFixture(t, rdb, opts...), appOptions{}), calls
}

// secretOf returns the secret part of a token.
func secretOf(tb testing.TB, token string) string {
	tb.Helper()
	_, secret, ok := strings.Cut(token, ".")
	if !ok || secret == "" {
		tb.Fatalf("token has no secret part")
	}
	return secret
}

// Promise: cookie defaults are the __Host- name, Secure, HttpOnly, Path=/,
// no Domain, SameSite=Lax; responses that set it are not cached; logout
// clears it.
func TestSecurityCookieAttributes(t *testing.T) {
	a, _ := newSecurityApp(t)
	r := a.signIn(t, "alice", "")
	if r.status != http.StatusCreated {
		t.Fatalf("login: got %d %s, want 201", r.status, r.body)
	}
	raw := r.header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie headers: got %d, want 1", len(raw))
	}
	c, err := http.ParseSetCookie(raw[0])
	if err != nil {
		t.Fatal(err)
	}
	lower := strings.ToLower(raw[0])
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", c.Name, "__Host-session"},
		{"Secure", c.Secure, true},
		{"HttpOnly", c.HttpOnly, true},
		{"Path", c.Path, "/"},
		{"Domain", c.Domain, ""},
		{"Domain attribute present", strings.Contains(lower, "domain="), false},
		{"SameSite", c.SameSite, http.SameSiteLaxMode},
		{"Max-Age within 30 days", c.MaxAge > 29*24*3600 && c.MaxAge <= 30*24*3600, true},
		{"Cache-Control", r.header.Get("Cache-Control"), "no-store"},
		{"value length", len(c.Value), 80},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v (Set-Cookie: %s)", ck.what, ck.got, ck.want, redact(raw[0], c.Value))
		}
	}
	out := a.mustDo(t, http.MethodDelete, "/sessions/current", c.Value, "", nil)
	cleared := out.sessionCookie()
	if out.status != http.StatusNoContent || cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Errorf("logout: got status %d, cookie %+v; want 204 and the cookie cleared (Max-Age=0)", out.status, cleared)
	}
}

// redact replaces a token in s, for failure messages.
func redact(s, token string) string { return strings.ReplaceAll(s, token, "<token>") }

// Promise: the cookie is checked for length and charset before any Redis
// call; anything malformed is 401 no_session.
func TestSecurityCookieCheckedBeforeRedis(t *testing.T) {
	a, calls := newSecurityApp(t)
	good := a.mustSignIn(t, "alice")
	id, secret, _ := strings.Cut(good, ".")
	cases := []struct{ name, value string }{
		{"10 KB", strings.Repeat("a", 10<<10)},
		{"one byte short", good[:len(good)-1]},
		{"one byte long", good + "A"},
		{"no dot", id + "x" + secret},
		{"two dots", id + "." + secret[:20] + "." + secret[21:]},
		{"bad base64", id + "." + strings.Repeat("*", len(secret))},
		{"padding", id + "." + secret[:len(secret)-1] + "="},
		{"upper-case id", strings.ToUpper(id) + "." + secret},
		{"NUL byte", id + "." + secret[:10] + "\x00" + secret[11:]},
		{"non-ASCII", id + "." + secret[:10] + "é" + secret[12:]},
		{"session id alone", id},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Commands()
			// Served in process: a Go client refuses to send some of these.
			req := httptest.NewRequest(http.MethodGet, "/app/data", nil)
			req.Header.Set("Cookie", cookieName+"="+tc.value)
			r := a.serveRaw(req)
			if r.status != http.StatusUnauthorized || r.reason() != middleware.ReasonNoSession {
				t.Errorf("got %d %q, want 401 no_session", r.status, r.reason())
			}
			if n := calls.Commands() - before; n != 0 {
				t.Errorf("Redis commands: got %d, want 0", n)
			}
		})
	}
	if r := a.mustDo(t, http.MethodGet, "/app/data", good, "", nil); r.status != http.StatusOK {
		t.Errorf("the real session after the hostile cookies: got %d, want 200", r.status)
	}
}

// Promise: the cookie value is never anything the API shows; the token is
// only ever in Set-Cookie: never in a response body, a URL, another header
// or a log line (sessionkit's, the middleware's and handlers', go-redis's).
func TestSecurityTokenNeverExposed(t *testing.T) {
	a, _ := newSecurityApp(t)
	var tokens []string
	phone := a.mustSignIn(t, "alice")
	laptop := a.mustSignIn(t, "alice")
	tablet := a.mustSignIn(t, "alice")
	tokens = append(tokens, phone, laptop, tablet)
	phoneID, _, _ := strings.Cut(phone, ".")
	tabletID, _, _ := strings.Cut(tablet, ".")

	// Every route, including failures that get logged.
	steps := []struct {
		method, path, token string
		want                int
	}{
		{http.MethodGet, "/sessions", laptop, 200},
		{http.MethodGet, "/sessions?include_revoked=true", laptop, 200},
		{http.MethodGet, "/sessions/current", laptop, 200},
		{http.MethodGet, "/sessions/" + phoneID, laptop, 200},
		{http.MethodGet, "/sessions/events", laptop, 200},
		{http.MethodGet, "/app/data", laptop, 200},
		{http.MethodDelete, "/sessions/" + phoneID, laptop, 204},
		{http.MethodGet, "/app/data", phone, 401},     // revoked
		{http.MethodDelete, "/sessions", laptop, 200}, // everywhere else: the tablet
		{http.MethodGet, "/sessions/" + tabletID, tablet, 401},
		{http.MethodDelete, "/sessions/current", laptop, 204},
		{http.MethodGet, "/sessions/current", laptop, 401},
	}
	for _, s := range steps {
		if r := a.mustDo(t, s.method, s.path, s.token, "", nil); r.status != s.want {
			t.Errorf("%s %s: got %d, want %d (%s)", s.method, s.path, r.status, s.want, r.body)
		}
	}
	// A login that replaces a session, and a failed one.
	again := a.mustSignIn(t, "bob")
	tokens = append(tokens, again)
	if r := a.signIn(t, "bob", again); r.status != http.StatusCreated {
		t.Errorf("re-login: got %d, want 201", r.status)
	} else {
		tokens = append(tokens, r.sessionCookie().Value)
	}
	if r := a.mustDo(t, http.MethodPost, "/sessions", "", `{"username":"bob","password":"wrong"}`, nil); r.status != http.StatusUnauthorized {
		t.Errorf("bad password: got %d, want 401", r.status)
	}

	a.mu.Lock()
	exchanges := append([]exchange(nil), a.exchanges...)
	a.mu.Unlock()
	appLines, appTotal := appLog.snapshot()
	redisLines, _ := redisLog.snapshot()
	idsLogged := false
	for _, tok := range tokens {
		secret := secretOf(t, tok)
		for _, e := range exchanges {
			for _, s := range []string{e.url, e.body} {
				if strings.Contains(s, secret) {
					t.Errorf("%s %s: a token's secret is in the URL or body", e.method, e.url)
				}
			}
			for name, vs := range e.header {
				if name == "Set-Cookie" {
					continue
				}
				for _, v := range vs {
					if strings.Contains(v, secret) {
						t.Errorf("%s %s: a token's secret is in the %s header", e.method, e.url, name)
					}
				}
			}
		}
		for _, l := range append(appLines, redisLines...) {
			if strings.Contains(l, secret) {
				t.Errorf("a log line holds a token's secret: %s", redact(redact(l, tok), secret))
			}
		}
	}
	for _, l := range appLines {
		idsLogged = idsLogged || strings.Contains(l, phoneID)
	}
	// And every token any test of this run was given, against every line
	// logged so far (TestMain checks again once all tests have run).
	if leaks := leakedSecrets(); len(leaks) > 0 {
		t.Errorf("%d token secrets issued in this run appear in log lines", len(leaks))
	}
	if !idsLogged {
		t.Errorf("no log line names the session id %s: the log check saw nothing (%d lines logged)", phoneID, appTotal)
	}
	t.Logf("checked %d tokens against %d exchanges, %d app log lines, %d go-redis log lines", len(tokens), len(exchanges), len(appLines), len(redisLines))
}

// Promise: a bearer client's tokens are secrets as the cookie is. Every
// refresh token and access token is in the JSON body of the response that
// hands it out (token sign-in, refresh, the grace window's answer,
// re-authentication) and nowhere else: not in another response, a header
// or a URL, not in a log line at any level, and not in what goes to or
// comes from Redis, which gets only the hashes of the refresh tokens.
func TestSecurityBearerTokensNeverExposed(t *testing.T) {
	rdb := sharedServer(t).Client(t)
	sent := &commandLog{}
	rdb.AddHook(sent)
	// A grace window far longer than the test, so that the superseded
	// token's second use is within it on any machine.
	f := newFixture(t, rdb, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: 5 * time.Minute}))
	a := newApp(t, f, appOptions{bearer: true})
	const creds = `{"username":"alice","password":"password"}`

	// Every token route, and the refusals that get logged.
	var phone, phone2, grace, reauth, laptop, laptop2, laptop3 tokenPair
	steps := []struct {
		name, method, path string
		access             *string // sent as "Authorization: Bearer"
		refresh            *string // sent as {"refresh_token": ...}
		body               string  // sent when refresh is nil
		want               int
		reason             string     // of a refusal
		issues             *tokenPair // the pair the response hands out
	}{
		{"token sign-in", http.MethodPost, "/sessions/token", nil, nil, creds, 201, "", &phone},
		{"access token", http.MethodGet, "/app/data", &phone.AccessToken, nil, "", 200, "", nil},
		{"refresh", http.MethodPost, "/sessions/refresh", nil, &phone.RefreshToken, "", 200, "", &phone2},
		{"superseded token within the grace window", http.MethodPost, "/sessions/refresh", nil, &phone.RefreshToken, "", 200, "", &grace},
		{"re-authentication", http.MethodPost, "/sessions/current/reauthenticate", &grace.AccessToken, nil, creds, 200, "", &reauth},
		{"access token of the replaced family", http.MethodGet, "/app/data", &phone2.AccessToken, nil, "", 401, middleware.ReasonNoSession, nil},
		{"refresh token of the replaced family", http.MethodPost, "/sessions/refresh", nil, &phone2.RefreshToken, "", 401, middleware.ReasonInvalidRefreshToken, nil},
		{"access token after re-authentication", http.MethodGet, "/sessions/current", &reauth.AccessToken, nil, "", 200, "", nil},
		{"sign-out", http.MethodDelete, "/sessions/current", &reauth.AccessToken, nil, "", 204, "", nil},
		{"access token after sign-out", http.MethodGet, "/app/data", &reauth.AccessToken, nil, "", 401, middleware.ReasonSessionRevoked, nil},
		{"refresh token after sign-out", http.MethodPost, "/sessions/refresh", nil, &reauth.RefreshToken, "", 401, middleware.ReasonSessionRevoked, nil},
		{"token sign-in, another device", http.MethodPost, "/sessions/token", nil, nil, creds, 201, "", &laptop},
		{"refresh, another device", http.MethodPost, "/sessions/refresh", nil, &laptop.RefreshToken, "", 200, "", &laptop2},
		{"refresh again, another device", http.MethodPost, "/sessions/refresh", nil, &laptop2.RefreshToken, "", 200, "", &laptop3},
		{"reuse of an older refresh token", http.MethodPost, "/sessions/refresh", nil, &laptop.RefreshToken, "", 401, middleware.ReasonRefreshReused, nil},
		{"access token after reuse", http.MethodGet, "/app/data", &laptop3.AccessToken, nil, "", 401, middleware.ReasonRefreshReused, nil},
		{"refresh token after reuse", http.MethodPost, "/sessions/refresh", nil, &laptop3.RefreshToken, "", 401, middleware.ReasonRefreshReused, nil},
		{"token sign-in, bad password", http.MethodPost, "/sessions/token", nil, nil, `{"username":"alice","password":"wrong"}`, 401, middleware.ReasonInvalidCredentials, nil},
	}
	handedOut := map[string]map[string]bool{} // a token or a secret part of one -> the bodies that hand it out
	for _, s := range steps {
		var header http.Header
		if s.access != nil {
			header = http.Header{"Authorization": {"Bearer " + *s.access}}
		}
		body := s.body
		if s.refresh != nil {
			b, _ := json.Marshal(map[string]string{"refresh_token": *s.refresh})
			body = string(b)
		}
		r := a.mustDo(t, s.method, s.path, "", body, header)
		if r.status != s.want || r.reason() != s.reason {
			t.Fatalf("%s: got %d %q, want %d %q (%s)", s.name, r.status, r.reason(), s.want, s.reason, r.body)
		}
		if s.issues == nil {
			continue
		}
		if err := json.Unmarshal([]byte(r.body), s.issues); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, secret := range s.issues.secrets(t) {
			if handedOut[secret] == nil {
				handedOut[secret] = map[string]bool{}
			}
			handedOut[secret][r.body] = true
		}
	}
	// The grace window's answer hands the current refresh token out again,
	// with a new access token: that one token may be in both bodies.
	if grace.RefreshToken != phone2.RefreshToken {
		t.Errorf("within the grace window: got another refresh token, want the current one again")
	}

	a.mu.Lock()
	exchanges := append([]exchange(nil), a.exchanges...)
	a.mu.Unlock()
	if len(exchanges) != len(steps) {
		t.Fatalf("exchanges: got %d, want one a step (%d)", len(exchanges), len(steps))
	}
	appLines, appTotal := appLog.snapshot()
	redisLines, _ := redisLog.snapshot()
	commands := sent.text()
	for secret, bodies := range handedOut {
		for _, e := range exchanges {
			if strings.Contains(e.url, secret) {
				t.Errorf("%s %s: a bearer token's secret is in the URL", e.method, e.url)
			}
			if strings.Contains(e.body, secret) && !bodies[e.body] {
				t.Errorf("%s %s (%d): a bearer token's secret is in the body of a response that does not hand it out", e.method, e.url, e.status)
			}
			for name, vs := range e.header {
				for _, v := range vs {
					if strings.Contains(v, secret) {
						t.Errorf("%s %s: a bearer token's secret is in the %s header", e.method, e.url, name)
					}
				}
			}
		}
		for _, l := range append(appLines, redisLines...) {
			if strings.Contains(l, secret) {
				for s := range handedOut {
					l = redact(l, s)
				}
				t.Errorf("a log line holds a bearer token's secret: %s", l)
			}
		}
		for what, needle := range clearForms(secret) {
			if strings.Contains(commands, needle) {
				t.Errorf("a Redis command or reply holds %s of a bearer token's secret", what)
			}
		}
	}
	// Redis got the refresh tokens' hashes (as it stores them: the first 22
	// characters of their text), so the command check saw their writes.
	hashes := 0
	for _, p := range []tokenPair{phone, phone2, reauth, laptop, laptop2, laptop3} {
		parts := strings.Split(p.RefreshToken, ".")
		for _, part := range parts[2:] {
			raw, err := base64.RawURLEncoding.DecodeString(part)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(raw)
			if strings.Contains(commands, base64.RawURLEncoding.EncodeToString(sum[:])[:22]) {
				hashes++
			}
		}
	}
	if hashes != 12 {
		t.Errorf("hashes of refresh tokens' families and secrets sent to Redis: found %d of 12; the command check would prove nothing", hashes)
	}
	// The log check saw this test's lines, at info and warn.
	phoneID, _, _ := strings.Cut(phone.RefreshToken, ".")
	laptopID, _, _ := strings.Cut(laptop.RefreshToken, ".")
	for what, needle := range map[string]string{
		"the sign-in": "session_id=" + phoneID, "the other sign-in": "session_id=" + laptopID,
		"the reuse (warn)": "refresh token was used again",
	} {
		if !slices.ContainsFunc(appLines, func(l string) bool { return strings.Contains(l, needle) }) {
			t.Errorf("no log line for %s (%q): the log check saw nothing (%d lines logged)", what, needle, appTotal)
		}
	}
	if leaks := leakedSecrets(); len(leaks) > 0 {
		t.Errorf("%d token secrets issued in this run appear in log lines", len(leaks))
	}
	t.Logf("checked %d secrets against %d exchanges, %d app log lines, %d go-redis log lines, %d bytes of Redis commands",
		len(handedOut), len(exchanges), len(appLines), len(redisLines), len(commands))
}

// secrets returns what of p must never be shown but in the response that
// hands it out: both tokens, the refresh token's family and secret, and
// the access token's signature.
func (p tokenPair) secrets(tb testing.TB) []string {
	tb.Helper()
	rt, at := strings.Split(p.RefreshToken, "."), strings.Split(p.AccessToken, ".")
	if len(rt) != 4 || len(at) != 3 {
		tb.Fatalf("token pair of %d and %d parts, want a refresh token of 4 and a JWT of 3", len(rt), len(at))
	}
	return []string{p.AccessToken, at[2], p.RefreshToken, rt[2], rt[3]}
}

// clearForms returns secret as it could be sent in clear: itself and,
// when it is base64url, its bytes raw, in hex and in standard base64.
func clearForms(secret string) map[string]string {
	forms := map[string]string{"the text": secret}
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err == nil {
		forms["the raw bytes"] = string(raw)
		forms["the hex"] = fmt.Sprintf("%x", raw)
		forms["the standard base64"] = base64.StdEncoding.EncodeToString(raw)[:40]
	}
	return forms
}

// commandLog is a go-redis hook that keeps every command a client sent,
// with its arguments and reply, as text.
type commandLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		l.keep(cmd)
		return err
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		l.keep(cmds...)
		return err
	}
}

func (l *commandLog) keep(cmds ...redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cmds {
		l.lines = append(l.lines, c.String())
	}
}

// text returns every command kept, a line each.
func (l *commandLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Promise: Redis stores only SHA-256 of the secret; a dump of every key
// holds neither the cookie, nor its secret (encoded or raw), and the stored
// hash used as a secret is refused.
func TestSecurityTokenHashedAtRest(t *testing.T) {
	a, _ := newSecurityApp(t)
	rdb := a.f.Client
	var tokens []string
	for _, u := range []string{"alice", "alice", "bob"} {
		tokens = append(tokens, a.mustSignIn(t, u))
	}
	// Exercise the writes too: activity from a new address, provider, events.
	a.mustDo(t, http.MethodGet, "/app/data", tokens[0], "", http.Header{"X-Forwarded-For": {"198.51.100.1"}})
	// DUMP compresses long strings unless told not to, which would hide a
	// secret from the search; the values are also read type by type.
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "rdbcompression", "no").Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.ConfigSet(ctx, "rdbcompression", "yes")
	stored := sessiontest.Keys(t, rdb, a.f.Prefix)
	var all strings.Builder // every key, its DUMP and its values, raw
	for _, k := range stored {
		d, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatalf("DUMP %s: %v", k, err)
		}
		all.WriteString(k)
		all.WriteString(d)
		all.WriteString(values(t, rdb, k))
	}
	dumped := all.String()
	foundHash := 0
	for _, tok := range tokens {
		secret := secretOf(t, tok)
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil {
			t.Fatal(err)
		}
		for what, needle := range map[string]string{
			"the cookie": tok, "the secret": secret, "the raw secret bytes": string(raw),
			"the secret in hex": fmt.Sprintf("%x", raw), "the secret in standard base64": base64.StdEncoding.EncodeToString(raw)[:40],
		} {
			if strings.Contains(dumped, needle) {
				t.Errorf("a Redis key holds %s", what)
			}
		}
		sum := sha256.Sum256(raw)
		// Stored: the hash's text, or its first 22 characters (132 bits).
		if strings.Contains(dumped, string(sum[:])) || strings.Contains(dumped, base64.RawURLEncoding.EncodeToString(sum[:])[:22]) {
			foundHash++
		}
		// The stored hash as the secret is refused.
		id, _, _ := strings.Cut(tok, ".")
		forged := id + "." + base64.RawURLEncoding.EncodeToString(sum[:])
		if r := a.mustDo(t, http.MethodGet, "/app/data", forged, "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("the stored hash as a cookie: got %d, want 401", r.status)
		}
	}
	if foundHash != len(tokens) {
		t.Errorf("stored SHA-256 of the secret found for %d of %d tokens: the dump check would prove nothing", foundHash, len(tokens))
	}
	t.Logf("%d keys dumped", len(stored))
}

// values returns everything key holds, read with the commands of its type.
func values(tb testing.TB, rdb redis.UniversalClient, key string) string {
	tb.Helper()
	ctx := context.Background()
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	var v any
	switch typ {
	case "string":
		v, err = rdb.Get(ctx, key).Result()
	case "hash":
		v, err = rdb.HGetAll(ctx, key).Result()
	case "zset":
		v, err = rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
	case "set":
		v, err = rdb.SMembers(ctx, key).Result()
	case "list":
		v, err = rdb.LRange(ctx, key, 0, -1).Result()
	case "stream":
		v, err = rdb.XRange(ctx, key, "-", "+").Result()
	case "none":
		return "" // expired meanwhile
	default:
		tb.Fatalf("key %s of unexpected type %s", key, typ)
	}
	if err != nil {
		tb.Fatalf("read %s: %v", key, err)
	}
	return fmt.Sprint(v)
}

// Promise: 32 bytes from crypto/rand; an unissued token is refused and
// changes nothing in Redis.
func TestSecurityUnissuedToken(t *testing.T) {
	a, _ := newSecurityApp(t)
	real := a.mustSignIn(t, "alice")
	seen := map[string]bool{}
	for range 50 {
		s := secretOf(t, a.mustSignIn(t, "bob"))
		if seen[s] {
			t.Fatal("two logins got the same secret")
		}
		seen[s] = true
	}
	before := sessiontest.Dump(t, a.f.Client, a.f.Prefix)
	id, _, _ := strings.Cut(real, ".")
	unissued := id + "." + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	r := a.mustDo(t, http.MethodGet, "/app/data", unissued, "", nil)
	if r.status != http.StatusUnauthorized || r.reason() != middleware.ReasonNoSession {
		t.Errorf("unissued token: got %d %q, want 401 no_session", r.status, r.reason())
	}
	if d := sessiontest.Diff(before, sessiontest.Dump(t, a.f.Client, a.f.Prefix)); len(d) > 0 {
		t.Errorf("an unissued token changed Redis: %v", d)
	}
	if r := a.mustDo(t, http.MethodGet, "/app/data", real, "", nil); r.status != http.StatusOK {
		t.Errorf("the real session after a wrong secret: got %d, want 200", r.status)
	}
}

// Promise: login always mints a new session and revokes the one the
// request carried (no fixation), whoever's it was.
func TestSecurityLoginMintsNewSession(t *testing.T) {
	a, _ := newSecurityApp(t)
	cases := []struct {
		name, carriedBy string
	}{
		{"own session", "alice"},
		{"session planted by another user", "mallory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			carried := a.mustSignIn(t, tc.carriedBy)
			r := a.signIn(t, "alice", carried)
			c := r.sessionCookie()
			if r.status != http.StatusCreated || c == nil {
				t.Fatalf("login: got %d, cookie %v; want 201 with a cookie", r.status, c != nil)
			}
			if c.Value == carried || strings.Split(c.Value, ".")[0] == strings.Split(carried, ".")[0] {
				t.Fatal("login kept the carried session")
			}
			old := a.mustDo(t, http.MethodGet, "/app/data", carried, "", nil)
			if old.status != http.StatusUnauthorized || old.reason() != middleware.ReasonSessionRevoked {
				t.Errorf("the carried session: got %d %q, want 401 session_revoked", old.status, old.reason())
			}
			cur := a.mustDo(t, http.MethodGet, "/app/data", c.Value, "", nil)
			var got struct {
				UserID string `json:"user_id"`
			}
			json.Unmarshal([]byte(cur.body), &got)
			if cur.status != http.StatusOK || got.UserID != a.users["alice"].String() {
				t.Errorf("the new session: got %d for user %s, want 200 for alice", cur.status, got.UserID)
			}
		})
	}
}

// Promise: state-changing routes refuse cross-site requests
// (http.CrossOriginProtection), and nothing changes; safe methods pass.
func TestSecurityCrossSiteRefused(t *testing.T) {
	a, _ := newSecurityApp(t)
	laptop := a.mustSignIn(t, "alice")
	phone := a.mustSignIn(t, "alice")
	phoneID, _, _ := strings.Cut(phone, ".")
	crossSite := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	foreign := http.Header{"Origin": {"https://evil.example"}}
	cases := []struct {
		name, method, path, body string
		header                   http.Header
	}{
		{"logout, Sec-Fetch-Site", http.MethodDelete, "/sessions/current", "", crossSite},
		{"logout, foreign Origin", http.MethodDelete, "/sessions/current", "", foreign},
		{"revoke by id", http.MethodDelete, "/sessions/" + phoneID, "", crossSite},
		{"sign out everywhere", http.MethodDelete, "/sessions?include_current=true", "", foreign},
		{"login", http.MethodPost, "/sessions", `{"username":"mallory","password":"password"}`, crossSite},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := sessiontest.Dump(t, a.f.Client, a.f.Prefix)
			r := a.mustDo(t, tc.method, tc.path, laptop, tc.body, tc.header)
			if r.status != http.StatusForbidden || r.reason() != middleware.ReasonCrossOrigin {
				t.Errorf("got %d %q, want 403 cross_origin", r.status, r.reason())
			}
			if r.sessionCookie() != nil {
				t.Error("a refused request set the cookie")
			}
			if d := sessiontest.Diff(before, sessiontest.Dump(t, a.f.Client, a.f.Prefix)); len(d) > 0 {
				t.Errorf("a refused request changed Redis: %v", d)
			}
		})
	}
	for _, tok := range []string{laptop, phone} {
		if r := a.mustDo(t, http.MethodGet, "/sessions/current", tok, "", crossSite); r.status != http.StatusOK {
			t.Errorf("cross-site GET after the refusals: got %d, want 200 (safe methods pass, sessions intact)", r.status)
		}
	}
}

// Promise: revocation is immediate: a revoked, logged-out, signed-out or
// evicted session is refused on its very next request, with the reason.
func TestSecurityRevokedRefusedOnNextRequest(t *testing.T) {
	// Evictions take the session that expires first; logins in one
	// millisecond would expire together, so each reading of this clock is
	// a millisecond past the last and the eviction order is the login order.
	var mu sync.Mutex
	var last time.Time
	ticking := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if next := last.Add(time.Millisecond); now.Before(next) {
			now = next
		}
		last = now
		return now
	}
	a, _ := newSecurityApp(t, sessionkit.WithLimit(sessionkit.FixedLimit(3)), sessionkit.WithClock(ticking))
	ctx := context.Background()
	cases := []struct {
		name   string
		revoke func(t *testing.T, victim, other string) // other: another session of the same user
		reason string
	}{
		{"revoked from another device", func(t *testing.T, victim, other string) {
			id, _, _ := strings.Cut(victim, ".")
			a.mustDo(t, http.MethodDelete, "/sessions/"+id, other, "", nil)
		}, middleware.ReasonSessionRevoked},
		{"logout", func(t *testing.T, victim, _ string) {
			a.mustDo(t, http.MethodDelete, "/sessions/current", victim, "", nil)
		}, middleware.ReasonSessionRevoked},
		{"signed out everywhere else", func(t *testing.T, _, other string) {
			a.mustDo(t, http.MethodDelete, "/sessions", other, "", nil)
		}, middleware.ReasonSessionRevoked},
		{"revoked by the app (password change)", func(t *testing.T, _, _ string) {
			if _, err := a.f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: a.users["alice"], Reason: "password_changed"}); err != nil {
				t.Fatal(err)
			}
		}, middleware.ReasonSessionRevoked},
		{"evicted by newer logins", func(t *testing.T, _, _ string) {
			for range 3 {
				a.mustSignIn(t, "alice")
			}
		}, middleware.ReasonSessionLimitExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Sign out everywhere first, so the eviction order is known.
			if _, err := a.f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: a.users["alice"], Reason: "test_reset"}); err != nil {
				t.Fatal(err)
			}
			victim := a.mustSignIn(t, "alice")
			other := a.mustSignIn(t, "alice")
			if r := a.mustDo(t, http.MethodGet, "/app/data", victim, "", nil); r.status != http.StatusOK {
				t.Fatalf("before: got %d, want 200", r.status)
			}
			tc.revoke(t, victim, other)
			r := a.mustDo(t, http.MethodGet, "/app/data", victim, "", nil)
			if r.status != http.StatusUnauthorized || r.reason() != tc.reason {
				t.Errorf("next request: got %d %q, want 401 %s", r.status, r.reason(), tc.reason)
			}
		})
	}
}

// Promise: the client IP is RemoteAddr unless the peer is a trusted proxy
// (none by default), so X-Forwarded-For from a client changes nothing.
func TestSecurityForwardedForNotTrusted(t *testing.T) {
	a, _ := newSecurityApp(t)
	tok := a.mustDo(t, http.MethodPost, "/sessions", "", `{"username":"alice","password":"password"}`,
		http.Header{"X-Forwarded-For": {"198.51.100.66"}, "X-Real-Ip": {"198.51.100.67"}})
	c := tok.sessionCookie()
	if c == nil {
		t.Fatalf("login: got %d, want a cookie", tok.status)
	}
	a.mustDo(t, http.MethodGet, "/app/data", c.Value, "", http.Header{"X-Forwarded-For": {"198.51.100.68, 10.0.0.1"}})
	r := a.mustDo(t, http.MethodGet, "/sessions/current", c.Value, "", nil)
	var s struct {
		IP       string `json:"ip_address"`
		LastIP   string `json:"last_ip_address"`
		IPChange int    `json:"ip_change_count"`
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("session JSON %s: %v", r.body, err)
	}
	if s.IP != "127.0.0.1" || s.LastIP != "127.0.0.1" || s.IPChange != 0 {
		t.Errorf("addresses: got ip %q, last %q, %d changes; want 127.0.0.1 (the peer), no change", s.IP, s.LastIP, s.IPChange)
	}
}

// Promise: the User-Agent and every other client-supplied string is bounded
// and made valid UTF-8 before storage.
func TestSecurityUserAgentBounded(t *testing.T) {
	a, _ := newSecurityApp(t)
	ua := strings.Repeat("Mozilla/5.0 \xff\xfe\x00\u202e", 1000)
	// Served in process: a Go client refuses to send this header.
	req := httptest.NewRequest(http.MethodPost, "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	r := a.serveRaw(req)
	c := r.sessionCookie()
	if r.status != http.StatusCreated || c == nil {
		t.Fatalf("login with a hostile User-Agent: got %d, want 201", r.status)
	}
	cur := a.mustDo(t, http.MethodGet, "/sessions/current", c.Value, "", nil)
	var s struct {
		UA string `json:"user_agent"`
	}
	if err := json.Unmarshal([]byte(cur.body), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.UA) > 512 || !utf8.ValidString(s.UA) || strings.ContainsRune(s.UA, 0) {
		t.Errorf("stored User-Agent: %d bytes, valid UTF-8 %t, NUL %t; want at most 512 valid bytes without NUL",
			len(s.UA), utf8.ValidString(s.UA), strings.ContainsRune(s.UA, 0))
	}
}
