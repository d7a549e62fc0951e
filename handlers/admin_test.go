package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// operatorFixture mounts the admin routes on f: the operator is whoever
// signed in as "carol" (a user of the fixture's credential check too).
func operatorFixture(t *testing.T, hook sessionkit.Hook) *fixture {
	t.Helper()
	s := setup{}
	if hook != nil {
		s.mopts = []sessionkit.Option{sessionkit.WithHook(hook)}
	}
	f := newFixture(t, s)
	f.users.ids["carol"] = operatorID // carol signs in like any user; Authorize makes her an operator
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{
		Authorize: func(r *http.Request) (string, error) {
			s, _ := sessionkit.FromContext(r.Context())
			if s.UserID != operatorID || s.ImpersonatedBy != "" {
				return "", errors.New("not an operator")
			}
			return "support (carol)", nil
		},
		ImpersonationTTL: 30 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	admin.Mount(f.mux)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.mux.Handle("POST /password", f.auth.Middleware(f.auth.RequireNotImpersonated(ok)))
	return f
}

var operatorID = uuid.MustParse("0b7f5c8e-6d1a-4a8e-9a0f-3e2d1c4b5a69")

// impersonate opens a support session as user from op, an operator's
// client, which then carries it; it fails the test unless that is 201.
func (f *fixture) impersonate(t *testing.T, op *http.Client, user uuid.UUID) handlers.SessionJSON {
	t.Helper()
	r := f.do(t, op, "POST", "/admin/users/"+user.String()+"/impersonate", nil, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("impersonate: got %d (%s)", r.status, r.body)
	}
	var s handlers.SessionJSON
	r.decode(t, &s)
	return s
}

func TestAdminAuthorization(t *testing.T) {
	f := operatorFixture(t, nil)
	alice, _ := f.login(t, f.client(t), "alice")
	path := "/admin/users/" + f.alice.String() + "/sessions"
	// No session: 401; a session that Authorize refuses: 403.
	f.do(t, nil, "GET", path, nil, nil).wantProblem(t, http.StatusUnauthorized, middleware.ReasonNoSession)
	user := f.client(t)
	f.login(t, user, "bob")
	f.do(t, user, "GET", path, nil, nil).wantProblem(t, http.StatusForbidden, handlers.ReasonForbidden)
	f.do(t, user, "DELETE", path+"/"+alice.ID.String(), nil, nil).wantProblem(t, http.StatusForbidden, handlers.ReasonForbidden)
	// The operator: 200; malformed ids: 400; a cross-site mutation: 403.
	op := f.client(t)
	f.login(t, op, "carol")
	if r := f.do(t, op, "GET", path, nil, nil); r.status != http.StatusOK {
		t.Fatalf("operator list: got %d (%s)", r.status, r.body)
	}
	f.do(t, op, "GET", "/admin/users/not-a-uuid/sessions", nil, nil).wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidID)
	f.do(t, op, "DELETE", path+"/not-a-uuid", nil, nil).wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidID)
	f.do(t, op, "DELETE", path+"/"+alice.ID.String(), nil, http.Header{"Sec-Fetch-Site": {"cross-site"}}).
		wantProblem(t, http.StatusForbidden, middleware.ReasonCrossOrigin)
	f.do(t, op, "GET", "/admin/nothing", nil, nil).wantProblem(t, http.StatusNotFound, middleware.ReasonNotFound)
	// Bad bodies: 400, and the session is untouched.
	for name, body := range map[string]string{
		"a reason that is not a string": `{"reason": 5}`,
		"not JSON":                      `reason=x`,
		"a reason with a newline":       `{"reason": "a\nb"}`,
		"a reason too long":             `{"reason": "` + strings.Repeat("r", 129) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			f.do(t, op, "DELETE", path+"/"+alice.ID.String(), strings.NewReader(body), jsonType).
				wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidRequest)
		})
	}
	f.do(t, op, "DELETE", path+"/"+alice.ID.String(), strings.NewReader(`{}`), http.Header{"Content-Type": {"text/plain"}}).
		wantProblem(t, http.StatusUnsupportedMediaType, middleware.ReasonUnsupportedMedia)
	if s, err := f.m.Session(t.Context(), alice.ID); err != nil || !s.RevokedAt.IsZero() {
		t.Fatalf("alice's session after refused requests: revoked at %v, %v; want untouched", s.RevokedAt, err)
	}
}

