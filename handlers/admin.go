package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// ReasonForbidden is the reason of the admin routes' 403 when Authorize
// refuses the caller, or the caller's session is a support session.
const ReasonForbidden = "forbidden"

// ReasonRevokedByAdmin is the revocation reason of the admin routes when
// the operator gives none.
const ReasonRevokedByAdmin = "revoked_by_admin"

var errEmptyLabel = errors.New("sessionkit: Authorize returned an empty label without an error: return the operator's label, or an error to refuse")

// AdminOptions configures the operator routes.
type AdminOptions struct {
	// Authorize decides whether the request's session (an operator's) may
	// act on other users' sessions, and returns the operator's public
	// label ("support (carol)"), which every event they cause carries and
	// the user sees. An error refuses with 403 forbidden; an empty label
	// without an error is the app's mistake: 500, logged at error. It is not asked
	// about a support session (Session.ImpersonatedBy), which is always
	// refused: an agent acting as an operator never gets their rights.
	// Required.
	Authorize func(r *http.Request) (actor string, err error)
	// ImpersonationTTL is how long a support session opened with
	// POST .../impersonate lasts, at most 24 hours. Default: 1 hour.
	ImpersonationTTL time.Duration
	// TrustedOrigins are origins whose cross-origin mutations are allowed.
	// Default: none.
	TrustedOrigins []string
	// MaxBodyBytes bounds a request body; larger is 413. Default: 64 KiB.
	MaxBodyBytes int64
}

// adminRoutes is the table of the operator routes (see Routes).
var adminRoutes = []Route{
	{Method: http.MethodGet, Path: "/admin/users/{user_id}/sessions", Session: true},
	{Method: http.MethodDelete, Path: "/admin/users/{user_id}/sessions", Session: true, CrossOrigin: true},
	{Method: http.MethodDelete, Path: "/admin/users/{user_id}/sessions/{id}", Session: true, CrossOrigin: true},
	{Method: http.MethodGet, Path: "/admin/users/{user_id}/events", Session: true},
	{Method: http.MethodPut, Path: "/admin/users/{user_id}/limit", Session: true, CrossOrigin: true},
	{Method: http.MethodDelete, Path: "/admin/users/{user_id}/limit", Session: true, CrossOrigin: true},
	{Method: http.MethodPost, Path: "/admin/users/{user_id}/impersonate", Session: true, CrossOrigin: true},
}

// AdminRoutes returns every route the Admin handler serves.
func AdminRoutes() []Route { return slices.Clone(adminRoutes) }

// Admin serves the operator routes: a support desk or a risk system lists
// and ends any user's sessions, changes their limit, and opens a support
// session as them, with the operator recorded in every event. It is safe
// for concurrent use.
type Admin struct {
	h         *Handler // the helpers shared with the user routes
	authorize func(*http.Request) (string, error)
	ttl       time.Duration
	mux       *http.ServeMux
}

// NewAdmin returns the operator routes over auth (the app's Authenticator).
func NewAdmin(auth *middleware.Authenticator, opts AdminOptions) (*Admin, error) {
	switch {
	case auth == nil:
		return nil, invalid("Authenticator", "must not be nil")
	case opts.Authorize == nil:
		return nil, invalid("Authorize", "must not be nil")
	case opts.ImpersonationTTL < 0 || opts.ImpersonationTTL > 24*time.Hour:
		return nil, invalid("ImpersonationTTL", "must be within 0..24h")
	case opts.MaxBodyBytes < 0:
		return nil, invalid("MaxBodyBytes", "must not be negative")
	}
	a := &Admin{
		h:         &Handler{m: auth.Manager(), auth: auth, maxBody: opts.MaxBodyBytes, log: auth.Manager().Logger()},
		authorize: opts.Authorize, ttl: opts.ImpersonationTTL, mux: http.NewServeMux(),
	}
	if a.h.maxBody == 0 {
		a.h.maxBody = DefaultMaxBodyBytes
	}
	if a.ttl == 0 {
		a.ttl = time.Hour
	}
	cop, err := crossOrigin(opts.TrustedOrigins)
	if err != nil {
		return nil, err
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.h.problem(w, r, http.StatusForbidden, middleware.ReasonCrossOrigin, "Cross-origin requests may not change sessions.")
	}))
	serve := map[string]func(http.ResponseWriter, *http.Request, string, uuid.UUID){
		"GET /admin/users/{user_id}/sessions":         a.list,
		"DELETE /admin/users/{user_id}/sessions":      a.revokeAll,
		"DELETE /admin/users/{user_id}/sessions/{id}": a.revoke,
		"GET /admin/users/{user_id}/events":           a.events,
		"PUT /admin/users/{user_id}/limit":            a.setLimit,
		"DELETE /admin/users/{user_id}/limit":         a.clearLimit,
		"POST /admin/users/{user_id}/impersonate":     a.impersonate,
	}
	for _, rt := range adminRoutes {
		var hh http.Handler = auth.Require(a.operator(serve[rt.Pattern()]))
		if rt.CrossOrigin {
			hh = cop.Handler(hh)
		}
		a.mux.Handle(rt.Pattern(), hh)
	}
	return a, nil
}

