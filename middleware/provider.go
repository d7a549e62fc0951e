package middleware

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/sessionkit/sessionkit"
)

// ProviderOptions configures RecordProvider and RecordProviderFromPath.
// Recording failures are logged to the logger of the request's Manager
// (sessionkit.WithLogger).
type ProviderOptions struct {
	// ErrorWriter writes refusals. Default: WriteProblem.
	ErrorWriter ErrorWriter
}

// RecordProvider returns middleware that records, before each request of a
// route group reaches next, that the request's session accessed provider
// (sessionkit.RecordProviderAccess). Put it behind the session middleware:
//
//	mux.Handle("/schwab/", mw(middleware.RecordProvider("schwab", middleware.ProviderOptions{})(schwabRoutes)))
//
// Provider data is what the audit trail is for, so the request is refused
// rather than served unrecorded when recording cannot be trusted:
//   - a browser sent it from another site (Sec-Fetch-Site cross-site or
//     same-site): 403 cross_origin, nothing recorded. Recording is a state
//     change, and a GET is not covered by http.CrossOriginProtection: a
//     SameSite=Lax cookie rides a top-level navigation, so without this any
//     site could write provider names into a user's audit trail. Requests
//     without the header (API clients, old browsers) are not refused;
//   - no session in the context: 401 no_session;
//   - the session was revoked, expired or went idle since it was
//     authenticated: 401 with that reason;
//   - the store is unavailable: 503 store_unavailable;
//   - a provider name the Manager refuses: 400 invalid_request.
//
// Any other failure is logged and the request is served.
func RecordProvider(provider string, opts ProviderOptions) func(http.Handler) http.Handler {
	return recordProvider(func(*http.Request) string { return provider }, opts)
}

// RecordProviderFromPath is RecordProvider with the provider taken from the
// request's path wildcard of that name (r.PathValue(wildcard)), for a group
// such as "GET /providers/{name}/accounts". A name the Manager refuses (more
// than 64 bytes, or other than letters, digits, '-', '_' and '.') is 400
// invalid_request before the handler runs.
func RecordProviderFromPath(wildcard string, opts ProviderOptions) func(http.Handler) http.Handler {
	return recordProvider(func(r *http.Request) string { return r.PathValue(wildcard) }, opts)
}

func recordProvider(name func(*http.Request) string, opts ProviderOptions) func(http.Handler) http.Handler {
	write := opts.ErrorWriter
	if write == nil {
		write = WriteProblem
	}
	// refuse writes p; a refusal (4xx) is logged at debug, as the
	// Authenticator logs its own.
	refuse := func(w http.ResponseWriter, r *http.Request, p Problem) {
		if p.Status < 500 {
			logRefused(logger(r.Context()), r, p)
		}
		w.Header().Set("Cache-Control", "no-store")
		write(w, r, p)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if crossSite(r) {
				refuse(w, r, NewProblem(http.StatusForbidden, ReasonCrossOrigin, "Provider access is recorded only for requests from this site."))
				return
			}
			provider := name(r)
			err := sessionkit.RecordProvider(r.Context(), provider)
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			log := logger(r.Context())
			p := ProblemFor(err)
			if errors.Is(err, sessionkit.ErrNotFound) { // gone since it was authenticated
				p = problemNoSession
			}
			switch {
			case p.Status == http.StatusUnauthorized, p.Status == http.StatusServiceUnavailable:
			case errors.Is(err, sessionkit.ErrInvalid):
				p = NewProblem(http.StatusBadRequest, ReasonInvalidRequest, "The provider name is not valid.")
			default:
				log.Warn("sessionkit: provider access not recorded", "provider", provider, "err", err)
				next.ServeHTTP(w, r)
				return
			}
			if p.Status == http.StatusServiceUnavailable {
				log.Error("sessionkit: provider access not recorded", "provider", provider, "err", err)
			}
			refuse(w, r, p)
		})
	}
}

// logger is the logger of the Manager that authenticated the request of ctx
// (sessionkit.WithLogger), or slog.Default() for a context without one.
func logger(ctx context.Context) *slog.Logger {
	if m, ok := sessionkit.ManagerFromContext(ctx); ok {
		return m.Logger()
	}
	return slog.Default()
}

// crossSite reports whether a browser sent r from another origin's site or
// a sibling site (Fetch Metadata): the cases http.CrossOriginProtection
// refuses for unsafe methods.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}
