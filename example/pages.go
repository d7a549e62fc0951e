package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// loginReasons are the messages the login page shows for ?reason=. Only
// these keys are shown; anything else in the URL is ignored, so the page
// never echoes text from a link.
var loginReasons = map[string]string{
	middleware.ReasonSessionLimitExceeded: "You were signed out because you signed in on another device (session limit).",
	middleware.ReasonSessionRevoked:       "This session was revoked: it was signed out from another device.",
	middleware.ReasonSessionExpired:       "Your session expired. Please sign in again.",
	middleware.ReasonSessionIdle:          "You were signed out after a period of inactivity.",
	middleware.ReasonNoSession:            "Please sign in to see your devices.",
	"signed_out":                          "You signed out.",
}

// revokedReasons say, for ?revoked_reason=, why the session was revoked:
// the reason stored with the revocation, which the 401 carries. Only these
// keys are shown, as for loginReasons.
var revokedReasons = map[string]string{
	"password_changed":             "Your password was changed, so every device was signed out.",
	sessionkit.ReasonLogoutAll:     "You signed out everywhere from another device.",
	sessionkit.ReasonUserRevoked:   "It was signed out from another device.",
	sessionkit.ReasonIPChanged:     "It was used from a new address, which this site does not allow.",
	sessionkit.ReasonRefreshReused: "A refresh token was used twice, which looks like theft: the session was ended.",
	sessionkit.ReasonLogin:         "You signed in again in this browser.",
	sessionkit.ReasonRenewed:       "It was replaced by a renewed session.",
	sessionkit.ReasonLimitExceeded: "",
	reasonRevokedBySupport:         "The support team signed it out.",
	handlers.ReasonRevokedByAdmin:  "An administrator signed it out.",
}

