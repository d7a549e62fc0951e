// Package middleware authenticates net/http requests with sessionkit
// sessions and writes every failure as RFC 9457 problem JSON.
//
// The drop-in is New, which returns a func(http.Handler) http.Handler:
//
//	mw, err := middleware.New(m, middleware.Options{})
//	if err != nil { ... }
//	http.ListenAndServe(addr, mw(mux))
//
// Every request through it needs a valid session, so the sign-in routes
// (package handlers, or the app's own login) are mounted beside it, not
// behind it: handlers.Handler.Mount on the root mux, and mw around the
// app's routes only (or Options.Optional). The app's own state-changing
// routes refuse cross-site browser requests when wrapped in
// http.CrossOriginProtection, as the handlers' are.
//
// Behind it, handlers call sessionkit.FromContext(r.Context()) for the
// session and sessionkit.RecordProvider(r.Context(), "schwab") to record a
// provider access. Each request costs one read-only Redis command
// (Manager.Authenticate: an HGET, or nothing on a store.Cache hit) while the
// activity throttle holds and the address is unchanged; the activity write
// that falls due then is queued and sent with others off the request path
// (sessionkit.WithActivityWriteDelay), and an address change makes a
// second round trip on it. The cookie value is checked for length and
// alphabet before any Redis call, and is never logged.
//
// Failures are decided separately from how they are written: Authenticator
// returns an error, ProblemFor maps it to a Problem (a status and a
// machine-readable reason such as "no_session", "session_revoked" or
// "store_unavailable"), and one ErrorWriter, replaceable through Options,
// writes it. A store failure is always 503 and never an anonymous request.
//
// Other pieces: RecordProvider and RecordProviderFromPath record provider
// access for a whole route group, ProviderTransport does it for outbound
// requests of an API client, and IPChanged tells a handler that the
// request came from a new address.
package middleware
