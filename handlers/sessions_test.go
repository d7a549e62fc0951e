package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

type sessionList struct {
	Sessions []handlers.SessionJSON `json:"sessions"`
	Total    int                    `json:"total"`
}

func TestRoutesNeedASession(t *testing.T) {
	f := newFixture(t, setup{})
	_, tok1 := f.login(t, f.client(t), "alice")
	_, tok2 := f.login(t, f.client(t), "alice")
	for _, route := range []struct{ method, path string }{
		{"GET", "/sessions"}, {"GET", "/sessions/current"}, {"GET", "/sessions/events"},
		{"GET", "/sessions/" + uuid.NewString()}, {"DELETE", "/sessions/" + uuid.NewString()}, {"DELETE", "/sessions"},
	} {
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			f.calls.Reset()
			r := f.do(t, nil, route.method, route.path, nil, nil)
			r.wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
			// Two session cookies, each valid: nothing is accepted.
			r2 := f.do(t, nil, route.method, route.path, nil, http.Header{"Cookie": {cookieName + "=" + tok1 + "; " + cookieName + "=" + tok2}})
			r2.wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
			if f.calls.Commands() != 0 {
				t.Errorf("redis commands: got %d, want 0", f.calls.Commands())
			}
			if r.header.Get("WWW-Authenticate") == "" || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers: got %v, want WWW-Authenticate and Cache-Control: no-store", r.header)
			}
		})
	}
}