// home sends signed-in visitors to their devices and everyone else to the login page.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	if _, err := a.auth.Authenticate(r); err == nil {
		http.Redirect(w, r, "/devices", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type loginView struct {
	Reason   string // why the visitor landed here
	Error    string // why the last attempt failed
	Username string
}

// loginPage shows the sign-in form, and why the visitor was signed out.
func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, err := a.auth.Authenticate(r); err == nil {
		http.Redirect(w, r, "/devices", http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	reason := loginReasons[q.Get("reason")]
	if why := revokedReasons[q.Get("revoked_reason")]; why != "" {
		reason += " " + why
	}
	a.render(w, http.StatusOK, "login.html", loginView{Reason: reason})
}

// maxFormBytes bounds the body of every form the example accepts.
const maxFormBytes = 4 << 10

// login checks the demo credentials and starts a session: a new one every
// time. The session the request carried, if any, is revoked (no
// fixation): the same user's first, so that a re-login at the limit
// neither evicts another device nor is refused; another user's only once
// the new session exists, so that a refused sign-in leaves it as it was.
// A carried session that cannot be checked (the store failing) fails the
// sign-in rather than leave it unrevoked.
//
// POST /sessions of package handlers does the same for API clients and
// answers 201 with JSON; a browser form needs a redirect instead, so the
// page has this route of its own, built from the same commands and setting
// the same cookie.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.render(w, http.StatusBadRequest, "login.html", loginView{Error: "The form could not be read. Please try again."})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	usr, ok := a.users.check(name, r.PostForm.Get("password"))
	if !ok {
		a.render(w, http.StatusUnauthorized, "login.html", loginView{Error: "Wrong username or password.", Username: name})
		return
	}
	ctx := r.Context()
	var old sessionkit.Session
	ar, err := a.auth.Authenticate(r)
	switch {
	case err == nil:
		old, _ = sessionkit.FromContext(ar.Context())
	case !middleware.Anonymous(err) && !errors.Is(err, middleware.ErrAmbiguousToken):
		a.fail(w, r, err)
		return
	}
	replace := func() error {
		_, err := a.m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: old.ID, UserID: old.UserID, Reason: sessionkit.ReasonLogin, Actor: old.ImpersonatedBy})
		if errors.Is(err, sessionkit.ErrNotFound) { // revoked meanwhile
			return nil
		}
		return err
	}
	if old.ID != uuid.Nil && old.UserID == usr.ID && old.ImpersonatedBy == "" {
		if err := replace(); err != nil {
			a.fail(w, r, err)
			return
		}
		old = sessionkit.Session{}
	}
	ip, _ := a.auth.ClientIP(r)
	var ipText string
	if ip.IsValid() {
		ipText = ip.String()
	}
	res, err := a.m.CreateSession(sessionkit.WithRequest(ctx, r), sessionkit.CreateSession{UserID: usr.ID, IPAddress: ipText, UserAgent: r.UserAgent()})
	if le, ok := errors.AsType[*sessionkit.LimitError](err); ok {
		a.render(w, http.StatusConflict, "login.html", loginView{Username: name,
			Error: fmt.Sprintf("You are signed in on %d devices, the most your plan allows. Sign out on one of them first.", le.Active)})
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if old.ID != uuid.Nil {
		if err := replace(); err != nil { // the new cookie replaces its cookie all the same
			a.log.Error("sessionkit example: the session a sign-in replaced was not revoked", "session_id", old.ID.String(), "err", err)
		}
	}
	a.auth.SessionHeaders(w.Header())
	a.auth.SetCookie(w, res.Token, res.Session.ExpiresAt)
	to := "/devices"
	if n := len(res.Evicted); n > 0 {
		to += "?evicted=" + strconv.Itoa(n)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// logout signs this browser out.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s, _ := sessionkit.FromContext(r.Context())
	_, err := a.m.RevokeSession(r.Context(), sessionkit.RevokeSession{
		SessionID: s.ID, UserID: s.UserID, Reason: sessionkit.ReasonLogout, Actor: s.ImpersonatedBy, // an agent ending a support session is named
	})
	if err != nil && !errors.Is(err, sessionkit.ErrNotFound) {
		a.fail(w, r, err)
		return
	}
	a.auth.SessionHeaders(w.Header())
	a.auth.ClearCookie(w)
	http.Redirect(w, r, "/login?reason=signed_out", http.StatusSeeOther)
}

// revokeDevice signs one of the user's other sessions out.
func (a *app) revokeDevice(w http.ResponseWriter, r *http.Request) {
	s, _ := sessionkit.FromContext(r.Context())
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		a.pageError(w, r, middleware.NewProblem(http.StatusBadRequest, middleware.ReasonInvalidID, "That is not a session id."))
		return
	}
	if id == s.ID { // this browser signs out with the sign-out button
		a.pageError(w, r, middleware.NewProblem(http.StatusBadRequest, middleware.ReasonCurrentSession, "Use “Sign out” to end this session."))
		return
	}
	_, err = a.m.RevokeSession(r.Context(), sessionkit.RevokeSession{
		SessionID: id, UserID: s.UserID, Reason: sessionkit.ReasonUserRevoked, Actor: s.ImpersonatedBy, // in a support session, the agent did it
	})
	switch {
	case errors.Is(err, sessionkit.ErrNotFound), errors.Is(err, sessionkit.ErrInvalid):
		// Gone already, or an id no session of this user can have: the
		// page was out of date, and an unknown id answers like a revoked one.
		http.Redirect(w, r, "/devices", http.StatusSeeOther)
	case err != nil:
		a.fail(w, r, err)
	default:
		// A flash message in the session's own data, read once by the page.
		label := "1 session"
		if gone, err := a.m.UserSession(r.Context(), s.UserID, id); err == nil {
			label = cmp.Or(gone.Device.Label, "Unknown device")
		}
		if err := sessionkit.PutData(r.Context(), flashKey, "Signed out "+label+"."); err != nil {
			http.Redirect(w, r, "/devices?revoked=1", http.StatusSeeOther) // the notice without the name
			return
		}
		http.Redirect(w, r, "/devices", http.StatusSeeOther)
	}
}

