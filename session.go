package sessionkit

import (
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Session is one signed-in device of a user. It never holds the token.
type Session struct {
	ID             uuid.UUID
	UserID         uuid.UUID
	Device         Device
	UserAgent      string     // sanitized, at most 512 bytes
	IPAddress      netip.Addr // address at sign-in
	LastIPAddress  netip.Addr // latest address seen
	Location       Location   // latest known location
	CreatedAt      time.Time
	LastActivityAt time.Time
	ExpiresAt      time.Time     // absolute end of the session
	IdleTimeout    time.Duration // zero: no idle timeout
	RevokedAt      time.Time     // zero while not revoked
	RevokedReason  string
	RefreshTokenID string
	IPChangeCount  int

	LastProviderAccessed string
	LastProviderAccessAt time.Time
	ProvidersAccessed    []string // most recently used last

	// Bearer marks a session of an API client, signed in with
	// CreateSession.Bearer: it holds an access token and a refresh token
	// instead of a cookie.
	Bearer bool

	// AuthenticatedAt is when the user's credentials were last checked for
	// this session: at sign-in, then at each Reauthenticate.
	AuthenticatedAt time.Time
	// AAL is the authentication assurance level: AAL1 after a password,
	// AAL2 once the app has checked a second factor (Reauthenticate).
	AAL string
	// ImpersonatedBy, when not empty, is the operator (the label Authorize
	// returned) for whom this session was opened as the user: a support
	// session, outside the user's limit (CreateSession.ImpersonatedBy).
	ImpersonatedBy string
}

// Authentication assurance levels (NIST SP 800-63B).
const (
	AAL1 = "aal1"
	AAL2 = "aal2"
	AAL3 = "aal3"
)

// Device describes the client that created the session.
type Device struct {
	Label          string // "Chrome 131 on macOS", "Unknown device"
	Browser        string
	BrowserVersion string
	OS             string
	OSVersion      string
	Platform       string
	Mobile         bool
	Bot            bool
}

// Location is where an address is, as far as GeoIP knows. The zero value means unknown.
type Location struct {
	Label       string // "London, England, GB"
	City        string
	Region      string
	Country     string
	CountryCode string // ISO 3166-1 alpha-2
}

// State tells whether s may be used at now, and if not, why.
type State int

// Session states.
const (
	StateActive State = iota
	StateRevoked
	StateExpired
	StateIdle
)

// String returns the state's name.
func (st State) String() string {
	switch st {
	case StateActive:
		return "active"
	case StateRevoked:
		return "revoked"
	case StateExpired:
		return "expired"
	case StateIdle:
		return "idle"
	}
	return "unknown"
}

// IdleDeadline is the first instant at which s is idle; zero without an idle timeout.
func (s Session) IdleDeadline() time.Time {
	if s.IdleTimeout <= 0 {
		return time.Time{}
	}
	return s.LastActivityAt.Add(s.IdleTimeout)
}

// StateAt returns the state of s at now. A session is valid while now is
// before both its ExpiresAt and its idle deadline.
func (s Session) StateAt(now time.Time) State {
	switch {
	case !s.RevokedAt.IsZero():
		return StateRevoked
	case !now.Before(s.ExpiresAt):
		return StateExpired
	case s.IdleTimeout > 0 && !now.Before(s.IdleDeadline()):
		return StateIdle
	}
	return StateActive
}

// Err returns nil for an active session and the error that refuses it otherwise.
func (s Session) Err(now time.Time) error {
	switch s.StateAt(now) {
	case StateRevoked:
		return &RevokedError{Reason: s.RevokedReason, At: s.RevokedAt}
	case StateExpired:
		return ErrExpired
	case StateIdle:
		return ErrIdle
	}
	return nil
}
