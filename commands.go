package sessionkit

import (
	"time"

	"github.com/google/uuid"
)

// The six commands are plain values: they carry input and no logic. Manager
// validates and executes each one and returns (result, error). A command
// with a bad field fails with an error wrapping ErrInvalid that names the
// field, and nothing is written.

// CreateSession signs a user in on a new device.
type CreateSession struct {
	UserID    uuid.UUID
	IPAddress string // client address; ports, brackets and zones are accepted and stripped
	UserAgent string // raw User-Agent; sanitized and bounded before storage
	// ExpiresAt is the absolute end of the session; zero means now plus the
	// Manager's lifetime (default 30 days). It must lie in the future and
	// within MaxLifetime.
	ExpiresAt      time.Time
	RefreshTokenID string // optional
	// ImpersonatedBy opens a support session as the user for an operator,
	// named by their public label (1..64 bytes of printable ASCII): it is
	// marked, never counted toward the user's limit and never evicts the
	// user's sessions. Default: empty, a session of the user's own.
	ImpersonatedBy string
	// Bearer signs in an API or mobile client: the result carries Tokens
	// (an access token and a refresh token) instead of a session token.
	// It needs WithAccessTokens.
	Bearer bool
	// IdleTimeout ends this session once it has seen no activity for that
	// long, in place of the Manager's (WithIdleTimeout): say, a browser's
	// session after 15 minutes and a mobile app's never. It must be at
	// least one second and longer than the activity throttle. Zero means
	// the Manager's; NoIdleTimeout gives this session none. It stays with
	// the session through RenewSession and Reauthenticate.
	IdleTimeout time.Duration
}

// NoIdleTimeout, as CreateSession.IdleTimeout, gives a session no idle
// timeout whatever the Manager's (WithIdleTimeout).
const NoIdleTimeout time.Duration = -1

// CreateSessionResult is the outcome of CreateSession.
type CreateSessionResult struct {
	Session Session
	// Token is the session's secret credential, "<session id>.<secret>". It is
	// returned once, here, and never stored: set it as the cookie and forget it.
	Token string
	// Evicted lists the sessions revoked to keep the user within their limit.
	Evicted []uuid.UUID
	// NewDevice and NewCountry are true when the user has signed in before,
	// but not recently from this device label or country.
	NewDevice, NewCountry bool
	// Tokens are a bearer session's credentials (CreateSession.Bearer);
	// Token is then empty.
	Tokens Tokens
}

// RevokeSession signs one of the user's sessions out.
type RevokeSession struct {
	SessionID uuid.UUID
	UserID    uuid.UUID // the owner: a session of another user is ErrNotFound
	Reason    string    // printable ASCII, 1..128 bytes
	Actor     string    // the operator revoking it (1..64 bytes of printable ASCII), or "" for the user
}

// RevokeSessionResult is the outcome of RevokeSession.
type RevokeSessionResult struct {
	RevokedAt time.Time
}

// RevokeAllUserSessions signs a user out everywhere, optionally but one session.
type RevokeAllUserSessions struct {
	UserID          uuid.UUID
	Reason          string
	ExceptSessionID uuid.UUID // zero: revoke every session
	Actor           string    // the operator revoking them, or "" for the user
}

// RevokeAllUserSessionsResult is the outcome of RevokeAllUserSessions.
type RevokeAllUserSessionsResult struct {
	Revoked    int
	SessionIDs []uuid.UUID
}

// UpdateSessionActivity records that a session was used from an address.
type UpdateSessionActivity struct {
	SessionID uuid.UUID
	IPAddress string // empty: do not check the address
}

// UpdateSessionActivityResult is the outcome of UpdateSessionActivity.
type UpdateSessionActivityResult struct {
	Session Session
	// Written reports whether this call stored the activity: false when
	// the throttle held and nothing was due, and when Authenticate queued
	// the write to be sent after the request (see WithActivityWriteDelay).
	Written bool
	// IPChanged reports a new client address; PreviousIP is the one before.
	IPChanged       bool
	PreviousIP      string
	CountryChanged  bool
	PreviousCountry string

	// verifiedBy and verified mark a result of Authenticate: the Manager
	// that checked the token, and what it found the session to be (see
	// NewContext).
	verifiedBy *Manager
	verified   uuid.UUID
	grant      uint64 // grantOf the session found
	// entry, when set, is the store's immutable copy Session was read from
	// and equals (the cache's entry): NewContext holds it instead of a copy.
	entry sessionEntry
}

// RecordProviderAccess records that a session reached an external provider
// (a brokerage such as "schwab").
type RecordProviderAccess struct {
	SessionID    uuid.UUID
	ProviderName string // 1..64 bytes of letters, digits, '-', '_' and '.'
}

// RecordProviderAccessResult is the outcome of RecordProviderAccess.
type RecordProviderAccessResult struct {
	// Written is false when the same provider was recorded within the throttle.
	Written bool
	// First is true when this session had not accessed the provider before.
	First bool
	At    time.Time
}

// Reauthenticate records that a user's credentials were just checked again
// for one of their sessions (see Manager.Reauthenticate).
type Reauthenticate struct {
	SessionID uuid.UUID
	UserID    uuid.UUID // the owner: a session of another user is ErrNotFound
	AAL       string    // the new assurance level (AAL1, AAL2, AAL3), or "" to keep it
}

// LinkRefreshTokenToSession attaches the id of a refresh token to a session.
type LinkRefreshTokenToSession struct {
	SessionID      uuid.UUID
	RefreshTokenID string // printable ASCII, 1..128 bytes
}

// LinkRefreshTokenToSessionResult is the outcome of LinkRefreshTokenToSession.
type LinkRefreshTokenToSessionResult struct{}