// Mount registers a on mux for /admin/ and everything under it. /admin
// itself is left to the app, which may serve a page there (the example's
// support desk does); unless it does, ServeMux redirects it to /admin/,
// a 404 in problem JSON.
func (a *Admin) Mount(mux *http.ServeMux) { mux.Handle("/admin/", a) }

// ServeHTTP serves one of the routes; another path under /admin is 404
// and another method 405 (with Allow), both as problem JSON.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.h.serveMux(a.mux, w, relative(r, "/admin"))
}

// operator authorizes the caller and parses the user id, then runs next
// with the operator's label and the user.
func (a *Admin) operator(next func(http.ResponseWriter, *http.Request, string, uuid.UUID)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.h.auth.SessionHeaders(w.Header())
		// A support session is never an operator, whatever Authorize says:
		// an agent acting as a senior operator must not act with their rights.
		if s, ok := sessionkit.FromContext(r.Context()); ok && s.ImpersonatedBy != "" {
			a.h.problem(w, r, http.StatusForbidden, ReasonForbidden, "A support session cannot manage other users' sessions.")
			return
		}
		actor, err := a.authorize(r)
		switch {
		case err != nil:
			a.h.problem(w, r, http.StatusForbidden, ReasonForbidden, "You may not manage other users' sessions.")
			return
		case actor == "":
			// Let through without the label its events must carry: the
			// app's mistake, refused, and logged at error (fail).
			a.h.fail(w, r, errEmptyLabel)
			return
		}
		user, ok := canonicalID(r.PathValue("user_id"))
		if !ok || user == uuid.Nil {
			p := middleware.NewProblem(http.StatusBadRequest, middleware.ReasonInvalidID, "The user id is not a UUID.")
			p.Title = "Invalid user id"
			a.h.auth.WriteProblem(w, r, p)
			return
		}
		next(w, r, actor, user)
	})
}

// reason reads an optional {"reason": "..."} body; the default is
// revoked_by_admin. ok is false when it wrote a refusal.
func (a *Admin) reason(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return ReasonRevokedByAdmin, true
	}
	mt, body, status, detail := a.h.readBody(w, r)
	if status != 0 {
		a.h.badBody(w, r, status, detail)
		return "", false
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if mt != "application/json" || (len(body) > 0 && json.Unmarshal(body, &in) != nil) {
		a.h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, `The body must be a JSON object such as {"reason": "..."}.`)
		return "", false
	}
	if in.Reason == "" {
		in.Reason = ReasonRevokedByAdmin
	}
	return in.Reason, true
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request, _ string, user uuid.UUID) {
	includeRevoked, ok := boolParam(r, "include_revoked")
	if !ok {
		a.h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, "include_revoked must be true or false.")
		return
	}
	ctx, cancel := a.h.storeCtx(r)
	defer cancel()
	list, err := a.h.m.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: includeRevoked})
	if err != nil {
		a.h.fail(w, r, err)
		return
	}
	out := listResponse{Sessions: make([]SessionJSON, len(list)), Total: len(list)}
	for i, s := range list {
		out.Sessions[i] = NewSessionJSON(s, false)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) revoke(w http.ResponseWriter, r *http.Request, actor string, user uuid.UUID) {
	id, ok := a.h.pathID(w, r)
	if !ok {
		return
	}
	reason, ok := a.reason(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.h.storeCtx(r)
	defer cancel()
	_, err := a.h.m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user, Reason: reason, Actor: actor})
	if err != nil {
		a.failInput(w, r, err)
		return
	}
	a.h.log.Info("sessionkit: session revoked by an operator", "actor", actor, "user_id", user.String(), "session_id", id.String(), "reason", reason)
	w.WriteHeader(http.StatusNoContent)
}

