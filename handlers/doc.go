// Package handlers serves the /sessions routes of sessionkit's HTTP
// contract: login, logout, sign out everywhere else, list, get and revoke
// sessions, the audit trail, re-authentication, and the token routes of API
// clients (sign-in for tokens, refresh, the JWKS). It needs no router: New returns an
// http.Handler built on an http.ServeMux with Go 1.22 method patterns, and
// Mount registers it on the app's mux under /sessions and /sessions/.
//
//	auth, err := middleware.NewAuthenticator(m, middleware.Options{})
//	if err != nil { ... }
//	h, err := handlers.New(auth, handlers.Options{
//		Login: func(r *http.Request) (uuid.UUID, error) {
//			user, pass, err := handlers.Credentials(r)
//			if err != nil {
//				return uuid.Nil, err
//			}
//			id, ok := users.Check(r.Context(), user, pass)
//			if !ok {
//				return uuid.Nil, handlers.ErrBadCredentials
//			}
//			return id, nil
//		},
//	})
//	if err != nil { ... }
//	root := http.NewServeMux()
//	h.Mount(root)                          // login needs no session
//	root.Handle("/", auth.Middleware(app)) // the app's own routes
//
// Mount the routes outside any required-mode session middleware (login
// needs no session); behind an optional-mode one is fine.
//
// Every route but the sign-ins (POST /sessions and POST /sessions/token),
// POST /sessions/refresh, GET /sessions/jwks.json and the idempotent
// sign-out (DELETE /sessions/current) needs a valid session, even when the
// Authenticator is Optional (the routes use its Require); the routes share
// the app's Authenticator, so its cookie name, client-address and
// error-writer settings and its Manager's logger apply to them too, and a
// request that an app-wide middleware of the same Manager has already
// authenticated is not authenticated twice. State-changing routes (POST and
// DELETE) are wrapped in http.CrossOriginProtection. Failures are RFC 9457
// problem JSON written by the same ErrorWriter as the middleware's. The
// routes are listed by Routes and described in openapi.json at the
// repository root.
package handlers
