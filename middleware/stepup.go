package middleware

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sessionkit/sessionkit"
)

// ReasonReauthenticationRequired is the reason of the 401 of RequireRecentAuth
// and RequireLevel: the session is valid, but its credentials were checked
// too long ago, or not strongly enough, for this action.
const ReasonReauthenticationRequired = "reauthentication_required"

// RequireRecentAuth returns middleware, to put behind a's Middleware, that
// lets a request through only if its credentials were checked within
// maxAge (sign-in, or POST /sessions/current/reauthenticate): for a
// sensitive action such as changing a password or moving money. Otherwise
// it answers 401 reauthentication_required through the error writer; a
// bearer client also gets WWW-Authenticate: Bearer
// error="insufficient_user_authentication" with max_age (RFC 9470). What
// counts is the credential's own authentication: an access token minted
// before a re-authentication does not gain from it. A support session
// (Session.ImpersonatedBy) never passes, whenever it was opened: the user's
// credentials were not checked for it. It gets 403 impersonation_forbidden,
// as from RequireNotImpersonated.
func (a *Authenticator) RequireRecentAuth(maxAge time.Duration) func(http.Handler) http.Handler {
	secs := strconv.FormatInt(int64(maxAge/time.Second), 10)
	return a.requireAuth(func(s sessionkit.Session) bool {
		at := s.AuthenticatedAt
		return !at.IsZero() && a.m.Now().Sub(at) <= maxAge
	}, `max_age=`+secs, fmt.Sprintf("Confirm it is you: sign in again (within %v) to continue.", maxAge))
}

// RequireLevel returns middleware, to put behind a's Middleware, that lets a
// request through only if its session's assurance level is at least level
// (sessionkit.AAL1, AAL2, AAL3), as an app raises it with
// Manager.Reauthenticate after a second factor. Otherwise it answers like
// RequireRecentAuth, with acr_values for a bearer client (RFC 9470), and
// refuses a support session as RequireRecentAuth does.
func (a *Authenticator) RequireLevel(level string) func(http.Handler) http.Handler {
	want := aalRank(level)
	return a.requireAuth(func(s sessionkit.Session) bool {
		return want > 0 && aalRank(s.AAL) >= want
	}, `acr_values="`+level+`"`, "Confirm it is you with a stronger method to continue.")
}

// aalRank orders the assurance levels; 0 for anything else.
func aalRank(level string) int {
	switch level {
	case sessionkit.AAL1:
		return 1
	case sessionkit.AAL2:
		return 2
	case sessionkit.AAL3:
		return 3
	}
	return 0
}

func (a *Authenticator) requireAuth(ok func(sessionkit.Session) bool, param, detail string) func(http.Handler) http.Handler {
	challenge := `Bearer realm="sessionkit", error="insufficient_user_authentication", error_description="` + detail + `", ` + param
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, authenticated := sessionkit.FromContext(r.Context())
			if !authenticated {
				a.Fail(w, r, ErrNoToken)
				return
			}
			if s.ImpersonatedBy != "" {
				a.refuseSupport(w, r)
				return
			}
			if ok(s) {
				next.ServeHTTP(w, r)
				return
			}
			p := NewProblem(http.StatusUnauthorized, ReasonReauthenticationRequired, detail)
			if s.Bearer {
				a.sessionHeaders(w.Header(), nil)
				w.Header().Set("Www-Authenticate", challenge)
			} else {
				// A 401 sends a challenge (RFC 9110 §15.5.2): the cookie's.
				a.sessionHeaders(w.Header(), a.challenges[:1])
			}
			a.writeErr(w, r, p)
		})
	}
}

// ReasonImpersonationForbidden is the reason of RequireNotImpersonated's 403.
const ReasonImpersonationForbidden = "impersonation_forbidden"

// RequireNotImpersonated refuses, with 403 impersonation_forbidden, a
// request made with a support session that an operator opened as the user
// (Session.ImpersonatedBy): put it, behind the session middleware, on the
// actions a support agent must never take as the user (change a password,
// move money).
func (a *Authenticator) RequireNotImpersonated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessionkit.FromContext(r.Context())
		switch {
		case !ok:
			a.Fail(w, r, ErrNoToken)
		case s.ImpersonatedBy != "":
			a.refuseSupport(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// refuseSupport answers 403 impersonation_forbidden to a support session.
func (a *Authenticator) refuseSupport(w http.ResponseWriter, r *http.Request) {
	a.WriteProblem(w, r, NewProblem(http.StatusForbidden, ReasonImpersonationForbidden,
		"This action is not allowed in a support session."))
}
