package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// DefaultMaxBodyBytes bounds a login request body when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 64 << 10

// Options configures the /sessions routes.
type Options struct {
	// Login checks a login request's credentials and returns the user's id.
	// The body is already read and bounded: call Credentials for the
	// username and password (or r.PostFormValue, or decode r.Body, which is
	// replayable, for other fields). Return an error wrapping
	// ErrBadCredentials to refuse the login (401 invalid_credentials), or a
	// Refusal (Refuse) to refuse it with a 4xx problem of the app's own
	// (429 too many attempts, say); any other error is 503 when it wraps
	// sessionkit.ErrUnavailable or a context error, 500 otherwise.
	// Required.
	Login func(r *http.Request) (uuid.UUID, error)
	// TrustedOrigins are origins ("https://app.example.com") whose
	// cross-origin POST and DELETE requests are allowed. Default: none.
	TrustedOrigins []string
	// MaxBodyBytes bounds the login body; larger is 413. Default: 64 KiB.
	MaxBodyBytes int64
	// IdleTimeout, when set, chooses the idle timeout of each session the
	// routes sign in, once Login has accepted the request: bearer is true
	// for POST /sessions/token (an API or mobile client), false for POST
	// /sessions (a browser). It is sessionkit.CreateSession.IdleTimeout:
	// zero is the Manager's (sessionkit.WithIdleTimeout),
	// sessionkit.NoIdleTimeout none; a value the Manager refuses is a 500.
	// Default: the Manager's for every session.
	IdleTimeout func(r *http.Request, bearer bool) time.Duration
}

// idleTimeout is the idle timeout for a session signed in by r (see
// Options.IdleTimeout).
func (h *Handler) idleTimeout(r *http.Request, bearer bool) time.Duration {
	if h.idle == nil {
		return 0
	}
	return h.idle(r, bearer)
}

// Route is one route of the HTTP contract.
type Route struct {
	Method string // "GET", "POST", "PUT" or "DELETE"
	Path   string // as in OpenAPI: "/sessions/{id}"
	// Session reports whether the route requires a valid session (401 without).
	Session bool
	// CrossOrigin reports whether the route is guarded by http.CrossOriginProtection.
	CrossOrigin bool
}

// Pattern is the route's http.ServeMux pattern, "GET /sessions/{id}".
func (rt Route) Pattern() string { return rt.Method + " " + rt.Path }

// routes is the one table of what is served; the OpenAPI test compares the
// document against it.
var routes = []Route{
	{Method: http.MethodPost, Path: "/sessions", CrossOrigin: true},
	{Method: http.MethodGet, Path: "/sessions", Session: true},
	{Method: http.MethodDelete, Path: "/sessions", Session: true, CrossOrigin: true},
	{Method: http.MethodGet, Path: "/sessions/current", Session: true},
	{Method: http.MethodPost, Path: "/sessions/current/reauthenticate", Session: true, CrossOrigin: true},
	{Method: http.MethodDelete, Path: "/sessions/current", CrossOrigin: true},
	{Method: http.MethodGet, Path: "/sessions/events", Session: true},
	{Method: http.MethodPost, Path: "/sessions/token", CrossOrigin: true},
	{Method: http.MethodPost, Path: "/sessions/refresh", CrossOrigin: true},
	{Method: http.MethodGet, Path: "/sessions/jwks.json"},
	{Method: http.MethodGet, Path: "/sessions/{id}", Session: true},
	{Method: http.MethodDelete, Path: "/sessions/{id}", Session: true, CrossOrigin: true},
}

// Routes returns every route the Handler serves.
func Routes() []Route { return slices.Clone(routes) }

// Handler serves the /sessions routes. It is safe for concurrent use.
type Handler struct {
	m       *sessionkit.Manager
	auth    *middleware.Authenticator
	login   func(*http.Request) (uuid.UUID, error)
	idle    func(*http.Request, bool) time.Duration
	maxBody int64
	log     *slog.Logger
	mux     *http.ServeMux
}