// The admin routes take a user or session id in the canonical form only,
// as the user routes do: braces, urn:uuid: and bare hex are 400 invalid_id.
func TestAdminRefusesNonCanonicalIDs(t *testing.T) {
	f := operatorFixture(t, nil)
	alice, _ := f.login(t, f.client(t), "alice")
	op := f.client(t)
	f.login(t, op, "carol")
	forms := func(id uuid.UUID) map[string]string {
		return map[string]string{
			"braces":   "{" + id.String() + "}",
			"urn":      "urn:uuid:" + id.String(),
			"bare hex": strings.ReplaceAll(id.String(), "-", ""),
		}
	}
	for form, user := range forms(f.alice) {
		t.Run("user id "+form, func(t *testing.T) {
			f.do(t, op, "GET", "/admin/users/"+user+"/sessions", nil, nil).wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidID)
		})
	}
	for form, id := range forms(alice.ID) {
		t.Run("session id "+form, func(t *testing.T) {
			f.do(t, op, "DELETE", "/admin/users/"+f.alice.String()+"/sessions/"+id, nil, nil).wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidID)
		})
	}
	if s, err := f.m.Session(t.Context(), alice.ID); err != nil || !s.RevokedAt.IsZero() {
		t.Fatalf("alice's session after refused requests: revoked at %v, %v; want untouched", s.RevokedAt, err)
	}
}

