package sessionkit

import (
	"context"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Store persists sessions for a Manager. store.Redis is the implementation;
// the interface lives here so the root package does not depend on Redis.
//
// Every method is atomic: it applies entirely or not at all. Failures to
// reach the store wrap ErrUnavailable. Requests arrive validated, with times
// from the Manager's clock.
type Store interface {
	// Create stores a new session, evicting the user's sessions that expire
	// soonest while the user is at their limit, in one atomic step.
	Create(ctx context.Context, req CreateRequest) (CreateOutcome, error)
	// Touch authenticates (when TokenHash is set) and records activity.
	// It writes only when the throttle has elapsed or the address changed,
	// and fails with ErrNotFound, a *RevokedError, ErrExpired or ErrIdle.
	Touch(ctx context.Context, req TouchRequest) (TouchOutcome, error)
	// Revoke soft-revokes one active session owned by UserID; ErrNotFound otherwise.
	Revoke(ctx context.Context, req RevokeRequest) (RevokeOutcome, error)
	// RevokeAll soft-revokes every active session of a user but Except.
	RevokeAll(ctx context.Context, req RevokeAllRequest) (RevokeAllOutcome, error)
	// RecordProvider adds a provider to an active session's set.
	RecordProvider(ctx context.Context, req ProviderRequest) (ProviderOutcome, error)
	// LinkRefreshToken sets an active session's refresh token id.
	LinkRefreshToken(ctx context.Context, req LinkRequest) (LinkOutcome, error)
	// Get returns a session in any state while it is retained; ErrNotFound after.
	Get(ctx context.Context, sessionID uuid.UUID, now time.Time) (Session, error)
	// List returns a user's sessions, oldest first: the active ones, or every retained one.
	List(ctx context.Context, userID uuid.UUID, includeRevoked bool, now time.Time) ([]Session, error)
	// Events returns a page of the user's audit trail, newest first.
	Events(ctx context.Context, userID uuid.UUID, q EventQuery) ([]Event, error)
	// SetLimit stores a per-user limit override (Unlimited allowed) that
	// lasts ttl; limit 0 removes the override.
	SetLimit(ctx context.Context, userID uuid.UUID, limit int, ttl time.Duration) error
	// Limit returns the user's override, if any.
	Limit(ctx context.Context, userID uuid.UUID) (limit int, ok bool, err error)
}

// Peeker is implemented by a Store that can read a session for
// authentication in one read-only round trip (store.Redis does). With it,
// Manager.Authenticate checks the token and the session's state itself and
// calls Touch only when the activity throttle has elapsed or the address
// changed: the common request costs one cheap read and no script.
type Peeker interface {
	// Peek returns the stored session, its token hash, whether the store
	// holds it among the user's active sessions, and its revocation record;
	// ErrNotFound when it is gone.
	Peek(ctx context.Context, sessionID uuid.UUID) (Peeked, error)
}

// Peeked is what Peeker.Peek read.
type Peeked struct {
	Session   Session  // RevokedAt/RevokedReason set from the revocation record
	TokenHash [32]byte // SHA-256 of the token's secret
	Indexed   bool     // among the user's active sessions (revocation is its absence)
}

// CreateRequest is what Store.Create needs.
type CreateRequest struct {
	Session    Session       // fully formed, with ID, times, device and location
	TokenHash  [32]byte      // SHA-256 of the token's secret
	Limit      int           // the user's limit, Unlimited for none; a stored override wins
	LimitTTL   time.Duration // a stored override's lifetime, renewed at each login
	Retention  time.Duration
	StreamMax  int           // audit trail length cap
	SeenWindow time.Duration // how long a device or country counts as known
	Now        time.Time
}

// CreateOutcome is what Store.Create did.
type CreateOutcome struct {
	Evicted               []uuid.UUID
	NewDevice, NewCountry bool
	Events                []Event // as stored: evictions first, then the creation
}

// TouchRequest is what Store.Touch needs.
type TouchRequest struct {
	SessionID uuid.UUID
	TokenHash *[32]byte  // nil: no token check (UpdateSessionActivity)
	IP        netip.Addr // invalid: no address check
	// Locate, when the address changed and Location is nil, makes Touch return
	// NeedLocation without writing, so the caller can locate the new address
	// and call again with Location set.
	Locate        bool
	Location      *Location
	Throttle      time.Duration
	Retention     time.Duration
	ActivityEvent bool
	StreamMax     int
	Now           time.Time
}

// TouchOutcome is what Store.Touch did.
type TouchOutcome struct {
	Session         Session // as stored after the touch
	Written         bool
	NeedLocation    bool
	IPChanged       bool
	PreviousIP      netip.Addr
	PreviousCountry string
	Events          []Event
}

// RevokeRequest is what Store.Revoke needs.
type RevokeRequest struct {
	SessionID, UserID uuid.UUID
	Reason            string
	Retention         time.Duration
	StreamMax         int
	Now               time.Time
}

// RevokeOutcome is what Store.Revoke did.
type RevokeOutcome struct {
	Events []Event
}

// RevokeAllRequest is what Store.RevokeAll needs.
type RevokeAllRequest struct {
	UserID    uuid.UUID
	Except    uuid.UUID
	Reason    string
	Retention time.Duration
	StreamMax int
	Now       time.Time
}

// RevokeAllOutcome is what Store.RevokeAll did.
type RevokeAllOutcome struct {
	Revoked []uuid.UUID
	Events  []Event
}

// ProviderRequest is what Store.RecordProvider needs.
type ProviderRequest struct {
	SessionID    uuid.UUID
	Provider     string
	MaxProviders int
	Throttle     time.Duration
	Retention    time.Duration
	StreamMax    int
	Now          time.Time
}

// ProviderOutcome is what Store.RecordProvider did.
type ProviderOutcome struct {
	Written, First bool
	Events         []Event
}

// LinkRequest is what Store.LinkRefreshToken needs.
type LinkRequest struct {
	SessionID      uuid.UUID
	RefreshTokenID string
	Retention      time.Duration
	StreamMax      int
	Now            time.Time
}

// LinkOutcome is what Store.LinkRefreshToken did.
type LinkOutcome struct {
	Events []Event
}