func TestListAndCurrent(t *testing.T) {
	f := newFixture(t, setup{})
	laptop, phone := f.client(t), f.client(t)
	mine, mineTok := f.login(t, laptop, "alice")
	other, otherTok := f.login(t, phone, "alice")
	f.login(t, f.client(t), "bob")

	var list sessionList
	r := f.do(t, laptop, "GET", "/sessions", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("got %d (%s), want 200", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || !strings.Contains(r.header.Get("Vary"), "Cookie") {
		t.Errorf("headers: Cache-Control %q, Vary %q; want no-store and Cookie", r.header.Get("Cache-Control"), r.header.Get("Vary"))
	}
	r.decode(t, &list)
	if list.Total != 2 || len(list.Sessions) != 2 {
		t.Fatalf("total: got %d (%d listed), want 2", list.Total, len(list.Sessions))
	}
	current := 0
	for _, s := range list.Sessions {
		if s.UserID != f.alice {
			t.Errorf("listed a session of %s", s.UserID)
		}
		if s.IsCurrent {
			current++
			if s.ID != mine.ID {
				t.Errorf("is_current on %s, want %s", s.ID, mine.ID)
			}
		}
	}
	if current != 1 {
		t.Errorf("sessions marked current: got %d, want 1", current)
	}
	for _, tok := range []string{mineTok, otherTok} {
		if strings.Contains(string(r.body), tok[37:]) {
			t.Errorf("list body holds a token's secret: %s", r.body)
		}
	}

	var cur handlers.SessionJSON
	r = f.do(t, phone, "GET", "/sessions/current", nil, nil)
	r.decode(t, &cur)
	if r.status != http.StatusOK || cur.ID != other.ID || !cur.IsCurrent {
		t.Errorf("current: got %d %s current=%v, want 200 %s true", r.status, cur.ID, cur.IsCurrent, other.ID)
	}

	// Revoke the phone from the laptop; the list then hides it unless asked.
	if r := f.do(t, laptop, "DELETE", "/sessions/"+other.ID.String(), nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: got %d (%s), want 204", r.status, r.body)
	}
	f.do(t, laptop, "GET", "/sessions", nil, nil).decode(t, &list)
	if list.Total != 1 || list.Sessions[0].ID != mine.ID {
		t.Errorf("active list: got %d sessions, want only %s", list.Total, mine.ID)
	}
	f.do(t, laptop, "GET", "/sessions?include_revoked=true", nil, nil).decode(t, &list)
	if list.Total != 2 {
		t.Fatalf("with revoked: got %d, want 2", list.Total)
	}
	for _, s := range list.Sessions {
		if s.ID == other.ID && (s.RevokedAt == nil || s.RevokedReason == nil || *s.RevokedReason != sessionkit.ReasonUserRevoked) {
			t.Errorf("revoked session: revoked_at %v reason %v, want set and %q", s.RevokedAt, s.RevokedReason, sessionkit.ReasonUserRevoked)
		}
	}
	for _, q := range []string{"?include_revoked=maybe", "?include_revoked=true&include_revoked=false"} {
		f.do(t, laptop, "GET", "/sessions"+q, nil, nil).wantProblem(t, 400, middleware.ReasonInvalidRequest)
	}
}

func TestGetAndRevokeByID(t *testing.T) {
	f := newFixture(t, setup{})
	laptop, phone, bobs := f.client(t), f.client(t), f.client(t)
	mine, _ := f.login(t, laptop, "alice")
	other, _ := f.login(t, phone, "alice")
	bobSession, _ := f.login(t, bobs, "bob")
	unknown := uuid.NewString()
	long := strings.Repeat("a", 10<<10)
	traversal := "..%2F..%2F..%2Fetc%2Fpasswd"

	cases := []struct {
		name, method, id string
		status           int
		reason           string
	}{
		{"get non-UUID", "GET", "not-a-uuid", 400, middleware.ReasonInvalidID},
		{"get 10 KB id", "GET", long, 400, middleware.ReasonInvalidID},
		{"get path traversal", "GET", traversal, 400, middleware.ReasonInvalidID},
		{"get braced UUID", "GET", "{" + other.ID.String() + "}", 400, middleware.ReasonInvalidID},
		{"get another user's session", "GET", bobSession.ID.String(), 404, middleware.ReasonNotFound},
		{"get unknown", "GET", unknown, 404, middleware.ReasonNotFound},
		{"delete non-UUID", "DELETE", "not-a-uuid", 400, middleware.ReasonInvalidID},
		{"delete 10 KB id", "DELETE", long, 400, middleware.ReasonInvalidID},
		{"delete path traversal", "DELETE", traversal, 400, middleware.ReasonInvalidID},
		{"delete hex without dashes", "DELETE", strings.ReplaceAll(other.ID.String(), "-", ""), 400, middleware.ReasonInvalidID},
		{"delete another user's session", "DELETE", bobSession.ID.String(), 404, middleware.ReasonNotFound},
		{"delete unknown", "DELETE", unknown, 404, middleware.ReasonNotFound},
		{"delete the current session", "DELETE", mine.ID.String(), 400, middleware.ReasonCurrentSession},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.do(t, laptop, tc.method, "/sessions/"+tc.id, nil, nil).wantProblem(t, tc.status, tc.reason)
		})
	}
	// Foreign and unknown ids give byte-identical answers.
	a := f.do(t, laptop, "DELETE", "/sessions/"+bobSession.ID.String(), nil, nil)
	b := f.do(t, laptop, "DELETE", "/sessions/"+unknown, nil, nil)
	if string(a.body) != string(b.body) {
		t.Errorf("foreign %q and unknown %q differ", a.body, b.body)
	}
	// Nothing above touched the sessions.
	for _, c := range []*http.Client{laptop, phone, bobs} {
		if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
			t.Errorf("a session after the refusals: got %d, want 200", r.status)
		}
	}

	var got handlers.SessionJSON
	r := f.do(t, laptop, "GET", "/sessions/"+other.ID.String(), nil, nil)
	r.decode(t, &got)
	if r.status != http.StatusOK || got.ID != other.ID || got.IsCurrent {
		t.Errorf("get own other: got %d %s current=%v, want 200 %s false", r.status, got.ID, got.IsCurrent, other.ID)
	}
	f.do(t, laptop, "GET", "/sessions/"+mine.ID.String(), nil, nil).decode(t, &got)
	if !got.IsCurrent {
		t.Error("get own current: is_current false")
	}

	if r := f.do(t, laptop, "DELETE", "/sessions/"+other.ID.String(), nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: got %d (%s), want 204", r.status, r.body)
	}
	f.do(t, phone, "GET", "/sessions/current", nil, nil).wantProblem(t, 401, middleware.ReasonSessionRevoked)
	f.do(t, laptop, "DELETE", "/sessions/"+other.ID.String(), nil, nil).wantProblem(t, 404, middleware.ReasonNotFound)
	// A revoked session stays readable for the audit.
	r = f.do(t, laptop, "GET", "/sessions/"+other.ID.String(), nil, nil)
	r.decode(t, &got)
	if r.status != http.StatusOK || got.RevokedAt == nil {
		t.Errorf("get revoked: got %d revoked_at %v, want 200 and set", r.status, got.RevokedAt)
	}
}

