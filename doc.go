// Package sessionkit manages the sessions of a user across devices, on Redis.
//
// A user signs in on a laptop and a phone; the app lists both ("Chrome 131
// on macOS, London, GB, active 2 minutes ago"), signs either out, or signs
// out everywhere else, records which providers each session touched, and
// notices when a session's address changes.
//
// The package holds the types and the Manager; storage is a Store
// implementation (package store, on Redis), the HTTP layer is in packages
// middleware and handlers.
//
// # Commands
//
// Six commands change sessions, each a plain value executed by a Manager
// method that returns (result, error): CreateSession, RevokeSession,
// RevokeAllUserSessions, UpdateSessionActivity, RecordProviderAccess and
// LinkRefreshTokenToSession. Queries read them: Session, UserSession,
// ListUserSessions, Events, and Authenticate, the middleware's hot path.
//
// # Tokens
//
// CreateSession returns the session's token once: "<session id>.<secret>",
// with 32 random bytes of secret of which only SHA-256 is stored and which
// is compared in constant time. Session ids are public; the token is not.
//
// # Errors
//
// Every error wraps one of the sentinels: ErrInvalid (names the bad field;
// nothing is written), ErrNotFound, ErrRevoked (see RevokedError for the
// reason), ErrExpired, ErrIdle and ErrUnavailable (the store failed; fail
// closed).
package sessionkit
