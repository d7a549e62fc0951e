package handlers_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// TestRevokedReasonReachesTheClient: after the app revokes every session
// for a reason of its own, the other device's 401 keeps reason
// session_revoked and adds the stored reason and when; an error writer
// reaches the *RevokedError itself.
func TestRevokedReasonReachesTheClient(t *testing.T) {
	var seen *sessionkit.RevokedError
	f := newFixture(t, setup{session: func(o *middleware.Options) {
		o.ErrorWriter = func(w http.ResponseWriter, r *http.Request, p middleware.Problem) {
			if rev, ok := errors.AsType[*sessionkit.RevokedError](p.Err); ok {
				seen = rev
			}
			middleware.WriteProblem(w, r, p)
		}
	}})
	phone, laptop := f.client(t), f.client(t)
	f.login(t, phone, "alice")
	f.login(t, laptop, "alice")
	f.clock.Advance(time.Second)
	at := f.clock.Now().UTC().Truncate(time.Millisecond)
	if _, err := f.m.RevokeAllUserSessions(t.Context(), sessionkit.RevokeAllUserSessions{UserID: f.alice, Reason: "password_changed"}); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, phone, "GET", "/sessions/current", nil, nil)
	r.wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
	p := r.problem(t)
	if p.RevokedReason != "password_changed" || p.RevokedAt == nil || !p.RevokedAt.Equal(at) {
		t.Errorf("problem: revoked_reason %q, revoked_at %v; want password_changed at %v", p.RevokedReason, p.RevokedAt, at)
	}
	if !strings.Contains(string(r.body), `"revoked_reason":"password_changed"`) {
		t.Errorf("body %s lacks revoked_reason", r.body)
	}
	if seen == nil || seen.Reason != "password_changed" {
		t.Errorf("the error writer's error: got %v, want the *RevokedError", seen)
	}
	// A problem that is not a revocation carries neither field.
	nr := f.do(t, f.client(t), "GET", "/sessions/current", nil, nil)
	if strings.Contains(string(nr.body), "revoked_") {
		t.Errorf("no_session problem %s mentions a revocation", nr.body)
	}
}