// New checks opts and returns the Handler for the routes, over the app's
// Authenticator: the routes read the session cookie or token, resolve the
// client address, set the login cookie and write errors as auth's options
// say, and log to its Manager's logger. The routes that need a session
// require one (auth.Require) even when auth is Optional.
func New(auth *middleware.Authenticator, opts Options) (*Handler, error) {
	if auth == nil {
		return nil, invalid("Authenticator", "must not be nil")
	}
	if opts.Login == nil {
		return nil, invalid("Login", "must not be nil")
	}
	if opts.MaxBodyBytes < 0 {
		return nil, invalid("MaxBodyBytes", "must not be negative")
	}
	m := auth.Manager()
	if _, err := m.JWKS(); err == nil && !auth.Options().AllowBearer {
		return nil, invalid("Authenticator", "the Manager issues access tokens (sessionkit.WithAccessTokens), which it does not accept: "+
			"set middleware.Options.AllowBearer, or API clients sign in for tokens every route refuses")
	}
	h := &Handler{
		m: m, auth: auth, login: opts.Login, idle: opts.IdleTimeout,
		maxBody: opts.MaxBodyBytes, log: m.Logger(),
		mux: http.NewServeMux(),
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	cop, err := crossOrigin(opts.TrustedOrigins)
	if err != nil {
		return nil, err
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, http.StatusForbidden, middleware.ReasonCrossOrigin, "Cross-origin requests may not change sessions.")
	}))
	serve := map[string]http.HandlerFunc{
		"POST /sessions":                        h.createSession,
		"GET /sessions":                         h.listSessions,
		"DELETE /sessions":                      h.revokeAll,
		"GET /sessions/current":                 h.currentSession,
		"POST /sessions/current/reauthenticate": h.reauthenticate,
		"DELETE /sessions/current":              h.logout,
		"GET /sessions/events":                  h.events,
		"POST /sessions/token":                  h.createTokenSession,
		"POST /sessions/refresh":                h.refresh,
		"GET /sessions/jwks.json":               h.jwks,
		"GET /sessions/{id}":                    h.getSession,
		"DELETE /sessions/{id}":                 h.revokeSession,
	}
	for _, rt := range routes {
		var hh http.Handler = serve[rt.Pattern()]
		if rt.Session {
			hh = auth.Require(hh)
		}
		if rt.CrossOrigin {
			hh = cop.Handler(hh)
		}
		h.mux.Handle(rt.Pattern(), hh)
	}
	return h, nil
}

func invalid(field, why string) error {
	return fmt.Errorf("%w: handlers: %s: %s", sessionkit.ErrInvalid, field, why)
}

// Mount registers h on mux for /sessions and everything under /sessions/.
// The Handler also serves its routes wherever else it is mounted: under a
// prefix ("/api/v1/sessions/..."), with or without http.StripPrefix, on
// ServeMux or another router (chi's Mount); see relative.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("/sessions", h)
	mux.Handle("/sessions/", h)
}

// ServeHTTP serves one of the routes; another path under /sessions is 404
// and another method 405 (with Allow), both as problem JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serveMux(h.mux, w, relative(r, "/sessions"))
}

// serveMux serves r from mux; a path mux does not serve is 404, and a
// method it does not serve there 405 with Allow, both as problem JSON.
func (h *Handler) serveMux(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	if _, pattern := mux.Handler(r); pattern != "" {
		mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		// not_found is the contract's reason; its title names a session.
		p := middleware.NewProblem(http.StatusNotFound, middleware.ReasonNotFound, "No such route.")
		p.Title = "Not found"
		h.auth.WriteProblem(w, r, p)
		return
	}
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead)
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	h.problem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "The route does not support this method.")
}

func (h *Handler) problem(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	h.auth.WriteProblem(w, r, middleware.NewProblem(status, reason, detail))
}

