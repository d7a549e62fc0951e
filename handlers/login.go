package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// ErrBadCredentials is what Options.Login returns (or wraps) to refuse a
// login: 401 invalid_credentials, no session, no cookie.
var ErrBadCredentials = errors.New("sessionkit: bad credentials")

// Refusal is an error Options.Login returns (or wraps) to refuse a login
// with a problem of the app's own, a 4xx: too many attempts (429), an
// account locked (403), a second factor to enter first. The Problem is
// written as it is (by the ErrorWriter, with Problem.Err the error Login
// returned), no session is changed and no cookie set, and the refusal is
// logged at debug as any other. A Refusal of another status is the app's
// failure: 500. Refuse makes one.
type Refusal struct{ Problem middleware.Problem }

func (e *Refusal) Error() string {
	return fmt.Sprintf("sessionkit: login refused: %d %s", e.Problem.Status, e.Problem.Reason)
}

// Refuse returns a *Refusal of p, built with middleware.NewProblem:
//
//	return uuid.Nil, handlers.Refuse(middleware.NewProblem(http.StatusTooManyRequests,
//		"too_many_attempts", "Too many sign-in attempts: try again in a minute."))
func Refuse(p middleware.Problem) error { return &Refusal{Problem: p} }

// ErrNoCredentials is returned by Credentials for a request that is not a
// login request of this package.
var ErrNoCredentials = errors.New("sessionkit: no credentials in the request")

type credentialsKey struct{}

type credentials struct{ username, password string }

// Credentials returns the username and password of a login request, read
// from its JSON body ({"username": ..., "password": ...}) or its
// application/x-www-form-urlencoded form. Call it from Options.Login; both
// are non-empty there, since a login without them is refused with 400
// before Login runs.
func Credentials(r *http.Request) (username, password string, err error) {
	c, ok := r.Context().Value(credentialsKey{}).(credentials)
	if !ok {
		return "", "", ErrNoCredentials
	}
	return c.username, c.password, nil
}

// createSession is POST /sessions: the login.
//
// The body is read first, bounded, and must hold a username and password;
// then the app's check runs; then the new session is created and its token
// set as the cookie, and only there. The session the request carried, if
// any, is revoked (reason replaced_by_login: no fixation): before the new
// one is created when it is the same user's own, so that a user at their
// limit is not evicted or refused by their own re-login; after it
// otherwise (another user's, or a support session, which counts toward no
// limit), so that a sign-in refused (409 at a limit that rejects, 503)
// leaves it as it was.
//
// A request carrying two session cookies revokes neither (which one it
// "carried" is unknowable) and still logs in.
func (h *Handler) createSession(w http.ResponseWriter, r *http.Request) {
	h.auth.SessionHeaders(w.Header())
	r, user, ip, ok := h.checkLogin(w, r)
	if !ok {
		return
	}
	old, carried, err := h.carried(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if carried && old.UserID == user && old.ImpersonatedBy == "" {
		if err := h.revokeReplaced(r, old); err != nil {
			h.fail(w, r, err)
			return
		}
		carried = false
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	res, err := h.m.CreateSession(sessionkit.WithRequest(ctx, r), sessionkit.CreateSession{
		UserID: user, IPAddress: ip.String(), UserAgent: r.UserAgent(), IdleTimeout: h.idleTimeout(r, false),
	})
	if err != nil {
		h.failCreate(w, r, err)
		return
	}
	if carried {
		// The new session exists, and this response replaces the cookie
		// either way: a failure here leaves the other user's session
		// valid but no longer in this browser, which the log records.
		if err := h.revokeReplaced(r, old); err != nil {
			h.log.Error("sessionkit: the session replaced by a sign-in was not revoked",
				"session_id", old.ID.String(), "user_id", old.UserID.String(), "err", err)
		}
	}
	h.setCookie(w, res.Token, res.Session.ExpiresAt)
	h.log.Info("sessionkit: signed in", "user_id", user.String(), "session_id", res.Session.ID.String(), "evicted", len(res.Evicted))
	w.Header().Set("Location", located(r, "/sessions/"+res.Session.ID.String()))
	writeJSON(w, http.StatusCreated, NewSessionJSON(res.Session, true))
}

// failCreate writes the failure of CreateSession: a refused command is the
// server's fault, not the client's, unless the store is unavailable or the
// user is at a limit that rejects (409 session_limit_reached).
func (h *Handler) failCreate(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, sessionkit.ErrUnavailable) && !errors.Is(err, sessionkit.ErrLimitReached) {
		err = internal(err)
	}
	h.fail(w, r, err)
}

// checkLogin reads the credentials and runs the app's check. It returns
// the request with the credentials in its context, the user and the
// client address, or writes the failure and reports false.
func (h *Handler) checkLogin(w http.ResponseWriter, r *http.Request) (*http.Request, uuid.UUID, netip.Addr, bool) {
	c, status, detail := h.readCredentials(w, r)
	if status != 0 {
		h.badBody(w, r, status, detail)
		return r, uuid.Nil, netip.Addr{}, false
	}
	r = r.WithContext(context.WithValue(r.Context(), credentialsKey{}, c))
	user, err := h.login(r)
	refusal, refused := errors.AsType[*Refusal](err)
	switch {
	case refused && refusal.Problem.Status >= 400 && refusal.Problem.Status < 500:
		p := refusal.Problem
		p.Err = err
		h.auth.WriteProblem(w, r, p)
		return r, uuid.Nil, netip.Addr{}, false
	case errors.Is(err, ErrBadCredentials):
		h.problem(w, r, http.StatusUnauthorized, middleware.ReasonInvalidCredentials, "The username or password is wrong.")
		return r, uuid.Nil, netip.Addr{}, false
	case err != nil:
		// The app's failure, not a refusal of a session, whatever it
		// wraps: 503 when its own store could not answer, else 500.
		if !errors.Is(err, sessionkit.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			err = internal(err)
		}
		h.fail(w, r, err)
		return r, uuid.Nil, netip.Addr{}, false
	case user == uuid.Nil:
		h.log.Error("sessionkit: Login returned the nil user id without an error")
		h.fail(w, r, errors.New("sessionkit: Login returned the nil user id"))
		return r, uuid.Nil, netip.Addr{}, false
	}
	ip, ok := h.auth.ClientIP(r)
	if !ok {
		h.fail(w, r, errors.New("sessionkit: login: RemoteAddr is not an IP address"))
		return r, uuid.Nil, netip.Addr{}, false
	}
	return r, user, ip, true
}

// internalError hides a sentinel that would map to a 4xx: the error is the server's.
type internalError struct{ err error }

func (e internalError) Error() string { return e.err.Error() }

func internal(err error) error { return internalError{err} }

// fail writes the problem for err, logging store failures and internal errors.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.auth.Fail(w, r, err)
}

