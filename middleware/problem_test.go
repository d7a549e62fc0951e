package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

func TestProblemFor(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{"no session", sessionkit.ErrNoSession, 401, middleware.ReasonNoSession},
		{"no token", middleware.ErrNoToken, 401, middleware.ReasonNoSession},
		{"invalid token", middleware.ErrInvalidToken, 401, middleware.ReasonNoSession},
		{"ambiguous token", middleware.ErrAmbiguousToken, 401, middleware.ReasonNoSession},
		{"revoked", &sessionkit.RevokedError{Reason: sessionkit.ReasonLogout, At: time.Now()}, 401, middleware.ReasonSessionRevoked},
		{"revoked, wrapped", fmt.Errorf("op: %w", &sessionkit.RevokedError{Reason: sessionkit.ReasonIPChanged}), 401, middleware.ReasonSessionRevoked},
		{"revoked without reason", sessionkit.ErrRevoked, 401, middleware.ReasonSessionRevoked},
		{"evicted", &sessionkit.RevokedError{Reason: sessionkit.ReasonLimitExceeded}, 401, middleware.ReasonSessionLimitExceeded},
		{"expired", sessionkit.ErrExpired, 401, middleware.ReasonSessionExpired},
		{"idle", sessionkit.ErrIdle, 401, middleware.ReasonSessionIdle},
		{"store unavailable", fmt.Errorf("%w: touch: dial tcp: refused", sessionkit.ErrUnavailable), 503, middleware.ReasonStoreUnavailable},
		{"deadline", context.DeadlineExceeded, 503, middleware.ReasonStoreUnavailable},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), 503, middleware.ReasonStoreUnavailable},
		{"not found", sessionkit.ErrNotFound, 404, middleware.ReasonNotFound},
		{"invalid", fmt.Errorf("%w: Reason: empty", sessionkit.ErrInvalid), 400, middleware.ReasonInvalidRequest},
		{"other", errors.New("boom"), 500, middleware.ReasonInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := middleware.ProblemFor(tc.err)
			if p.Status != tc.status || p.Reason != tc.reason {
				t.Errorf("got %d %q, want %d %q", p.Status, p.Reason, tc.status, tc.reason)
			}
			if p.Type != middleware.ProblemTypePrefix+tc.reason || p.Title == "" || p.Detail == "" {
				t.Errorf("got type %q, title %q, detail %q; want the reason's type, a title and a detail", p.Type, p.Title, p.Detail)
			}
		})
	}
	if p := middleware.ProblemFor(fmt.Errorf("%w: dial tcp 10.0.0.5:6379", sessionkit.ErrUnavailable)); p.Detail == "" ||
		containsAny(p.Detail, "10.0.0.5", "6379") {
		t.Errorf("detail %q leaks the error text", p.Detail)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestWriteProblem(t *testing.T) {
	rec := httptest.NewRecorder()
	middleware.WriteProblem(rec, httptest.NewRequest("GET", "/", nil), middleware.NewProblem(http.StatusConflict, "app_reason", "Something the app defines."))
	if rec.Code != http.StatusConflict {
		t.Errorf("status: got %d, want 409", rec.Code)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/problem+json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "urn:sessionkit:problem:app_reason", "title": "Conflict", "status": float64(409),
		"detail": "Something the app defines.", "reason": "app_reason",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s: got %v, want %v", k, body[k], v)
		}
	}
	if len(body) != len(want) {
		t.Errorf("members: got %v, want exactly %v", body, want)
	}
}

// TestWriteProblemBody checks that WriteProblem writes every problem, the
// prebuilt ones of ProblemFor and an app's, as its JSON encoding and a
// newline, with a matching Content-Length.
func TestWriteProblemBody(t *testing.T) {
	problems := []middleware.Problem{
		middleware.NewProblem(http.StatusConflict, "app_reason", "Something the app defines."),
		middleware.NewProblem(http.StatusTeapot, "app_reason", ""),
	}
	for _, err := range []error{
		sessionkit.ErrUnavailable, sessionkit.ErrNoSession, &sessionkit.RevokedError{},
		&sessionkit.RevokedError{Reason: sessionkit.ReasonLimitExceeded}, sessionkit.ErrExpired,
		sessionkit.ErrIdle, sessionkit.ErrNotFound, sessionkit.ErrInvalid, errors.New("other"),
	} {
		problems = append(problems, middleware.ProblemFor(err))
	}
	for _, p := range problems {
		rec := httptest.NewRecorder()
		middleware.WriteProblem(rec, httptest.NewRequest("GET", "/", nil), p)
		body, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		want := string(body) + "\n"
		if got := rec.Body.String(); got != want {
			t.Errorf("%s: body %q, want %q", p.Reason, got, want)
		}
		if got, want := rec.Header().Get("Content-Length"), fmt.Sprint(len(want)); got != want {
			t.Errorf("%s: Content-Length %s, want %s", p.Reason, got, want)
		}
		if rec.Code != p.Status {
			t.Errorf("%s: status %d, want %d", p.Reason, rec.Code, p.Status)
		}
	}
}