func (a *Admin) revokeAll(w http.ResponseWriter, r *http.Request, actor string, user uuid.UUID) {
	reason, ok := a.reason(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.h.storeCtx(r)
	defer cancel()
	res, err := a.h.m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: reason, Actor: actor})
	if err != nil {
		a.failInput(w, r, err)
		return
	}
	a.h.log.Info("sessionkit: sessions revoked by an operator", "actor", actor, "user_id", user.String(), "revoked", res.Revoked, "reason", reason)
	writeJSON(w, http.StatusOK, revokedResponse{Revoked: res.Revoked})
}

func (a *Admin) events(w http.ResponseWriter, r *http.Request, _ string, user uuid.UUID) {
	a.h.writeEvents(w, r, user)
}

func (a *Admin) setLimit(w http.ResponseWriter, r *http.Request, actor string, user uuid.UUID) {
	mt, body, status, detail := a.h.readBody(w, r)
	if status != 0 {
		a.h.badBody(w, r, status, detail)
		return
	}
	var in struct {
		Limit *int `json:"limit"`
	}
	if mt != "application/json" || json.Unmarshal(body, &in) != nil || in.Limit == nil {
		a.h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, `The body must be {"limit": n}: a positive number, or -1 for no limit.`)
		return
	}
	ctx, cancel := a.h.storeCtx(r)
	defer cancel()
	if err := a.h.m.SetUserLimit(ctx, user, *in.Limit); err != nil {
		a.failInput(w, r, err)
		return
	}
	a.h.log.Info("sessionkit: session limit set by an operator", "actor", actor, "user_id", user.String(), "limit", *in.Limit)
	writeJSON(w, http.StatusOK, map[string]int{"limit": *in.Limit})
}

func (a *Admin) clearLimit(w http.ResponseWriter, r *http.Request, actor string, user uuid.UUID) {
	ctx, cancel := a.h.storeCtx(r)
	defer cancel()
	if err := a.h.m.ClearUserLimit(ctx, user); err != nil {
		a.h.fail(w, r, err)
		return
	}
	a.h.log.Info("sessionkit: session limit override removed by an operator", "actor", actor, "user_id", user.String())
	w.WriteHeader(http.StatusNoContent)
}

// impersonate opens a support session as the user: short-lived, marked,
// outside the user's limit. The answer sets it as the caller's cookie, so
// the operator's own cookie session ends with it, as a login's does (a
// bearer client's session, which no cookie holds, goes on).
func (a *Admin) impersonate(w http.ResponseWriter, r *http.Request, actor string, user uuid.UUID) {
	ip, ok := a.h.auth.ClientIP(r)
	if !ok {
		a.h.fail(w, r, errors.New("sessionkit: impersonate: RemoteAddr is not an IP address"))
		return
	}
	ctx, cancel := a.h.storeCtx(r)
	defer cancel()
	res, err := a.h.m.CreateSession(sessionkit.WithRequest(ctx, r), sessionkit.CreateSession{
		UserID: user, IPAddress: ip.String(), UserAgent: r.UserAgent(),
		ExpiresAt: a.h.m.Now().Add(a.ttl), ImpersonatedBy: actor,
	})
	if err != nil {
		a.h.failCreate(w, r, err)
		return
	}
	a.h.log.Warn("sessionkit: support session opened", "actor", actor, "user_id", user.String(), "session_id", res.Session.ID.String(),
		"expires_in", strconv.Itoa(int(a.ttl.Seconds()))+"s")
	if own, ok := sessionkit.FromContext(r.Context()); ok && !own.Bearer {
		// As createSession does for another user's session: the support
		// session exists, and this response replaces the cookie either way.
		if err := a.h.revokeReplaced(r, own); err != nil {
			a.h.log.Error("sessionkit: the session replaced by a support session was not revoked",
				"session_id", own.ID.String(), "user_id", own.UserID.String(), "err", err)
		}
	}
	a.h.setCookie(w, res.Token, res.Session.ExpiresAt)
	writeJSON(w, http.StatusCreated, NewSessionJSON(res.Session, true))
}

// failInput writes err; an invalid field (a reason too long) is 400.
func (a *Admin) failInput(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, sessionkit.ErrInvalid) {
		a.h.problem(w, r, http.StatusBadRequest, middleware.ReasonInvalidRequest, "The request is not valid: "+err.Error())
		return
	}
	a.h.fail(w, r, err)
}
