package main

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// The support desk: carol, a support agent, finds a user on the /admin page,
// sees their devices and activity, signs one or all of them out, or opens a
// support session as them. The same is served as JSON under /admin/users/
// by handlers.Admin; both authorize with authorizeSupport, and every
// session they end carries the agent's label as the event's actor, which
// the user then reads in their timeline.

// reasonRevokedBySupport is the revocation reason of the support desk
// page's sign-outs; the login page explains it (revokedReasons).
const reasonRevokedBySupport = "revoked_by_support"

// supportSessionTTL is how long a support session lasts, from the page and
// from POST /admin/users/{user_id}/impersonate alike.
const supportSessionTTL = time.Hour

// supportFormPrefix is where the support desk page's forms post. The rest
// of /admin/ is the JSON admin API.
const supportFormPrefix = "/admin/page/"

// errNotSupport refuses a caller that is not a support agent.
var errNotSupport = errors.New("sessionkit example: not a support agent")

// authorizeSupport is the Authorize of the admin routes and the check of
// the support desk page: the request's session must be a support agent's
// own (not a support session opened as someone else), with the password
// entered recently, as the desk's pages need it. The label it returns is
// what users see: "support (carol)".
func (a *app) authorizeSupport(r *http.Request) (string, error) {
	s, ok := sessionkit.FromContext(r.Context())
	if !ok || s.ImpersonatedBy != "" || a.m.Now().Sub(s.AuthenticatedAt) > a.cfg.reauthAge() {
		return "", errNotSupport
	}
	usr := a.users.byUserID(s.UserID)
	if usr == nil || !usr.Support {
		return "", errNotSupport
	}
	return "support (" + usr.Name + ")", nil
}

// supportAgent runs authorizeSupport for a page; when it refuses, the
// visitor gets the 403 page and ok is false.
func (a *app) supportAgent(w http.ResponseWriter, r *http.Request) (actor string, ok bool) {
	actor, err := a.authorizeSupport(r)
	if err != nil {
		a.pageError(w, r, middleware.NewProblem(http.StatusForbidden, handlers.ReasonForbidden,
			"Only the support team may use the support desk."))
		return "", false
	}
	return actor, true
}

// supportView is what admin.html renders.
type supportView struct {
	Agent  *user
	Actor  string // the agent's public label
	Query  string // the name searched for
	Found  *user  // the user found, or nil
	View   devicesView
	Notice string
}

// supportPage is the support desk: a search by user name and, for the user
// found, their active devices and recent activity with the agent's actions.
func (a *app) supportPage(w http.ResponseWriter, r *http.Request) {
	actor, ok := a.supportAgent(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	s, _ := sessionkit.FromContext(ctx)
	q := r.URL.Query()
	v := supportView{Agent: a.users.byUserID(s.UserID), Actor: actor, Query: strings.TrimSpace(q.Get("user"))}
	if n, err := strconv.Atoi(q.Get("revoked")); err == nil && n >= 0 {
		v.Notice = "Signed out " + plural(n, "session") + "."
	}
	if v.Found = a.users.named(v.Query); v.Found != nil {
		all, err := a.m.ListUserSessions(ctx, v.Found.ID, sessionkit.ListOptions{IncludeRevoked: true})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		events, err := a.m.Events(ctx, v.Found.ID, sessionkit.EventQuery{Limit: timelineLength})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		v.View = buildDevicesView(v.Found, uuid.Nil, all, events, a.m.Now())
	}
	a.render(w, http.StatusOK, "admin.html", v)
}

// supportTarget authorizes the agent of a support desk form and returns the
// user it names ({name} in the path); ok is false when it wrote a refusal.
func (a *app) supportTarget(w http.ResponseWriter, r *http.Request) (actor string, target *user, ok bool) {
	if actor, ok = a.supportAgent(w, r); !ok {
		return "", nil, false
	}
	if target = a.users.named(r.PathValue("name")); target == nil {
		a.pageError(w, r, middleware.NewProblem(http.StatusNotFound, middleware.ReasonNotFound, "There is no user by that name."))
		return "", nil, false
	}
	return actor, target, true
}

// backToSupport is the support desk page of target, with a notice of n
// sessions signed out (none when n < 0).
func backToSupport(target *user, n int) string {
	to := "/admin?user=" + url.QueryEscape(target.Name)
	if n >= 0 {
		to += "&revoked=" + strconv.Itoa(n)
	}
	return to
}

// supportRevoke signs one of the user's sessions out in the agent's name.
func (a *app) supportRevoke(w http.ResponseWriter, r *http.Request) {
	actor, target, ok := a.supportTarget(w, r)
	if !ok {
		return
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		a.pageError(w, r, middleware.NewProblem(http.StatusBadRequest, middleware.ReasonInvalidID, "That is not a session id."))
		return
	}
	_, err = a.m.RevokeSession(r.Context(), sessionkit.RevokeSession{
		SessionID: id, UserID: target.ID, Reason: reasonRevokedBySupport, Actor: actor,
	})
	switch {
	case errors.Is(err, sessionkit.ErrNotFound), errors.Is(err, sessionkit.ErrInvalid):
		http.Redirect(w, r, backToSupport(target, -1), http.StatusSeeOther) // gone already: the page was out of date
	case err != nil:
		a.fail(w, r, err)
	default:
		a.log.Info("sessionkit example: session revoked by support", "actor", actor, "user_id", target.ID.String(), "session_id", id.String())
		http.Redirect(w, r, backToSupport(target, 1), http.StatusSeeOther)
	}
}

// supportRevokeAll signs the user out everywhere in the agent's name.
func (a *app) supportRevokeAll(w http.ResponseWriter, r *http.Request) {
	actor, target, ok := a.supportTarget(w, r)
	if !ok {
		return
	}
	res, err := a.m.RevokeAllUserSessions(r.Context(), sessionkit.RevokeAllUserSessions{
		UserID: target.ID, Reason: reasonRevokedBySupport, Actor: actor,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("sessionkit example: sessions revoked by support", "actor", actor, "user_id", target.ID.String(), "revoked", res.Revoked)
	http.Redirect(w, r, backToSupport(target, res.Revoked), http.StatusSeeOther)
}

// supportImpersonate opens a support session as the user: marked with the
// agent's label, outside the user's limit, an hour long. It becomes this
// browser's session, and the agent's own session here ends: the browser can
// hold one cookie, and an agent's session left without its cookie would
// only linger in their device list.
func (a *app) supportImpersonate(w http.ResponseWriter, r *http.Request) {
	actor, target, ok := a.supportTarget(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	var ipText string
	if ip, ok := a.auth.ClientIP(r); ok {
		ipText = ip.String()
	}
	res, err := a.m.CreateSession(sessionkit.WithRequest(ctx, r), sessionkit.CreateSession{
		UserID: target.ID, IPAddress: ipText, UserAgent: r.UserAgent(),
		ExpiresAt: a.m.Now().Add(supportSessionTTL), ImpersonatedBy: actor,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Warn("sessionkit example: support session opened", "actor", actor, "user_id", target.ID.String(), "session_id", res.Session.ID.String())
	own, _ := sessionkit.FromContext(ctx)
	_, err = a.m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: own.ID, UserID: own.UserID, Reason: sessionkit.ReasonLogin})
	if err != nil && !errors.Is(err, sessionkit.ErrNotFound) {
		a.log.Warn("sessionkit example: the agent's own session was not ended", "session_id", own.ID.String(), "err", err)
	}
	a.auth.SessionHeaders(w.Header())
	a.auth.SetCookie(w, res.Token, res.Session.ExpiresAt)
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}
