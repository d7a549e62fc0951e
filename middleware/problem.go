package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sessionkit/sessionkit"
)

// Machine-readable reasons carried by a Problem. Clients switch on these,
// never on Title or Detail.
const (
	ReasonNoSession            = "no_session"             // 401: no, malformed, unknown or ambiguous token
	ReasonSessionRevoked       = "session_revoked"        // 401: signed out (logout, revoke, IP policy)
	ReasonSessionLimitExceeded = "session_limit_exceeded" // 401: evicted by a newer login
	ReasonSessionExpired       = "session_expired"        // 401: past its absolute lifetime
	ReasonSessionIdle          = "session_idle"           // 401: past its idle timeout
	ReasonStoreUnavailable     = "store_unavailable"      // 503: Redis down, slow or failing
	ReasonInvalidID            = "invalid_id"             // 400: a session id that is not a UUID
	ReasonNotFound             = "not_found"              // 404: unknown or foreign session
	ReasonCurrentSession       = "current_session"        // 400: revoke-by-id of the caller's own session
	ReasonCrossOrigin          = "cross_origin"           // 403: refused cross-site request
	ReasonInvalidRequest       = "invalid_request"        // 400: malformed body or parameter
	ReasonInvalidCredentials   = "invalid_credentials"    // 401: the login check refused
	ReasonRequestTooLarge      = "request_too_large"      // 413: body over the limit
	ReasonUnsupportedMedia     = "unsupported_media_type" // 415: body neither JSON nor a form
	ReasonInternal             = "internal_error"         // 500: anything else
	ReasonRefreshReused        = "refresh_token_reused"   // 401: a superseded refresh token came back; the session is revoked
	ReasonInvalidRefreshToken  = "invalid_refresh_token"  // 401: a malformed or unknown refresh token
	ReasonTokensDisabled       = "bearer_tokens_disabled" // 404: the Manager has no access tokens (sessionkit.WithAccessTokens)
	ReasonLimitReached         = "session_limit_reached"  // 409: a sign-in refused at the limit (sessionkit.RejectNew); nothing written
)

// ProblemTypePrefix starts the type URI of every Problem: the type of a
// "no_session" problem is "urn:sessionkit:problem:no_session".
const ProblemTypePrefix = "urn:sessionkit:problem:"

