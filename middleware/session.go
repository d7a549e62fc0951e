package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/clientip"
)

// DefaultCookieName is the session cookie's name. The __Host- prefix makes
// browsers accept it only with Secure, Path=/ and no Domain, so no
// subdomain can plant or overwrite it.
const DefaultCookieName = "__Host-session"

// DevCookieName is the cookie name when Options.InsecureDevCookies is set:
// browsers refuse __Host- cookies without Secure, which plain HTTP cannot have.
const DevCookieName = "session"

// Options configures the middleware. The zero value is the secure default:
// the __Host-session cookie, sessions required, RemoteAddr as the client
// address, address changes flagged, problem JSON errors. The middleware logs
// to the Manager's logger (sessionkit.WithLogger): refusals (debug), address
// changes (info; warn when IPRevoke revokes) and store failures (error);
// tokens and cookies never.
type Options struct {
	// CookieName is the session cookie. It must start with "__Host-" unless
	// InsecureDevCookies is set. Default: DefaultCookieName, or DevCookieName
	// with InsecureDevCookies.
	CookieName string
	// AllowBearer also accepts the token as "Authorization: Bearer <token>",
	// for non-browser clients. Responses then vary on Authorization too.
	// Default: off.
	AllowBearer bool
	// Optional lets requests without a valid session through, anonymous
	// (sessionkit.FromContext reports false). An unknown, revoked, expired
	// or idle token is then anonymous too, but two session cookies are
	// still 401 and a store failure is still 503: never anonymous.
	// Authenticator.Require ignores it. Default: off (401 without a valid
	// session).
	Optional bool
	// TrustedProxies lists the proxies (CIDR ranges or addresses) whose
	// X-Forwarded-For is believed: the client is then the rightmost entry
	// that is not a trusted proxy. Default: none, so RemoteAddr is the client.
	TrustedProxies []string
	// IPPolicy is what a change of client address does. Default: IPFlag.
	IPPolicy IPPolicy
	// IPDecision, when set, decides each address change instead of
	// IPPolicy (which must then be IPFlag, the default). Default: none.
	IPDecision IPDecision
	// StoreTimeout bounds each store call of a request: the authentication's,
	// and those of the handlers package's routes (a sign-in's, a refresh's,
	// a revocation's...), not the app's Login (the Redis client needs
	// ContextTimeoutEnabled for a deadline to cut network I/O short); past
	// it the request is 503. Default: none beyond the request's own
	// context and the Redis client's read and write timeouts.
	StoreTimeout time.Duration
	// ErrorWriter writes every failure of the middleware and the handlers.
	// Default: WriteProblem.
	ErrorWriter ErrorWriter
	// InsecureDevCookies allows a cookie name without the __Host- prefix,
	// and makes the handlers set the cookie without Secure, for
	// development on http://localhost only: anyone on the network path can
	// then steal the cookie. A warning is logged to the Manager's logger.
	// Default: off.
	InsecureDevCookies bool
}

// Authenticator is the configured middleware. New is the one-line way to
// get its Middleware; an app that also serves the /sessions routes builds one
// Authenticator and hands it to handlers.New, and apps with their own
// routing use it to authenticate a request, read its token or client
// address, and write failures the same way. It is safe for concurrent use.
type Authenticator struct {
	m          *sessionkit.Manager
	opts       Options
	ips        *clientip.Resolver
	log        *slog.Logger
	writeErr   ErrorWriter
	vary       string
	challenges []string // for a request that presented no token
	badToken   []string // for a request whose token was refused
	badPeer    sync.Once
	noClient   sync.Once   // a trusted proxy named no client
	hinted     atomic.Bool // X-Forwarded-For came with no proxy trusted, and was logged
}

// New returns the session middleware: it authenticates each request and
// puts the session in its context (sessionkit.FromContext), or refuses it
// through the error writer. It is NewAuthenticator(m, opts).Middleware.
func New(m *sessionkit.Manager, opts Options) (func(http.Handler) http.Handler, error) {
	a, err := NewAuthenticator(m, opts)
	if err != nil {
		return nil, err
	}
	return a.Middleware, nil
}