func TestAdminRevokeRecordsTheActor(t *testing.T) {
	var mu sync.Mutex
	var hooked []sessionkit.Event
	f := operatorFixture(t, func(_ context.Context, e sessionkit.Event) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, e)
	})
	phone, laptop := f.client(t), f.client(t)
	ps, _ := f.login(t, phone, "alice")
	f.login(t, laptop, "alice")
	op := f.client(t)
	f.login(t, op, "carol")

	r := f.do(t, op, "DELETE", "/admin/users/"+f.alice.String()+"/sessions/"+ps.ID.String(),
		strings.NewReader(`{"reason":"stolen_phone"}`), jsonType)
	if r.status != http.StatusNoContent {
		t.Fatalf("revoke: got %d (%s)", r.status, r.body)
	}
	// The phone's next request says why.
	pr := f.do(t, phone, "GET", "/sessions/current", nil, nil)
	pr.wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
	if p := pr.problem(t); p.RevokedReason != "stolen_phone" {
		t.Errorf("revoked_reason: got %q, want stolen_phone", p.RevokedReason)
	}
	// alice sees who did it in her audit trail; so do hooks and the operator.
	var evs struct {
		Events []sessionkit.Event `json:"events"`
	}
	f.do(t, laptop, "GET", "/sessions/events", nil, nil).decode(t, &evs)
	if len(evs.Events) == 0 || evs.Events[0].Type != sessionkit.EventRevoked || evs.Events[0].Actor != "support (carol)" {
		t.Errorf("alice's newest event: %+v, want a revocation by support (carol)", evs.Events)
	}
	var opEvs struct {
		Events []sessionkit.Event `json:"events"`
	}
	f.do(t, op, "GET", "/admin/users/"+f.alice.String()+"/events", nil, nil).decode(t, &opEvs)
	if len(opEvs.Events) != len(evs.Events) {
		t.Errorf("the operator's view of the trail: %d events, want %d", len(opEvs.Events), len(evs.Events))
	}
	// Sign out everywhere, default reason.
	r = f.do(t, op, "DELETE", "/admin/users/"+f.alice.String()+"/sessions", nil, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"revoked":1`) {
		t.Fatalf("revoke all: got %d %s", r.status, r.body)
	}
	lr := f.do(t, laptop, "GET", "/sessions/current", nil, nil)
	if p := lr.problem(t); p.RevokedReason != handlers.ReasonRevokedByAdmin {
		t.Errorf("revoked_reason: got %q, want %s", p.RevokedReason, handlers.ReasonRevokedByAdmin)
	}
	if err := f.m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	actors := 0
	for _, e := range hooked {
		if e.Type == sessionkit.EventRevoked && e.Actor == "support (carol)" {
			actors++
		}
	}
	if actors != 2 {
		t.Errorf("hooks: %d revocations by the operator, want 2 (%+v)", actors, hooked)
	}
}

func TestAdminLimit(t *testing.T) {
	f := operatorFixture(t, nil)
	op := f.client(t)
	f.login(t, op, "carol")
	path := "/admin/users/" + f.bob.String() + "/limit"
	if r := f.do(t, op, "PUT", path, strings.NewReader(`{"limit": 3}`), jsonType); r.status != http.StatusOK {
		t.Fatalf("set limit: got %d (%s)", r.status, r.body)
	}
	if n, err := f.m.UserLimit(t.Context(), f.bob); err != nil || n != 3 {
		t.Errorf("bob's limit: got %d, %v; want 3", n, err)
	}
	for _, bad := range []string{`{"limit": 0}`, `{"limit": -2}`, `{}`, `[]`} {
		f.do(t, op, "PUT", path, strings.NewReader(bad), jsonType).wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidRequest)
	}
	if r := f.do(t, op, "DELETE", path, nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("clear limit: got %d", r.status)
	}
	if n, _ := f.m.UserLimit(t.Context(), f.bob); n != 1 {
		t.Errorf("bob's limit after clearing: got %d, want his tier's 1", n)
	}
}

func TestAdminImpersonation(t *testing.T) {
	f := operatorFixture(t, nil)
	bobDevice := f.client(t)
	f.login(t, bobDevice, "bob") // bob's tier allows one session
	op := f.client(t)
	carol, carolToken := f.login(t, op, "carol")
	s := f.impersonate(t, op, f.bob)
	if s.ImpersonatedBy == nil || *s.ImpersonatedBy != "support (carol)" || s.UserID != f.bob {
		t.Fatalf("support session: %+v", s)
	}
	// The support session's cookie replaced the operator's, whose session
	// ends with it, as a login's does: no live session is left that no
	// browser holds.
	f.do(t, nil, "GET", "/sessions/current", nil, withToken(carolToken)).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
	if old, err := f.m.Session(t.Context(), carol.ID); err != nil || old.RevokedReason != sessionkit.ReasonLogin {
		t.Errorf("the operator's own session: %+v, %v; want revoked, reason %s", old, err, sessionkit.ReasonLogin)
	}
	if d := s.ExpiresAt.Sub(s.CreatedAt); d != 30*time.Minute {
		t.Errorf("support session lifetime: got %v, want 30m", d)
	}
	// Outside bob's limit: his own session is still valid.
	if r := f.do(t, bobDevice, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Errorf("bob's own session after the support session: got %d", r.status)
	}
	// bob sees it in his device list, marked.
	var list struct {
		Sessions []handlers.SessionJSON `json:"sessions"`
	}
	f.do(t, bobDevice, "GET", "/sessions", nil, nil).decode(t, &list)
	marked := 0
	for _, x := range list.Sessions {
		if x.ImpersonatedBy != nil {
			marked++
		}
	}
	if len(list.Sessions) != 2 || marked != 1 {
		t.Errorf("bob's devices: %d, %d marked; want 2 and 1", len(list.Sessions), marked)
	}
	// A support session may not do what only the user may.
	f.do(t, op, "POST", "/password", nil, nil).wantProblem(t, http.StatusForbidden, middleware.ReasonImpersonationForbidden)
	if r := f.do(t, bobDevice, "POST", "/password", nil, nil); r.status != http.StatusNoContent {
		t.Errorf("bob changing his own password: got %d", r.status)
	}
	// A support session is no operator: it cannot reach the admin routes.
	f.do(t, op, "GET", "/admin/users/"+f.alice.String()+"/sessions", nil, nil).wantProblem(t, http.StatusForbidden, handlers.ReasonForbidden)
	// bob signing out everywhere else ends the support session too.
	if r := f.do(t, bobDevice, "DELETE", "/sessions", nil, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"revoked":1`) {
		t.Fatalf("bob signs out everywhere else: got %d %s", r.status, r.body)
	}
	f.do(t, op, "GET", "/sessions/current", nil, nil).wantProblem(t, http.StatusUnauthorized, middleware.ReasonSessionRevoked)
}