// carried returns the valid session the login request carried, if any.
func (h *Handler) carried(r *http.Request) (sessionkit.Session, bool, error) {
	ar, err := h.auth.Authenticate(r)
	if err != nil {
		if middleware.Anonymous(err) || errors.Is(err, middleware.ErrAmbiguousToken) {
			return sessionkit.Session{}, false, nil
		}
		return sessionkit.Session{}, false, err
	}
	return session(ar), true, nil
}

// revokeReplaced revokes old, the session a sign-in replaces; one revoked
// meanwhile is no failure. In a support session, the operator is named.
func (h *Handler) revokeReplaced(r *http.Request, old sessionkit.Session) error {
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	_, err := h.m.RevokeSession(ctx, sessionkit.RevokeSession{
		SessionID: old.ID, UserID: old.UserID, Reason: sessionkit.ReasonLogin, Actor: old.ImpersonatedBy,
	})
	if errors.Is(err, sessionkit.ErrNotFound) {
		return nil
	}
	return err
}

// readBody reads the bounded body of a JSON or form request, leaving it
// replayable, or returns the status and detail of the refusal.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (mediaType string, body []byte, status int, detail string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded") {
		return "", nil, http.StatusUnsupportedMediaType, "The body must be application/json or application/x-www-form-urlencoded."
	}
	if r.ContentLength > h.maxBody {
		return "", nil, http.StatusRequestEntityTooLarge, "The body is too large."
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", nil, http.StatusRequestEntityTooLarge, "The body is too large."
		}
		return "", nil, http.StatusBadRequest, "The body could not be read."
	}
	if mt == "application/json" && !uniqueKeys(body) {
		return "", nil, http.StatusBadRequest, "The JSON object names a field twice."
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return mt, body, 0, ""
}

// uniqueKeys reports whether the top-level JSON object of body, if it is
// one, names no field twice, letter case aside: encoding/json matches names
// case-insensitively and keeps the last, so {"username":"a","Username":"b"}
// would check b while a proxy or rate limiter in front reads a. A repeated
// field is refused, as in a form. Other malformations are left to
// json.Unmarshal.
func uniqueKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return true
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return true
		}
		k, _ := t.(string)
		// encoding/json's folding: every rune to upper case of its lower
		// case, so that "ſ" (U+017F) matches "s" and "K" (U+212A) "k".
		k = strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, k)
		if seen[k] {
			return false
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return true
		}
	}
	return true
}

// badBody writes the refusal of a request body: status is 400, 413 or 415.
func (h *Handler) badBody(w http.ResponseWriter, r *http.Request, status int, detail string) {
	reason := middleware.ReasonInvalidRequest
	switch status {
	case http.StatusRequestEntityTooLarge:
		reason = middleware.ReasonRequestTooLarge
	case http.StatusUnsupportedMediaType:
		reason = middleware.ReasonUnsupportedMedia
	}
	h.problem(w, r, status, reason, detail)
}

// readCredentials reads the bounded body as JSON or a form and returns the
// credentials, or the status and detail of the refusal. The body is left
// replayable for Options.Login.
func (h *Handler) readCredentials(w http.ResponseWriter, r *http.Request) (credentials, int, string) {
	mt, body, status, detail := h.readBody(w, r)
	if status != 0 {
		return credentials{}, status, detail
	}
	var c credentials
	if mt == "application/json" {
		var in struct {
			Username *string `json:"username"`
			Password *string `json:"password"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return credentials{}, http.StatusBadRequest, "The body is not a JSON object with string fields username and password."
		}
		if in.Username != nil {
			c.username = *in.Username
		}
		if in.Password != nil {
			c.password = *in.Password
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil || len(form["username"]) > 1 || len(form["password"]) > 1 {
			return credentials{}, http.StatusBadRequest, "The form is malformed."
		}
		r.PostForm = form
		r.ParseForm() // fills r.Form from the query and PostForm
		c = credentials{username: form.Get("username"), password: form.Get("password")}
	}
	if c.username == "" || c.password == "" {
		return credentials{}, http.StatusBadRequest, "The username and password are required."
	}
	return c, 0, ""
}