// NewAuthenticator checks opts and returns an Authenticator over m.
func NewAuthenticator(m *sessionkit.Manager, opts Options) (*Authenticator, error) {
	if m == nil {
		return nil, invalid("Manager", "must not be nil")
	}
	if opts.CookieName == "" {
		opts.CookieName = DefaultCookieName
		if opts.InsecureDevCookies {
			opts.CookieName = DevCookieName
		}
	}
	if err := checkCookieName(opts.CookieName, opts.InsecureDevCookies); err != nil {
		return nil, err
	}
	switch {
	case opts.IPPolicy < IPFlag || opts.IPPolicy > IPRevoke:
		return nil, invalid("IPPolicy", fmt.Sprintf("unknown policy %d", int(opts.IPPolicy)))
	case opts.IPDecision != nil && opts.IPPolicy != IPFlag:
		return nil, invalid("IPDecision", "set together with a non-default IPPolicy")
	case opts.StoreTimeout < 0:
		return nil, invalid("StoreTimeout", "must not be negative")
	}
	ips, err := clientip.New(opts.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%w: middleware: TrustedProxies: %w", sessionkit.ErrInvalid, err)
	}
	a := &Authenticator{m: m, opts: opts, ips: ips, log: m.Logger(), writeErr: opts.ErrorWriter, vary: "Cookie"}
	if a.writeErr == nil {
		a.writeErr = WriteProblem
	}
	cookie := fmt.Sprintf(`Cookie realm="sessionkit", cookie-name=%q`, opts.CookieName)
	a.challenges, a.badToken = []string{cookie}, []string{cookie}
	if opts.AllowBearer {
		a.vary = "Cookie, Authorization"
		a.challenges = append(a.challenges, `Bearer realm="sessionkit"`)
		a.badToken = append(a.badToken, `Bearer realm="sessionkit", error="invalid_token"`)
	}
	if ips.TrustsEveryAddress() {
		a.log.Warn("sessionkit: TrustedProxies trusts every address: any client that reaches the server directly chooses its own address with X-Forwarded-For; list the proxies' ranges unless a proxy is the only way in",
			"trusted_proxies", opts.TrustedProxies)
	}
	if opts.InsecureDevCookies {
		a.log.Warn("sessionkit: InsecureDevCookies is on: session cookies work without Secure; never use it in production",
			"cookie", opts.CookieName)
	}
	return a, nil
}

func invalid(field, why string) error {
	return fmt.Errorf("%w: middleware: %s: %s", sessionkit.ErrInvalid, field, why)
}

// checkCookieName accepts an RFC 6265 cookie name, with the __Host- prefix
// unless insecure, and without any prefix a browser would refuse then.
func checkCookieName(name string, insecure bool) error {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return invalid("CookieName", fmt.Sprintf("byte %d is not allowed in a cookie name", i))
		}
	}
	hostPrefix := strings.HasPrefix(name, "__Host-")
	switch {
	case !insecure && !hostPrefix:
		return invalid("CookieName", `must start with "__Host-" (set InsecureDevCookies for plain-HTTP development)`)
	case insecure && (hostPrefix || strings.HasPrefix(name, "__Secure-")):
		return invalid("CookieName", "a __Host- or __Secure- cookie needs Secure, which InsecureDevCookies drops")
	}
	return nil
}

// Options returns the options in effect, defaults filled in.
func (a *Authenticator) Options() Options { return a.opts }

// Manager returns the Manager that authenticates requests.
func (a *Authenticator) Manager() *sessionkit.Manager { return a.m }

// SessionHeaders sets the headers of a response that carries session data
// or sets the session cookie: Vary on the token's headers and
// Cache-Control: no-store.
func (a *Authenticator) SessionHeaders(h http.Header) {
	a.sessionHeaders(h, nil)
}

// sessionHeaders is SessionHeaders that also sets WWW-Authenticate to
// challenges when there are any. On a response without Vary yet, the usual
// case, it costs one allocation: the values are copied into one new
// backing array, and each header gets a full slice of it (len == cap), so
// that a later Add by the app copies instead of writing into the next
// header's value. Nothing is shared with another response.
func (a *Authenticator) sessionHeaders(h http.Header, challenges []string) {
	if len(h["Vary"]) > 0 {
		addVary(h, a.vary)
		h.Set("Cache-Control", "no-store")
		if len(challenges) > 0 {
			h["Www-Authenticate"] = slices.Clone(challenges)
		}
		return
	}
	vals := make([]string, 2+len(challenges))
	vals[0], vals[1] = a.vary, "no-store"
	copy(vals[2:], challenges)
	h["Vary"] = vals[0:1:1]
	h["Cache-Control"] = vals[1:2:2]
	if len(challenges) > 0 {
		h["Www-Authenticate"] = vals[2:]
	}
}

// Middleware authenticates each request before next sees it. It sets
// "Vary: Cookie" (and Authorization with AllowBearer) on every response and
// "Cache-Control: no-store" on authenticated ones; next may override the
// latter by setting its own. It does not wrap the ResponseWriter.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return a.wrap(next, a.opts.Optional)
}

