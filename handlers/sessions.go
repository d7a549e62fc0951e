package handlers

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// listResponse is the body of GET /sessions.
type listResponse struct {
	Sessions []SessionJSON `json:"sessions"`
	Total    int           `json:"total"`
}

// revokedResponse is the body of DELETE /sessions.
type revokedResponse struct {
	Revoked int `json:"revoked"`
}

// listSessions is GET /sessions[?include_revoked=true].
func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request) {
	includeRevoked, ok := boolParam(r, "include_revoked")
	if !ok {
		h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, "include_revoked must be true or false.")
		return
	}
	cur := session(r)
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	list, err := h.m.ListUserSessions(ctx, cur.UserID, sessionkit.ListOptions{IncludeRevoked: includeRevoked})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := listResponse{Sessions: make([]SessionJSON, len(list)), Total: len(list)}
	for i, s := range list {
		out.Sessions[i] = NewSessionJSON(s, s.ID == cur.ID)
	}
	writeJSON(w, http.StatusOK, out)
}

// currentSession is GET /sessions/current.
func (h *Handler) currentSession(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, NewSessionJSON(session(r), true))
}

// getSession is GET /sessions/{id}: one of the caller's sessions, in any
// state while retained. Unknown and foreign ids are the same 404.
func (h *Handler) getSession(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r)
	if !ok {
		return
	}
	cur := session(r)
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	s, err := h.m.UserSession(ctx, cur.UserID, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NewSessionJSON(s, s.ID == cur.ID))
}

// revokeSession is DELETE /sessions/{id}: sign another of the caller's
// sessions out. Unknown, foreign and already revoked ids are the same 404;
// the caller's own session is 400 (use DELETE /sessions/current).
func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r)
	if !ok {
		return
	}
	cur := session(r)
	if id == cur.ID {
		h.problem(w, r, http.StatusBadRequest, middleware.ReasonCurrentSession, "This is the current session: sign out with DELETE /sessions/current.")
		return
	}
	// In a support session, the operator did it: the event names them.
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	_, err := h.m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: cur.UserID, Reason: sessionkit.ReasonUserRevoked, Actor: cur.ImpersonatedBy})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// revokeAll is DELETE /sessions[?include_current=true]: sign out
// everywhere else, or everywhere. A support session may not (403
// impersonation_forbidden): signing a user out of every device is the
// user's decision, or an operator's through DELETE
// /admin/users/{user_id}/sessions, which names the operator.
func (h *Handler) revokeAll(w http.ResponseWriter, r *http.Request) {
	includeCurrent, ok := boolParam(r, "include_current")
	if !ok {
		h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, "include_current must be true or false.")
		return
	}
	cur := session(r)
	if cur.ImpersonatedBy != "" {
		h.problem(w, r, http.StatusForbidden, middleware.ReasonImpersonationForbidden,
			"A support session cannot sign the user out everywhere: use the admin route.")
		return
	}
	cmd := sessionkit.RevokeAllUserSessions{UserID: cur.UserID, Reason: sessionkit.ReasonLogoutAll, ExceptSessionID: cur.ID}
	if includeCurrent {
		cmd.ExceptSessionID = uuid.Nil
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	res, err := h.m.RevokeAllUserSessions(ctx, cmd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if includeCurrent {
		h.clearCookie(w)
	}
	h.log.Info("sessionkit: signed out everywhere", "user_id", cur.UserID.String(), "revoked", res.Revoked, "include_current", includeCurrent)
	writeJSON(w, http.StatusOK, revokedResponse{Revoked: res.Revoked})
}

// logout is DELETE /sessions/current. It is idempotent: a request whose
// session has ended, or that carries none, still answers 204 and clears
// the cookie. A store failure is 503 and leaves the cookie, so the client
// can retry rather than believe a session is gone that is still valid.
//
// An API client's access token may have expired before it signs out: its
// session cannot be told from it, and a 204 would tell the client it
// signed out while its session and refresh token stay valid. Such a
// request is 401 no_session, and the client signs out with its refresh
// token in the body ({"refresh_token"}, JSON or a form), alone or beside
// the expired access token: its session is revoked. That is its session's
// current refresh token, or the one it just superseded, within the grace
// window (a client whose refresh's reply was lost holds that one, and
// RefreshSession still accepts it); any other is 401
// invalid_refresh_token; one of a session that has ended is 204.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	h.auth.SessionHeaders(w.Header())
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	ar, err := h.auth.Authenticate(r)
	var s sessionkit.Session
	switch {
	case err == nil:
		s = session(ar) // the body, if any, is not read
	case !middleware.Anonymous(err) && !errors.Is(err, middleware.ErrAmbiguousToken):
		h.fail(w, r, err)
		return
	default:
		rt, ok := h.signOutRefreshToken(w, r)
		switch {
		case !ok:
			return
		case rt != "":
			if s, err = h.m.SessionByRefreshToken(ctx, rt); errors.Is(err, sessionkit.ErrNotFound) {
				h.problem(w, r, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken, "The refresh token is not valid.")
				return
			} else if err != nil {
				h.fail(w, r, err)
				return
			}
			if s.StateAt(h.m.Now()) != sessionkit.StateActive {
				s = sessionkit.Session{} // ended already
			}
		case errors.Is(err, middleware.ErrInvalidToken) && h.bearerPresented(r):
			h.fail(w, r, err) // an access token no longer valid: the session is not known
			return
		}
	}
	if s.ID != uuid.Nil {
		_, err = h.m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: s.ID, UserID: s.UserID, Reason: sessionkit.ReasonLogout, Actor: s.ImpersonatedBy})
		if err != nil && !errors.Is(err, sessionkit.ErrNotFound) {
			h.fail(w, r, err)
			return
		}
		h.log.Info("sessionkit: signed out", "user_id", s.UserID.String(), "session_id", s.ID.String())
	}
	h.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// signOutRefreshToken reads the refresh token a sign-out without a valid
// session may carry: "" when the server issues no tokens or the body is
// empty, as a browser's is. A body that is not a refresh token is refused
// (ok false, the problem written).
func (h *Handler) signOutRefreshToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.ContentLength == 0 || !h.tokensOn() {
		return "", true
	}
	// An empty body (a chunked one, say) is none; one byte tells.
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); err == io.EOF {
		return "", true
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	rt, status, detail := h.readRefreshToken(w, r)
	if status != 0 {
		h.badBody(w, r, status, detail)
		return "", false
	}
	return rt, true
}

// bearerPresented reports whether r carries a bearer token the
// Authenticator reads: its credential, when refused, was an access token.
func (h *Handler) bearerPresented(r *http.Request) bool {
	if !h.auth.Options().AllowBearer {
		return false
	}
	scheme, _, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return strings.EqualFold(scheme, "Bearer")
}

// pathID parses the {id} wildcard as a session id, or answers 400 invalid_id.
func (h *Handler) pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	if id, ok := canonicalID(r.PathValue("id")); ok {
		return id, true
	}
	h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidID, "The session id is not a UUID.")
	return uuid.Nil, false
}

// canonicalID parses s as a UUID in the canonical form only: no braces,
// urn: or bare hex, which uuid.Parse also accepts.
func canonicalID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// boolParam reads an optional boolean query parameter; absent is false.
func boolParam(r *http.Request, name string) (v, ok bool) {
	q := r.URL.Query()[name]
	switch {
	case len(q) == 0:
		return false, true
	case len(q) > 1:
		return false, false
	}
	v, err := strconv.ParseBool(q[0])
	return v, err == nil
}