// A support session acts as the user, but what it does is the operator's:
// each revocation it makes through the user's own routes, and each
// provider access it records, names the operator; and it cannot sign the
// user out everywhere, pass a recent-authentication or level check (the
// user's credentials were never checked), or reach the admin routes, even
// under an Authorize that forgets to refuse it.
func TestSupportSessionIsBounded(t *testing.T) {
	const actor = "support (carol)"
	f := operatorFixture(t, nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.mux.Handle("POST /transfer", f.auth.Middleware(f.auth.RequireRecentAuth(time.Hour)(ok)))
	f.mux.Handle("POST /aal1", f.auth.Middleware(f.auth.RequireLevel(sessionkit.AAL1)(ok)))
	f.mux.Handle("GET /providers/{name}/accounts", f.auth.Middleware(middleware.RecordProviderFromPath("name", middleware.ProviderOptions{})(ok)))
	phone, laptop, tablet := f.client(t), f.client(t), f.client(t)
	ps, _ := f.login(t, phone, "alice")
	ls, _ := f.login(t, laptop, "alice")
	f.login(t, tablet, "alice")
	op := f.client(t)
	f.login(t, op, "carol")
	f.impersonate(t, op, f.alice)
	// The user herself passes both checks: she has just signed in.
	for _, path := range []string{"/transfer", "/aal1"} {
		if r := f.do(t, laptop, "POST", path, nil, nil); r.status != http.StatusNoContent {
			t.Fatalf("alice's own POST %s: got %d (%s)", path, r.status, r.body)
		}
		f.do(t, op, "POST", path, nil, nil).wantProblem(t, http.StatusForbidden, middleware.ReasonImpersonationForbidden)
	}
	f.do(t, op, "DELETE", "/sessions", nil, nil).wantProblem(t, http.StatusForbidden, middleware.ReasonImpersonationForbidden)
	f.do(t, op, "DELETE", "/sessions?include_current=true", nil, nil).wantProblem(t, http.StatusForbidden, middleware.ReasonImpersonationForbidden)
	if r := f.do(t, laptop, "GET", "/sessions/current", nil, nil); r.status != http.StatusOK {
		t.Fatalf("alice's laptop after the refused sign-out everywhere: got %d", r.status)
	}
	if r := f.do(t, op, "GET", "/providers/schwab/accounts", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("provider access: got %d (%s)", r.status, r.body)
	}
	if r := f.do(t, op, "DELETE", "/sessions/"+ps.ID.String(), nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("support session revoking alice's phone: got %d (%s)", r.status, r.body)
	}
	if r := f.do(t, op, "DELETE", "/sessions/current", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("support session signing out: got %d (%s)", r.status, r.body)
	}
	events, err := f.m.Events(t.Context(), f.alice, sessionkit.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[sessionkit.EventType]int{sessionkit.EventRevoked: 2, sessionkit.EventProviderAccessed: 1}
	for _, e := range events {
		if _, counted := want[e.Type]; !counted || e.SessionID == ls.ID {
			continue
		}
		want[e.Type]--
		if e.Actor != actor {
			t.Errorf("%s event of session %s (reason %q): actor %q, want %q", e.Type, e.SessionID, e.Reason, e.Actor, actor)
		}
	}
	for typ, n := range want {
		if n != 0 {
			t.Errorf("%s events: %d fewer than expected", typ, n)
		}
	}
}

// The admin routes refuse a support session themselves: an Authorize that
// checks only the user's role would otherwise let an agent who opens a
// support session as a senior operator act as that operator.
func TestAdminRefusesSupportSessions(t *testing.T) {
	f := newFixture(t, setup{})
	f.users.ids["carol"] = operatorID
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{
		Authorize: func(r *http.Request) (string, error) { // roles only: alice and carol are operators
			s, _ := sessionkit.FromContext(r.Context())
			if s.UserID != operatorID && s.UserID != f.alice {
				return "", errors.New("not an operator")
			}
			return "operator " + s.UserID.String(), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	admin.Mount(f.mux)
	op := f.client(t)
	f.login(t, op, "carol")
	f.impersonate(t, op, f.alice)
	path := "/admin/users/" + f.bob.String() + "/sessions"
	f.do(t, op, "GET", path, nil, nil).wantProblem(t, http.StatusForbidden, handlers.ReasonForbidden)
	f.do(t, op, "POST", "/admin/users/"+f.bob.String()+"/impersonate", nil, nil).wantProblem(t, http.StatusForbidden, handlers.ReasonForbidden)
	alice := f.client(t)
	f.login(t, alice, "alice")
	if r := f.do(t, alice, "GET", path, nil, nil); r.status != http.StatusOK {
		t.Fatalf("alice, an operator in her own session: got %d (%s)", r.status, r.body)
	}
}

// The admin routes take JSON bodies only: a form is 400 invalid_request,
// another type 415 unsupported_media_type (as openapi.json says).
func TestAdminBodyTypes(t *testing.T) {
	f := operatorFixture(t, nil)
	alice, _ := f.login(t, f.client(t), "alice")
	op := f.client(t)
	f.login(t, op, "carol")
	user := "/admin/users/" + f.alice.String()
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	text := http.Header{"Content-Type": {"text/plain"}}
	for _, tc := range []struct{ method, path, body string }{
		{"DELETE", user + "/sessions", "reason=x"},
		{"DELETE", user + "/sessions/" + alice.ID.String(), "reason=x"},
		{"PUT", user + "/limit", "limit=3"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			f.do(t, op, tc.method, tc.path, strings.NewReader(tc.body), form).wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidRequest)
			f.do(t, op, tc.method, tc.path, strings.NewReader(tc.body), text).wantProblem(t, http.StatusUnsupportedMediaType, middleware.ReasonUnsupportedMedia)
		})
	}
}

// TestAdminAuthorizeWithoutALabel: Authorize that lets an operator through
// (no error) without the label every event they cause must carry is the
// app's mistake, not a refusal of the operator: 500, logged at error
// naming Authorize, nothing done; before, it was a 403 logged at debug
// only, as if the operator were refused. A user id that is not a UUID is
// titled as a user id, not a session id.
func TestAdminAuthorizeWithoutALabel(t *testing.T) {
	f := newFixture(t, setup{})
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{
		Authorize: func(*http.Request) (string, error) { return "", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	admin.Mount(f.mux)
	op := f.client(t)
	f.login(t, op, "bob")
	alice, _ := f.login(t, f.client(t), "alice")
	path := "/admin/users/" + f.alice.String() + "/sessions"
	f.do(t, op, "GET", path, nil, nil).wantProblem(t, http.StatusInternalServerError, middleware.ReasonInternal)
	f.do(t, op, "DELETE", path+"/"+alice.ID.String(), nil, nil).wantProblem(t, http.StatusInternalServerError, middleware.ReasonInternal)
	if n := f.logs.Count("Authorize returned an empty label"); n != 2 {
		t.Errorf("error logs naming Authorize: got %d, want 2\n%s", n, f.logs.String())
	}
	if s, err := f.m.Session(t.Context(), alice.ID); err != nil || !s.RevokedAt.IsZero() {
		t.Fatalf("alice's session: revoked at %v, %v; want untouched", s.RevokedAt, err)
	}

	g := operatorFixture(t, nil)
	carol := g.client(t)
	g.login(t, carol, "carol")
	r := g.do(t, carol, "GET", "/admin/users/not-a-uuid/sessions", nil, nil)
	r.wantProblem(t, http.StatusBadRequest, middleware.ReasonInvalidID)
	if p := r.problem(t); p.Title != "Invalid user id" {
		t.Errorf("title: got %q, want %q", p.Title, "Invalid user id")
	}
}