// Require is Middleware for routes that need a signed-in user: a request
// without a valid session is always refused (401), whatever Options.Optional
// says. An app whose Middleware is optional app-wide wraps such routes in
// Require; a request the app-wide Middleware has already authenticated is
// not authenticated again (see Authenticate), so the pair costs one store
// round trip.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return a.wrap(next, false)
}

// wrap is Middleware, letting anonymous requests through when optional.
func (a *Authenticator) wrap(next http.Handler, optional bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The headers are set once the outcome is known, so that each
		// outcome sets all of its own in one go (see sessionHeaders).
		ar, err := a.Authenticate(r)
		switch {
		case err == nil:
			a.SessionHeaders(w.Header())
			next.ServeHTTP(w, ar)
		case optional && Anonymous(err):
			addVary(w.Header(), a.vary)
			next.ServeHTTP(w, r)
		default:
			a.Fail(w, r, err) // sets Vary with the rest
		}
	})
}

// Anonymous reports whether err, from Authenticate, means only that the
// request has no usable session (which optional mode lets through), rather
// than an ambiguous token or a store failure (which it never does).
func Anonymous(err error) bool {
	if errors.Is(err, ErrAmbiguousToken) {
		return false
	}
	return ProblemFor(err).Status == http.StatusUnauthorized
}

// Authenticate checks the request's session token and returns the request
// with the session in its context (sessionkit.FromContext, and
// IPChanged when the address changed and was flagged). It costs one store
// round trip; a token that fails the length and alphabet check costs none.
//
// A request whose context already holds a session authenticated by the same
// Manager is returned as is, so stacking the middleware (an app-wide
// optional one, then the handlers' required one) costs one round trip.
//
// Errors: ErrNoToken, ErrInvalidToken or ErrAmbiguousToken; a
// *sessionkit.RevokedError, sessionkit.ErrExpired or sessionkit.ErrIdle;
// or a store failure wrapping sessionkit.ErrUnavailable.
func (a *Authenticator) Authenticate(r *http.Request) (*http.Request, error) {
	ctx := r.Context()
	if m, ok := sessionkit.ManagerFromContext(ctx); ok && m == a.m {
		return r, nil
	}
	tok, err := a.Token(r)
	if err != nil {
		return nil, err
	}
	var ip netip.Addr
	if a.opts.IPPolicy != IPAllow {
		ip, _ = a.ClientIP(r)
	}
	sctx := ctx
	if a.opts.StoreTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, a.opts.StoreTimeout)
		defer cancel()
	}
	// With IPRevoke or IPDecision, an address change is decided before the
	// Manager records it, and recorded (or the session revoked) in one
	// step after: a failure leaves it to be decided again, and requests
	// racing this one from the address are decided too.
	policy := a.opts.IPPolicy
	var decided *ipDecided
	var onIPChange func(sessionkit.UpdateSessionActivityResult) bool
	if policy == IPRevoke || a.opts.IPDecision != nil {
		decided = &ipDecided{}
		onIPChange = func(res sessionkit.UpdateSessionActivityResult) bool {
			decided.session, decided.change = res.Session, changeOf(res, ip)
			decided.policy = policy
			if a.opts.IPDecision != nil {
				decided.policy = a.opts.IPDecision(r, res.Session, decided.change)
			}
			return decided.policy == IPRevoke
		}
	}
	res, err := a.m.AuthenticateWith(sctx, tok, ip, onIPChange)
	if decided != nil && decided.policy == IPRevoke {
		if revoked, ok := errors.AsType[*sessionkit.RevokedError](err); ok && revoked.Reason == sessionkit.ReasonIPChanged {
			a.logIPChange(decided.session, decided.change, IPRevoke)
		}
	}
	if err != nil {
		if err == sessionkit.ErrNotFound {
			return nil, ErrInvalidToken
		}
		if errors.Is(err, sessionkit.ErrNotFound) { // with the cause, for the refusal's log line
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		return nil, err
	}
	// res.Session is used in place: it is large. NewContext copies it once
	// more, or, when the cache answered, holds the cache's entry instead.
	if res.IPChanged {
		if decided != nil {
			policy = decided.policy
		}
		c := changeOf(res, ip)
		a.logIPChange(res.Session, c, policy)
		if policy == IPFlag {
			ctx = withIPChange(ctx, c)
		}
	}
	authed, err := a.m.NewContext(ctx, res)
	if err != nil {
		return nil, err
	}
	return r.WithContext(authed), nil
}

func changeOf(res sessionkit.UpdateSessionActivityResult, ip netip.Addr) IPChange {
	prev, _ := clientip.Parse(res.PreviousIP)
	return IPChange{
		Previous: prev, Current: ip,
		PreviousCountry: res.PreviousCountry, Country: res.Session.Location.CountryCode,
		CountryChanged: res.CountryChanged,
	}
}

