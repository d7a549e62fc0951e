// Package backend is the contract between sessionkit's Manager and its
// store: what every store call carries besides the command's own input
// (Call: the time and the Manager's policy), and what a store reports back
// beyond sessions and events. The root package's Store interface names
// these types, so only this module can implement it: Redis is the only
// store, and the contract can change without breaking an app.
package backend

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Policy is the part of a Manager's configuration that the store applies.
// A Manager builds it once, from its options.
type Policy struct {
	Retention      time.Duration // how long revoked and expired sessions stay listed
	Throttle       time.Duration // how stale stored activity must be before it is written again
	SeenWindow     time.Duration // how long a device or country counts as known
	LimitTTL       time.Duration // a stored per-user limit's lifetime, renewed at each login
	StreamMax      int           // audit trail length cap
	MaxProviders   int           // providers remembered per session
	ActivityEvents bool          // record an event on each stored activity update
}

// Call is what every store command carries: the Manager's time, at
// millisecond precision, and its policy.
type Call struct {
	Now    time.Time
	Policy *Policy
}

// ErrDuplicateID is returned by a store whose Create finds the new session
// id already in use; the Manager retries with a fresh id.
var ErrDuplicateID = errors.New("sessionkit: session id already in use")

// Created is what a store's Create did besides storing the session.
type Created struct {
	Evicted               []uuid.UUID // sessions revoked to keep the user within the limit
	NewDevice, NewCountry bool
}

// Use is what a store's Touch needs: the session, optionally a token hash
// to check, and the address it is used from.
type Use struct {
	SessionID uuid.UUID
	TokenHash *[32]byte  // nil: no token check
	IP        netip.Addr // invalid: no address check
	// Locate, when the address changed and no location is given, makes
	// Touch report NeedLocation without writing, so the caller can locate
	// the new address and call again with the location.
	Locate bool
}

// Used is what a store's Touch did besides returning the session.
type Used struct {
	Written         bool
	NeedLocation    bool
	IPChanged       bool
	PreviousIP      netip.Addr
	PreviousCountry string
}

// Peeked is what a store's Peek read besides the session.
type Peeked struct {
	TokenHash [32]byte // SHA-256 of the token's secret
	Indexed   bool     // among the user's active sessions (revocation is its absence)
}

// Recorded is what a store's RecordProvider did.
type Recorded struct {
	Written, First bool
}

// Env is what a Manager hands its store once, when it is built.
type Env struct {
	Logger *slog.Logger
}