// Problem is an RFC 9457 problem detail with a machine-readable reason.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Reason is the stable machine-readable cause, one of the Reason constants
	// or an app-defined value.
	Reason string `json:"reason"`
	// RevokedReason and RevokedAt, on the 401 of a revoked session, are the
	// reason the app (or sessionkit) stored and when: "password_changed",
	// "logout_everywhere", "revoked_by_user"... Reason stays the category
	// (session_revoked, session_limit_exceeded, refresh_token_reused).
	RevokedReason string     `json:"revoked_reason,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	// ActiveSessions, on a 409 session_limit_reached, is how many sessions
	// the user holds (not which).
	ActiveSessions int `json:"active_sessions,omitempty"`
	// Err is the error the Problem was made from, when there is one, for an
	// ErrorWriter that renders its own words (errors.As to
	// *sessionkit.RevokedError). It is never written to the client.
	Err error `json:"-"`
}

var titles = map[string]string{
	ReasonNoSession:            "Not signed in",
	ReasonSessionRevoked:       "Session revoked",
	ReasonSessionLimitExceeded: "Session ended by the session limit",
	ReasonSessionExpired:       "Session expired",
	ReasonSessionIdle:          "Session timed out",
	ReasonStoreUnavailable:     "Session store unavailable",
	ReasonInvalidID:            "Invalid session id",
	ReasonNotFound:             "Session not found",
	ReasonCurrentSession:       "Cannot revoke the current session here",
	ReasonCrossOrigin:          "Cross-origin request refused",
	ReasonInvalidRequest:       "Invalid request",
	ReasonInvalidCredentials:   "Invalid credentials",
	ReasonRequestTooLarge:      "Request too large",
	ReasonUnsupportedMedia:     "Unsupported media type",
	ReasonInternal:             "Internal error",
	ReasonRefreshReused:        "Refresh token reused",
	ReasonInvalidRefreshToken:  "Invalid refresh token",
	ReasonTokensDisabled:       "Bearer tokens are not enabled",
	ReasonLimitReached:         "Session limit reached",
}

// NewProblem returns the Problem with the given status, reason and detail;
// its type is ProblemTypePrefix+reason and its title the reason's title (the
// status text for an app-defined reason).
func NewProblem(status int, reason, detail string) Problem {
	title, ok := titles[reason]
	if !ok {
		title = http.StatusText(status)
	}
	return Problem{Type: ProblemTypePrefix + reason, Title: title, Status: status, Detail: detail, Reason: reason}
}

// Prebuilt problems: the hot path of a refusal allocates nothing to build them.
var (
	problemNoSession   = NewProblem(http.StatusUnauthorized, ReasonNoSession, "The request carries no valid session.")
	problemRevoked     = NewProblem(http.StatusUnauthorized, ReasonSessionRevoked, "The session was signed out.")
	problemEvicted     = NewProblem(http.StatusUnauthorized, ReasonSessionLimitExceeded, "The session was signed out because a newer sign-in exceeded the session limit.")
	problemExpired     = NewProblem(http.StatusUnauthorized, ReasonSessionExpired, "The session reached the end of its lifetime.")
	problemIdle        = NewProblem(http.StatusUnauthorized, ReasonSessionIdle, "The session was unused for too long.")
	problemUnavailable = NewProblem(http.StatusServiceUnavailable, ReasonStoreUnavailable, "The session store is unavailable; try again shortly.")
	problemNotFound    = NewProblem(http.StatusNotFound, ReasonNotFound, "No such session.")
	problemInvalid     = NewProblem(http.StatusBadRequest, ReasonInvalidRequest, "The request is malformed.")
	problemInternal    = NewProblem(http.StatusInternalServerError, ReasonInternal, "The request could not be completed.")
	problemReused      = NewProblem(http.StatusUnauthorized, ReasonRefreshReused, "A refresh token was used again after it was replaced; the session is signed out.")
)

// problemBody is a Problem's response body and its Content-Length.
type problemBody struct{ body, length string }

// prebuiltBodies holds the bodies of the prebuilt problems, encoded once, so
// that WriteProblem encodes only the problems an app builds. It is never
// written after init.
var prebuiltBodies = func() map[Problem]problemBody {
	m := make(map[Problem]problemBody)
	for _, p := range []Problem{
		problemNoSession, problemRevoked, problemEvicted, problemExpired, problemIdle,
		problemUnavailable, problemNotFound, problemInvalid, problemInternal, problemReused,
	} {
		m[p] = encodeProblem(p)
	}
	return m
}()

// encodeProblem returns p as JSON, newline-terminated, and its length.
func encodeProblem(p Problem) problemBody {
	body, err := json.Marshal(p)
	if err != nil { // a Problem always marshals; keep the status regardless
		body = []byte(`{"status":` + strconv.Itoa(p.Status) + `}`)
	}
	body = append(body, '\n')
	return problemBody{body: string(body), length: strconv.Itoa(len(body))}
}

// ProblemFor maps an error of sessionkit or of this package to its Problem:
//
//	sessionkit.ErrNoSession (and this package's token errors)  401 no_session
//	*sessionkit.RevokedError / ErrRevoked                       401 session_revoked (evicted: session_limit_exceeded;
//	                                                                a reused refresh token: refresh_token_reused)
//	sessionkit.ErrExpired                                       401 session_expired
//	sessionkit.ErrIdle                                          401 session_idle
//	sessionkit.ErrUnavailable, context deadline or cancellation 503 store_unavailable
//	*sessionkit.LimitError / ErrLimitReached                    409 session_limit_reached (with active_sessions)
//	sessionkit.ErrNotFound                                      404 not_found
//	sessionkit.ErrInvalid                                       400 invalid_request
//	anything else                                               500 internal_error
//
// The Manager reports an unknown token as ErrNotFound; Authenticator turns
// that into ErrInvalidToken (401) before it gets here. Detail never repeats
// the error text, which may name servers or addresses.
func ProblemFor(err error) Problem {
	switch {
	case errors.Is(err, sessionkit.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return problemUnavailable
	case errors.Is(err, sessionkit.ErrNoSession):
		return problemNoSession
	}
	if lim, ok := errors.AsType[*sessionkit.LimitError](err); ok {
		p := NewProblem(http.StatusConflict, ReasonLimitReached,
			"You are signed in on as many devices as your plan allows: sign out on one of them first.")
		p.ActiveSessions = lim.Active
		return p
	}
	if rev, ok := errors.AsType[*sessionkit.RevokedError](err); ok {
		p := problemRevoked
		switch rev.Reason {
		case sessionkit.ReasonLimitExceeded:
			p = problemEvicted
		case sessionkit.ReasonRefreshReused:
			p = problemReused
		}
		if rev.Reason != "" {
			p.RevokedReason = rev.Reason
		}
		if !rev.At.IsZero() {
			at := rev.At.UTC()
			p.RevokedAt = &at
		}
		return p
	}
	switch {
	case errors.Is(err, sessionkit.ErrRevoked):
		return problemRevoked
	case errors.Is(err, sessionkit.ErrExpired):
		return problemExpired
	case errors.Is(err, sessionkit.ErrIdle):
		return problemIdle
	case errors.Is(err, sessionkit.ErrNotFound):
		return problemNotFound
	case errors.Is(err, sessionkit.ErrInvalid):
		return problemInvalid
	}
	return problemInternal
}

// ErrorWriter writes a Problem as the response. The middleware and the
// handlers set Vary, Cache-Control and WWW-Authenticate on w before they
// call it; a replacement keeps those and writes the body of its choice.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, p Problem)

// WriteProblem is the default ErrorWriter: p as application/problem+json,
// with Cache-Control: no-store.
func WriteProblem(w http.ResponseWriter, _ *http.Request, p Problem) {
	p.Err = nil // not part of the body, nor of the prebuilt bodies' keys
	b, ok := prebuiltBodies[p]
	if !ok {
		b = encodeProblem(p)
	}
	// One backing array for the four values, each header's slice full
	// (len == cap) so that an Add by the app copies rather than writing
	// into the next header's value.
	vals := []string{"application/problem+json", "no-store", "nosniff", b.length}
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["Cache-Control"] = vals[1:2:2]
	h["X-Content-Type-Options"] = vals[2:3:3]
	h["Content-Length"] = vals[3:4:4]
	w.WriteHeader(p.Status)
	io.WriteString(w, b.body)
}
