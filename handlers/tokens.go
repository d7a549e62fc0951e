package handlers

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// tokenResponse is the answer of POST /sessions/token and POST
// /sessions/refresh (the HTTP contract): the session and a token pair.
type tokenResponse struct {
	Session          SessionJSON `json:"session"`
	TokenType        string      `json:"token_type"`
	AccessToken      string      `json:"access_token"`
	ExpiresIn        int64       `json:"expires_in"`
	RefreshToken     string      `json:"refresh_token"`
	RefreshExpiresIn int64       `json:"refresh_expires_in"`
}

func newTokenResponse(s sessionkit.Session, t sessionkit.Tokens, now time.Time) tokenResponse {
	return tokenResponse{
		Session: NewSessionJSON(s, true), TokenType: "Bearer",
		AccessToken: t.AccessToken, ExpiresIn: seconds(t.AccessExpiresAt.Sub(now)),
		RefreshToken: t.RefreshToken, RefreshExpiresIn: seconds(t.RefreshExpiresAt.Sub(now)),
	}
}

// seconds rounds d down to whole seconds, never below zero.
func seconds(d time.Duration) int64 { return int64(math.Max(0, math.Floor(d.Seconds()))) }

// tokensEnabled answers 404 bearer_tokens_disabled when the Manager has no
// access tokens, and reports whether it has.
func (h *Handler) tokensEnabled(w http.ResponseWriter, r *http.Request) bool {
	if !h.tokensOn() {
		h.problem(w, r, http.StatusNotFound, middleware.ReasonTokensDisabled,
			"This server does not issue bearer tokens (sessionkit.WithAccessTokens).")
		return false
	}
	return true
}

// tokensOn reports whether the Manager issues bearer tokens.
func (h *Handler) tokensOn() bool {
	_, err := h.m.JWKS()
	return err == nil
}

// createTokenSession is POST /sessions/token: the login of an API or
// mobile client. The credentials are checked as for POST /sessions; the
// answer carries an access token and a refresh token and sets no cookie.
// The route never reads the session cookie, so a cross-site request
// cannot use one.
func (h *Handler) createTokenSession(w http.ResponseWriter, r *http.Request) {
	h.auth.SessionHeaders(w.Header())
	if !h.tokensEnabled(w, r) {
		return
	}
	r, user, ip, ok := h.checkLogin(w, r)
	if !ok {
		return
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	res, err := h.m.CreateSession(sessionkit.WithRequest(ctx, r), sessionkit.CreateSession{
		UserID: user, IPAddress: ip.String(), UserAgent: r.UserAgent(), Bearer: true, IdleTimeout: h.idleTimeout(r, true),
	})
	if err != nil {
		h.failCreate(w, r, err)
		return
	}
	h.log.Info("sessionkit: signed in with tokens", "user_id", user.String(), "session_id", res.Session.ID.String(), "evicted", len(res.Evicted))
	w.Header().Set("Location", located(r, "/sessions/"+res.Session.ID.String()))
	writeJSON(w, http.StatusCreated, newTokenResponse(res.Session, res.Tokens, res.Session.CreatedAt))
}

// refresh is POST /sessions/refresh: {"refresh_token": "..."} (or the same
// field in a form) for a new pair of the same session. An unknown or
// malformed refresh token is 401 invalid_refresh_token; a reused one 401
// refresh_token_reused (the session is revoked); a genuine one of a
// session that ended, 401 with the reason, as for any request.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) {
	h.auth.SessionHeaders(w.Header())
	if !h.tokensEnabled(w, r) {
		return
	}
	rt, status, detail := h.readRefreshToken(w, r)
	if status != 0 {
		h.badBody(w, r, status, detail)
		return
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	res, err := h.m.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: rt})
	switch {
	case errors.Is(err, sessionkit.ErrNotFound):
		h.problem(w, r, http.StatusUnauthorized, middleware.ReasonInvalidRefreshToken, "The refresh token is not valid.")
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newTokenResponse(res.Session, res.Tokens, h.m.Now()))
}

// readRefreshToken reads {"refresh_token": "..."} from the bounded body,
// as JSON or a form.
func (h *Handler) readRefreshToken(w http.ResponseWriter, r *http.Request) (string, int, string) {
	mt, body, status, detail := h.readBody(w, r)
	if status != 0 {
		return "", status, detail
	}
	var rt string
	if mt == "application/json" {
		var in struct {
			RefreshToken *string `json:"refresh_token"`
		}
		if err := json.Unmarshal(body, &in); err != nil || in.RefreshToken == nil {
			return "", http.StatusBadRequest, "The body is not a JSON object with a string field refresh_token."
		}
		rt = *in.RefreshToken
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil || len(form["refresh_token"]) != 1 {
			return "", http.StatusBadRequest, "The form must hold one refresh_token."
		}
		rt = form.Get("refresh_token")
	}
	if rt == "" {
		return "", http.StatusBadRequest, "The refresh_token is required."
	}
	return rt, 0, ""
}

// jwks is GET /sessions/jwks.json: the public keys that verify access
// tokens (RFC 7517), for other services. It is public and cacheable.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	body, err := h.m.JWKS()
	if err != nil {
		h.tokensEnabled(w, r)
		return
	}
	write(w, http.StatusOK, "application/jwk-set+json", "public, max-age=300", body)
}

// reauthenticate is POST /sessions/current/reauthenticate: the login's
// credential check for the caller's own session. The credentials must be
// the session's user's, else 401 invalid_credentials and nothing changes.
// The secret rotates, the id stays and authenticated_at moves: a cookie
// session gets a new cookie and its session JSON, a bearer session a new
// token pair.
func (h *Handler) reauthenticate(w http.ResponseWriter, r *http.Request) {
	h.auth.SessionHeaders(w.Header())
	cur := session(r)
	r, user, _, ok := h.checkLogin(w, r)
	if !ok {
		return
	}
	if user != cur.UserID {
		h.problem(w, r, http.StatusUnauthorized, middleware.ReasonInvalidCredentials, "The username or password is wrong.")
		return
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	res, err := h.m.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: cur.ID, UserID: cur.UserID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("sessionkit: re-authenticated", "user_id", user.String(), "session_id", cur.ID.String())
	if res.Session.Bearer {
		writeJSON(w, http.StatusOK, newTokenResponse(res.Session, res.Tokens, h.m.Now()))
		return
	}
	h.setCookie(w, res.Token, res.Session.ExpiresAt)
	writeJSON(w, http.StatusOK, NewSessionJSON(res.Session, true))
}