// ipDecided is the decision AuthenticateWith asked for, if it did.
type ipDecided struct {
	policy  IPPolicy
	session sessionkit.Session
	change  IPChange
}

// logIPChange logs a decided address change.
func (a *Authenticator) logIPChange(s sessionkit.Session, c IPChange, policy IPPolicy) {
	attrs := []any{"session_id", s.ID.String(), "user_id", s.UserID.String(),
		"previous_ip", c.Previous.String(), "ip", c.Current.String(), "policy", policy.String()}
	if policy == IPRevoke {
		a.log.Warn("sessionkit: session revoked after an address change", attrs...)
		return
	}
	a.log.Info("sessionkit: session used from a new address", attrs...)
}

// ClientIP returns the request's canonical client address: RemoteAddr, or
// with TrustedProxies the rightmost X-Forwarded-For entry that is not a
// trusted proxy. ok is false when RemoteAddr is not an address (a Unix
// socket listener, a misconfigured proxy); that is logged once, and the
// middleware then authenticates without tracking the address. A trusted
// proxy that names no client (no X-Forwarded-For, or none usable) leaves
// a proxy's address as the client's; that is logged once too, and so is,
// at info, a request with X-Forwarded-For while no proxy is trusted.
func (a *Authenticator) ClientIP(r *http.Request) (netip.Addr, bool) {
	ip, ok := a.ips.ClientIP(r)
	if len(a.opts.TrustedProxies) == 0 && !a.hinted.Load() && len(r.Header["X-Forwarded-For"]) > 0 && a.hinted.CompareAndSwap(false, true) {
		a.log.Info("sessionkit: requests carry X-Forwarded-For, which is ignored: no proxy is trusted, so each client's address is its peer's; behind a proxy or load balancer, set TrustedProxies to its addresses",
			"peer", ip.String())
	}
	if ok && a.ips.Trusted(ip) {
		a.noClient.Do(func() {
			a.log.Warn("sessionkit: a trusted proxy named no client (no usable X-Forwarded-For); its address stands for the client's, so address changes and locations are the proxy's",
				"proxy", ip.String())
		})
	}
	if !ok {
		a.badPeer.Do(func() {
			remote := r.RemoteAddr
			if len(remote) > 64 {
				remote = remote[:64]
			}
			a.log.Warn("sessionkit: RemoteAddr is not an IP address; client addresses are not tracked", "remote_addr", remote)
		})
	}
	return ip, ok
}

// Fail writes the Problem for err (see ProblemFor) through the error
// writer, and logs store failures and unexpected errors (error), and
// refusals (debug).
func (a *Authenticator) Fail(w http.ResponseWriter, r *http.Request, err error) {
	p := ProblemFor(err)
	p.Err = err
	if p.Status >= 500 {
		a.log.Error("sessionkit: request failed", "reason", p.Reason, "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		logRefused(a.log, r, p)
	}
	a.writeProblem(w, r, p, !errors.Is(err, ErrNoToken))
}

// WriteProblem writes p through the error writer, with the headers every
// session response carries: Vary, Cache-Control: no-store, and on a 401 the
// WWW-Authenticate challenges. A refusal (4xx) is logged at debug, as Fail
// logs one.
func (a *Authenticator) WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Status < 500 {
		logRefused(a.log, r, p)
	}
	a.writeProblem(w, r, p, false)
}

// logRefused logs the refusal p of r to log at debug.
func logRefused(log *slog.Logger, r *http.Request, p Problem) {
	// Checked first: the arguments would cost allocations even when debug
	// is off, on the path a flood of bad requests takes.
	if log.Enabled(context.Background(), slog.LevelDebug) {
		if p.Err != nil && p.Err != ErrInvalidToken && p.Err != ErrNoToken {
			log.Debug("sessionkit: request refused", "reason", p.Reason, "method", r.Method, "path", r.URL.Path, "err", p.Err)
			return
		}
		log.Debug("sessionkit: request refused", "reason", p.Reason, "method", r.Method, "path", r.URL.Path)
	}
}

func (a *Authenticator) writeProblem(w http.ResponseWriter, r *http.Request, p Problem, refused bool) {
	var challenges []string
	if p.Status == http.StatusUnauthorized {
		challenges = a.challenges
		if refused {
			challenges = a.badToken
		}
	}
	a.sessionHeaders(w.Header(), challenges)
	a.writeErr(w, r, p)
}

// addVary adds v to the Vary header unless it is already there.
func addVary(h http.Header, v string) {
	for _, have := range h["Vary"] {
		if have == v {
			return
		}
	}
	h.Add("Vary", v)
}
