// Package sessionkit manages the sessions of a user across devices, on Redis.
//
// A user signs in on a laptop and a phone; the app lists both ("Chrome 131
// on macOS, London, GB, active 2 minutes ago"), signs either out, or signs
// out everywhere else, records which providers each session touched, and
// notices when a session's address changes.
//
// The package holds the types and the Manager. Storage is package store,
// on Redis (one node, Sentinel or Cluster): an app builds a store.Redis (or
// a store.Cache over one) and hands it to New. The HTTP layer is in
// packages middleware (authenticate each request) and handlers (the
// mountable /sessions routes). One logger, WithLogger, reaches everything
// they log.
//
// # Commands
//
// Six commands change sessions, each a plain value executed by a Manager
// method that returns (result, error): CreateSession, RevokeSession,
// RevokeAllUserSessions, UpdateSessionActivity, RecordProviderAccess and
// LinkRefreshTokenToSession. Beside them, RenewSession, Reauthenticate and
// RefreshSession rotate a session's secret, keeping its id. Queries read
// them: Session, UserSession, ListUserSessions, Events, and Authenticate,
// the middleware's hot path.
//
// # Tokens
//
// CreateSession returns the session's token once: "<session id>.<secret>",
// with 32 random bytes of secret of which only SHA-256 is stored and which
// is compared in constant time. Session ids are public; the token is not.
// With WithAccessTokens, a bearer session (CreateSession.Bearer) gets a
// short-lived access token and a rotating refresh token instead, for API
// and mobile clients.
//
// # Errors
//
// An error about a session or a command wraps one of the sentinels:
// ErrInvalid (names the bad field; nothing is written), ErrNotFound (an
// unknown session, another user's, a wrong secret, or an id no session can
// have: one answer from every command), ErrRevoked (see RevokedError for the
// reason), ErrExpired, ErrIdle and ErrUnavailable (the store failed; fail
// closed). The exceptions: a sign-in refused at the limit under RejectNew
// is a *LimitError (errors.Is ErrLimitReached); RecordProvider, PutData,
// Data and DeleteData return ErrNoSession for a context with no session; a
// failure of the app's own limit functions, of the random source or of
// signing is wrapped as it came.
//
// # Request contexts
//
// FromContext returns the session the middleware authenticated. Only a
// session a Manager verified gets into a context: Manager.NewContext takes
// a result of the same Manager's Authenticate and nothing else.
package sessionkit