// writeJSON answers v as JSON that must not be cached: it is session data.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // the wire types always marshal
		http.Error(w, "sessionkit: encoding the response failed", http.StatusInternalServerError)
		return
	}
	write(w, status, "application/json", "no-store", append(body, '\n'))
}

// write sends body with its type, its caching, and no sniffing.
func write(w http.ResponseWriter, status int, contentType, cacheControl string, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", cacheControl)
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

// session is the authenticated session of a route that requires one.
func session(r *http.Request) sessionkit.Session {
	s, _ := sessionkit.FromContext(r.Context())
	return s
}

type prefixKey struct{}

// relative returns r with its path made relative to where the routes are
// mounted: from the first path segment named root (root is "/sessions" or
// "/admin") on, whatever precedes it ("/api/v1"), as a router that does not
// strip its mount prefix leaves it. The prefix, escaped as sent (behind
// http.StripPrefix, what the request-target's path has before the path),
// is kept in the context for the Location of new sessions.
func relative(r *http.Request, root string) *http.Request {
	p := r.URL.Path
	for i := 0; i < len(p); {
		j := strings.Index(p[i:], root)
		if j < 0 {
			break
		}
		k := i + j
		if rest := p[k:]; rest == root || strings.HasPrefix(rest, root+"/") {
			if k == 0 {
				// Mounted at root, or behind http.StripPrefix: the request
				// line still has the prefix. Its target may be in absolute
				// form ("http://host/api/v1/sessions"), so its path is
				// taken from it, and compared escaped, as it is sent.
				target, err := url.ParseRequestURI(r.RequestURI)
				if err != nil {
					return r
				}
				if prefix, ok := strings.CutSuffix(target.EscapedPath(), r.URL.EscapedPath()); ok && prefix != "" && strings.HasPrefix(prefix, "/") {
					return r.WithContext(context.WithValue(r.Context(), prefixKey{}, prefix))
				}
				return r
			}
			// The prefix is taken from the escaped path, as it was sent
			// ("/api%20v1"), where the root's slash is one there too.
			ep := r.URL.EscapedPath()
			if j, ok := escapedIndex(ep, k); ok {
				rel := r.WithContext(context.WithValue(r.Context(), prefixKey{}, ep[:j]))
				u := *r.URL
				u.Path, u.RawPath = rest, ep[j:]
				rel.URL = &u
				return rel
			}
		}
		i = k + 1
	}
	return r
}

// escapedIndex returns where in ep, an escaped path, the byte at k of its
// unescaped form begins, and whether that byte is a slash in ep too (not
// "%2F").
func escapedIndex(ep string, k int) (int, bool) {
	n := 0 // bytes of the unescaped form before ep[j]
	for j := 0; j < len(ep); n++ {
		if n == k {
			return j, ep[j] == '/'
		}
		if ep[j] == '%' {
			j += 3
		} else {
			j++
		}
	}
	return 0, false
}

// located is path under the prefix the routes are mounted at.
func located(r *http.Request, path string) string {
	prefix, _ := r.Context().Value(prefixKey{}).(string)
	return prefix + path
}

// crossOrigin returns the protection of the state-changing routes, with
// origins trusted. An origin with a wildcard is refused: the protection
// compares origins exactly, so it would match none.
func crossOrigin(origins []string) (*http.CrossOriginProtection, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range origins {
		if strings.Contains(o, "*") {
			return nil, fmt.Errorf("%w: handlers: TrustedOrigins: %q: wildcards match nothing: list each origin", sessionkit.ErrInvalid, o)
		}
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("%w: handlers: TrustedOrigins: %w", sessionkit.ErrInvalid, err)
		}
	}
	return cop, nil
}

// storeCtx bounds a store call of r by the Authenticator's StoreTimeout,
// as its authentication is; without one, r's context.
func (h *Handler) storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	if d := h.auth.Options().StoreTimeout; d > 0 {
		return context.WithTimeout(r.Context(), d)
	}
	return r.Context(), func() {}
}