// flashKey is the session data key of the message shown once by the next page.
const flashKey = "flash"

// revokeOthers signs the user out everywhere but this browser. Its route
// refuses support sessions (RequireNotImpersonated): an agent acting as the
// user may not lock the user out of all their devices.
func (a *app) revokeOthers(w http.ResponseWriter, r *http.Request) {
	s, _ := sessionkit.FromContext(r.Context())
	res, err := a.m.RevokeAllUserSessions(r.Context(), sessionkit.RevokeAllUserSessions{
		UserID: s.UserID, ExceptSessionID: s.ID, Reason: sessionkit.ReasonLogoutAll,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/devices?revoked="+strconv.Itoa(res.Revoked), http.StatusSeeOther)
}

// devicesPage is "your devices": every active session of the user and the
// recent audit trail.
func (a *app) devicesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, _ := sessionkit.FromContext(ctx)
	usr := a.users.byUserID(s.UserID)
	if usr == nil { // a session of a user this process does not know
		a.fail(w, r, sessionkit.ErrNotFound)
		return
	}
	// Revoked sessions too, to name the devices in the timeline.
	all, err := a.m.ListUserSessions(ctx, s.UserID, sessionkit.ListOptions{IncludeRevoked: true})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	events, err := a.m.Events(ctx, s.UserID, sessionkit.EventQuery{Limit: timelineLength})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := buildDevicesView(usr, s.ID, all, events, a.m.Now())
	v.Notice = notice(r.URL.Query())
	v.SupportBy = s.ImpersonatedBy
	if flash, ok, err := sessionkit.Data(ctx, flashKey); err == nil && ok {
		v.Notice = flash
		if err := sessionkit.DeleteData(ctx, flashKey); err != nil {
			a.log.Warn("sessionkit example: flash message not cleared", "err", err)
		}
	}
	a.render(w, http.StatusOK, "devices.html", v)
}

// notice is the confirmation shown after a redirect back to /devices.
func notice(q url.Values) string {
	if n, err := strconv.Atoi(q.Get("revoked")); err == nil && n >= 0 {
		switch n {
		case 0:
			return "There were no other sessions to sign out."
		case 1:
			return "Signed out 1 session."
		default:
			return "Signed out " + strconv.Itoa(n) + " sessions."
		}
	}
	if n, err := strconv.Atoi(q.Get("evicted")); err == nil && n > 0 {
		if n == 1 {
			return "Your plan allows fewer devices, so your oldest session elsewhere was signed out."
		}
		return "Your plan allows fewer devices, so " + strconv.Itoa(n) + " of your sessions elsewhere were signed out."
	}
	return ""
}

// providerAccounts returns the (fake) accounts held at a provider. The
// access was recorded for the session by middleware.RecordProviderFromPath.
func (a *app) providerAccounts(w http.ResponseWriter, r *http.Request) {
	p := fakeProvider(r.PathValue("name"))
	w.Header().Set("Cache-Control", "no-store")
	if wantsHTML(r) {
		a.render(w, http.StatusOK, "accounts.html", p)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// pageError is the error writer of the example's routes. A browser whose
// session was refused is sent to the login page, which says why; other
// failures get a small error page. API clients (no text/html in Accept)
// and every request to the /sessions API get the usual problem JSON.
func (a *app) pageError(w http.ResponseWriter, r *http.Request, p middleware.Problem) {
	if !wantsHTML(r) || isAPI(r) {
		middleware.WriteProblem(w, r, p)
		return
	}
	a.auth.SessionHeaders(w.Header())
	if p.Reason == middleware.ReasonReauthenticationRequired {
		// The session is fine: ask for the password again, then come back:
		// to the page, or from a form (which a redirect cannot send
		// again) to the page it was on.
		w.Header().Del("Www-Authenticate")
		next := r.URL.RequestURI()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next = "/devices"
			if name := r.PathValue("name"); name != "" && strings.HasPrefix(r.URL.Path, supportFormPrefix) {
				next = "/admin?user=" + url.QueryEscape(name)
			}
		}
		http.Redirect(w, r, "/reauthenticate?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Del("Www-Authenticate")
		a.auth.ClearCookie(w)
		to := "/login?reason=" + url.QueryEscape(p.Reason)
		if p.RevokedReason != "" && p.RevokedReason != p.Reason {
			to += "&revoked_reason=" + url.QueryEscape(p.RevokedReason)
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	a.render(w, p.Status, "error.html", p)
}

// fail writes err the way the middleware would: a store failure is 503,
// never a page that pretends the user has no sessions.
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := middleware.ProblemFor(err)
	if p.Status >= 500 {
		a.log.Error("sessionkit example: request failed", "method", r.Method, "path", r.URL.Path, "reason", p.Reason, "err", err)
	}
	a.pageError(w, r, p)
}

// wantsHTML reports whether the client is a browser asking for a page.
func wantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}

// isAPI reports whether r is for the /sessions API or the JSON admin
// routes, whose errors are problem JSON for every client, as their contract
// says. The support desk page (/admin, /admin/page/...) is a page.
func isAPI(r *http.Request) bool {
	p := r.URL.Path
	return p == "/sessions" || strings.HasPrefix(p, "/sessions/") ||
		(strings.HasPrefix(p, "/admin/") && !strings.HasPrefix(p, supportFormPrefix))
}

// render executes a page template into a buffer first, so a template error
// never leaves a half-written page behind a 200.
func (a *app) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := a.pages.ExecuteTemplate(&buf, name, data); err != nil {
		a.log.Error("sessionkit example: render", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// reauthWithin is how recent a password must be for the sensitive pages.
const reauthWithin = 5 * time.Minute

// reauthAge is config.reauthWithin, or reauthWithin.
func (c config) reauthAge() time.Duration {
	if c.reauthWithin > 0 {
		return c.reauthWithin
	}
	return reauthWithin
}

type reauthView struct {
	Username, Next, Error string
}

// safeNext returns next if it is a path of this site, else "/devices". A
// browser reads a backslash as a slash and drops tabs and newlines, so
// "/\t/evil.example" would take it to another site: next may hold no
// backslash and no control character, and must parse as a path alone.
func safeNext(next string) string {
	const fallback = "/devices"
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) {
		return fallback
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	return next
}

// reauthenticatePage asks the signed-in user for their password again.
func (a *app) reauthenticatePage(w http.ResponseWriter, r *http.Request) {
	s, _ := sessionkit.FromContext(r.Context())
	usr := a.users.byUserID(s.UserID)
	if usr == nil {
		a.fail(w, r, sessionkit.ErrNotFound)
		return
	}
	a.auth.SessionHeaders(w.Header())
	a.render(w, http.StatusOK, "reauthenticate.html", reauthView{Username: usr.Name, Next: safeNext(r.URL.Query().Get("next"))})
}

// reauthenticate checks the password again for the signed-in user: the
// session's secret rotates (a new cookie), its id stays, and the page the
// user was going to opens.
func (a *app) reauthenticate(w http.ResponseWriter, r *http.Request) {
	s, _ := sessionkit.FromContext(r.Context())
	usr := a.users.byUserID(s.UserID)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if usr == nil || r.ParseForm() != nil {
		a.fail(w, r, sessionkit.ErrNotFound)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if _, ok := a.users.check(usr.Name, r.PostForm.Get("password")); !ok {
		a.auth.SessionHeaders(w.Header())
		a.render(w, http.StatusUnauthorized, "reauthenticate.html", reauthView{Username: usr.Name, Next: next, Error: "Wrong password."})
		return
	}
	res, err := a.m.Reauthenticate(r.Context(), sessionkit.Reauthenticate{SessionID: s.ID, UserID: s.UserID})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.auth.SessionHeaders(w.Header())
	a.auth.SetCookie(w, res.Token, res.Session.ExpiresAt)
	http.Redirect(w, r, next, http.StatusSeeOther)
}
