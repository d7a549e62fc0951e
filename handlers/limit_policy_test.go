package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// rejectAtTwo is a fixture whose users may hold two sessions and whose
// further sign-ins are refused, not evicting.
func rejectAtTwo(t *testing.T) *fixture {
	return newFixture(t, setup{mopts: []sessionkit.Option{
		sessionkit.WithLimit(sessionkit.FixedLimit(2)),
		sessionkit.WithLimitPolicy(func(context.Context, uuid.UUID) (sessionkit.LimitPolicy, error) {
			return sessionkit.RejectNew, nil
		}),
	}})
}

func TestRejectLimitRefusesTheThirdSignIn(t *testing.T) {
	f := rejectAtTwo(t)
	first, second := f.client(t), f.client(t)
	f.login(t, first, "alice")
	f.login(t, second, "alice")
	before := f.countSessions(t, f.alice)
	third := f.client(t)
	r := f.do(t, third, "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType)
	r.wantProblem(t, http.StatusConflict, middleware.ReasonLimitReached)
	if p := r.problem(t); p.ActiveSessions != 2 {
		t.Errorf("active_sessions: got %d, want 2", p.ActiveSessions)
	}
	if r.sessionCookie() != nil {
		t.Error("a refused sign-in set a cookie")
	}
	// Refusals are logged at debug (operations.md), this one too.
	if n := f.logs.Count("reason=" + middleware.ReasonLimitReached); n != 1 {
		t.Errorf("debug log lines of the refusal: %d, want 1\n%s", n, f.logs.String())
	}
	if n := f.countSessions(t, f.alice); n != before {
		t.Errorf("sessions: got %d, want %d (nothing written)", n, before)
	}
	// Both devices are still signed in: nobody was evicted.
	for i, c := range []*http.Client{first, second} {
		if r := f.do(t, c, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
			t.Errorf("device %d after the refused sign-in: got %d", i+1, r.status)
		}
	}
	// The token sign-in is refused the same way.
	f.do(t, nil, "POST", "/sessions/token", strings.NewReader(`{"username":"alice","password":"password"}`), jsonType).
		wantProblem(t, http.StatusNotFound, middleware.ReasonTokensDisabled) // this fixture has no tokens
	// Signing in again in a browser that holds a session replaces it.
	f.login(t, second, "alice")
	// Signing out makes room.
	if r := f.do(t, first, "DELETE", "/sessions/current", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("sign out: got %d", r.status)
	}
	f.login(t, third, "alice")
}

// TestRejectLimitUnderConcurrency: 40 concurrent sign-ins at a reject limit
// of 2 leave exactly 2 sessions: 38 refused, none evicted.
func TestRejectLimitUnderConcurrency(t *testing.T) {
	f := rejectAtTwo(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	evicted := make([]int, n)
	for i := range n {
		wg.Go(func() {
			res, err := f.m.CreateSession(t.Context(), sessionkit.CreateSession{UserID: f.alice, IPAddress: "203.0.113.7", UserAgent: chromeMac})
			errs[i], evicted[i] = err, len(res.Evicted)
		})
	}
	wg.Wait()
	ok, refused, ev := 0, 0, 0
	for i := range n {
		switch {
		case errs[i] == nil:
			ok++
		case errors.Is(errs[i], sessionkit.ErrLimitReached):
			refused++
			if le, ok := errors.AsType[*sessionkit.LimitError](errs[i]); !ok || le.Active != 2 || le.Limit != 2 {
				t.Errorf("sign-in %d: got %v, want a *LimitError of 2 active, limit 2", i, errs[i])
			}
		default:
			t.Errorf("sign-in %d: %v", i, errs[i])
		}
		ev += evicted[i]
	}
	if ok != 2 || refused != n-2 || ev != 0 {
		t.Errorf("%d concurrent sign-ins: %d signed in, %d refused, %d evicted; want 2, %d, 0", n, ok, refused, ev, n-2)
	}
	if got := f.countSessions(t, f.alice); got != 2 {
		t.Errorf("sessions: got %d, want 2", got)
	}
}

// TestRejectedSignInKeepsTheCarriedSession: a browser signed in as alice
// signs in as bob, who is at his reject limit. The 409 writes nothing:
// alice's session is still hers, and her cookie still works.
func TestRejectedSignInKeepsTheCarriedSession(t *testing.T) {
	f := rejectAtTwo(t)
	f.login(t, f.client(t), "bob")
	f.login(t, f.client(t), "bob")
	shared := f.client(t)
	as, _ := f.login(t, shared, "alice")
	r := f.do(t, shared, "POST", "/sessions", strings.NewReader(`{"username":"bob","password":"password"}`), jsonType)
	r.wantProblem(t, http.StatusConflict, middleware.ReasonLimitReached)
	s, err := f.m.Session(t.Context(), as.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !s.RevokedAt.IsZero() {
		t.Errorf("the refused sign-in revoked the carried session (%q)", s.RevokedReason)
	}
	if r := f.do(t, shared, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("alice's cookie after bob's refused sign-in: got %d", r.status)
	}
	// Once bob has room, the same sign-in replaces alice's session.
	if _, err := f.m.RevokeAllUserSessions(t.Context(), sessionkit.RevokeAllUserSessions{UserID: f.bob, Reason: sessionkit.ReasonLogoutAll}); err != nil {
		t.Fatal(err)
	}
	f.login(t, shared, "bob")
	if s, _ := f.m.Session(t.Context(), as.ID); s.RevokedReason != sessionkit.ReasonLogin {
		t.Errorf("alice's session after bob's sign-in: reason %q, want %q", s.RevokedReason, sessionkit.ReasonLogin)
	}
}

// TestRejectedSignInKeepsACarriedSupportSession: a support session does
// not count toward the user's limit, so revoking it first frees nothing:
// a sign-in of its user that the limit refuses leaves it as it was.
func TestRejectedSignInKeepsACarriedSupportSession(t *testing.T) {
	f := newFixture(t, setup{mopts: []sessionkit.Option{
		sessionkit.WithLimit(sessionkit.FixedLimit(1)),
		sessionkit.WithLimitPolicy(func(context.Context, uuid.UUID) (sessionkit.LimitPolicy, error) {
			return sessionkit.RejectNew, nil
		}),
	}})
	f.users.ids["carol"] = operatorID
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{
		Authorize: func(r *http.Request) (string, error) {
			if s, _ := sessionkit.FromContext(r.Context()); s.UserID != operatorID {
				return "", errors.New("not an operator")
			}
			return "support (carol)", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	admin.Mount(f.mux)
	f.login(t, f.client(t), "bob") // bob's one session
	desk := f.client(t)
	f.login(t, desk, "carol")
	support := f.impersonate(t, desk, f.bob)
	f.do(t, desk, "POST", "/sessions", strings.NewReader(`{"username":"bob","password":"password"}`), jsonType).
		wantProblem(t, http.StatusConflict, middleware.ReasonLimitReached)
	if s, err := f.m.Session(t.Context(), support.ID); err != nil || !s.RevokedAt.IsZero() {
		t.Errorf("the support session after the refused sign-in: revoked %q, %v", s.RevokedReason, err)
	}
}