func TestLogoutIsIdempotent(t *testing.T) {
	f := newFixture(t, setup{})
	c := f.client(t)
	s, tok := f.login(t, c, "alice")
	check := func(t *testing.T, r response) {
		t.Helper()
		if r.status != http.StatusNoContent {
			t.Fatalf("got %d (%s), want 204", r.status, r.body)
		}
		ck := r.sessionCookie()
		if ck == nil || ck.MaxAge != -1 || ck.Value != "" || !ck.Secure || !ck.HttpOnly || ck.Path != "/" {
			t.Errorf("Set-Cookie: got %+v, want the cookie cleared with Max-Age=0", ck)
		}
		if !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("Set-Cookie: got %q, want Max-Age=0", r.header.Get("Set-Cookie"))
		}
	}
	check(t, f.do(t, c, "DELETE", "/sessions/current", nil, nil))
	stored, err := f.m.Session(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.RevokedReason != sessionkit.ReasonLogout {
		t.Errorf("revoked reason: got %q, want %q", stored.RevokedReason, sessionkit.ReasonLogout)
	}
	f.do(t, nil, "GET", "/sessions/current", nil, withToken(tok)).wantProblem(t, 401, middleware.ReasonSessionRevoked)
	for name, h := range map[string]http.Header{
		"replayed":      withToken(tok),
		"no cookie":     nil,
		"garbage":       withToken("garbage"),
		"two cookies":   {"Cookie": {cookieName + "=" + tok + "; " + cookieName + "=x"}},
		"other session": withToken(tok[:37] + strings.Repeat("A", 42) + "A"),
	} {
		t.Run(name, func(t *testing.T) { check(t, f.do(t, nil, "DELETE", "/sessions/current", nil, h)) })
	}
}

func TestRevokeAll(t *testing.T) {
	f := newFixture(t, setup{})
	laptop, phone, tablet := f.client(t), f.client(t), f.client(t)
	_, laptopTok := f.login(t, laptop, "alice")
	f.login(t, phone, "alice")
	f.login(t, tablet, "alice")
	f.login(t, f.client(t), "bob")

	var out struct{ Revoked int }
	r := f.do(t, laptop, "DELETE", "/sessions", nil, nil)
	r.decode(t, &out)
	if r.status != http.StatusOK || out.Revoked != 2 {
		t.Fatalf("sign out everywhere else: got %d %s, want 200 revoked 2", r.status, r.body)
	}
	if r.sessionCookie() != nil {
		t.Error("sign out everywhere else cleared this device's cookie")
	}
	f.do(t, phone, "GET", "/sessions/current", nil, nil).wantProblem(t, 401, middleware.ReasonSessionRevoked)
	f.do(t, tablet, "GET", "/sessions/current", nil, nil).wantProblem(t, 401, middleware.ReasonSessionRevoked)
	if r := f.do(t, laptop, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("this device: got %d, want 200", r.status)
	}
	f.do(t, laptop, "DELETE", "/sessions?include_current=nope", nil, nil).wantProblem(t, 400, middleware.ReasonInvalidRequest)

	r = f.do(t, laptop, "DELETE", "/sessions?include_current=true", nil, nil)
	r.decode(t, &out)
	if r.status != http.StatusOK || out.Revoked != 1 {
		t.Fatalf("sign out everywhere: got %d %s, want 200 revoked 1", r.status, r.body)
	}
	if ck := r.sessionCookie(); ck == nil || ck.MaxAge != -1 {
		t.Errorf("Set-Cookie: got %+v, want the cookie cleared", ck)
	}
	f.do(t, nil, "GET", "/sessions/current", nil, withToken(laptopTok)).wantProblem(t, 401, middleware.ReasonSessionRevoked)
	if n := f.countSessions(t, f.bob); n != 1 {
		t.Errorf("bob's sessions: got %d, want 1", n)
	}
	bobs, err := f.m.ListUserSessions(context.Background(), f.bob, sessionkit.ListOptions{})
	if err != nil || len(bobs) != 1 {
		t.Errorf("bob's active sessions: got %d (%v), want 1", len(bobs), err)
	}
}

func TestReplayAfterEvictionAndExpiry(t *testing.T) {
	f := newFixture(t, setup{})
	_, first := f.login(t, f.client(t), "bob")
	f.clock.Advance(time.Millisecond)
	f.login(t, f.client(t), "bob") // bob may hold one session: the first is evicted
	f.do(t, nil, "GET", "/sessions", nil, withToken(first)).wantProblem(t, 401, middleware.ReasonSessionLimitExceeded)

	_, tok := f.login(t, f.client(t), "alice")
	f.clock.Advance(30 * 24 * time.Hour)
	f.do(t, nil, "GET", "/sessions", nil, withToken(tok)).wantProblem(t, 401, middleware.ReasonSessionExpired)
}
