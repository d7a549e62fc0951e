package sessionkit

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/backend"
)

// Store is where a Manager keeps sessions: a *store.Redis, or a
// *store.Cache over one. An app builds one and passes it to New; it never
// calls these methods itself. They name types internal to this module, so
// no other package can implement Store: Redis is the only store, and this
// contract can change without breaking an app.
//
// Every method is atomic: it applies entirely or not at all. Failures to
// reach the store wrap ErrUnavailable. Commands arrive validated, with the
// Manager's time and policy in the backend.Call.
type Store interface {
	// Attach hands the store what its Manager shares with it, once, from New.
	Attach(env backend.Env)
	// Create stores a new session, evicting the user's sessions that expire
	// soonest while the user is at their limit (Unlimited for none; a stored
	// per-user override wins), or with limit.Reject refusing it with a
	// *LimitError and writing nothing, in one atomic step. It returns the
	// stored events: evictions first, then the creation.
	Create(ctx context.Context, c backend.Call, s Session, cred backend.Credentials, limit backend.Limit) (backend.Created, []Event, error)
	// Refresh rotates a bearer session's refresh token (see backend.Refresh
	// and backend.Refreshed) in one atomic step. An unknown token is
	// ErrNotFound; a genuine one of a session no longer active is refused
	// like Touch refuses it.
	Refresh(ctx context.Context, c backend.Call, in backend.Refresh) (Session, backend.Refreshed, []Event, error)
	// Peek reads a session for authentication in one read-only round trip:
	// the session (revocation filled in from its record) and its token hash;
	// ErrNotFound when it is gone.
	Peek(ctx context.Context, sessionID uuid.UUID) (Session, backend.Peeked, error)
	// Touch authenticates (when use.TokenHash is set) and records activity,
	// with loc as the new address's location when the caller located it.
	// It writes only when the throttle has elapsed or the address changed,
	// and fails with ErrNotFound, a *RevokedError, ErrExpired or ErrIdle.
	Touch(ctx context.Context, c backend.Call, use backend.Use, loc *Location) (Session, backend.Used, []Event, error)
	// TouchAll records the activity of sessions the Manager has just
	// authenticated, as Touch without a token hash or an address does,
	// sent together (one round trip per node). It returns one error per
	// session, in order. The Manager sends it no write that would record
	// an event (see backend.Policy.ActivityEvents).
	TouchAll(ctx context.Context, c backend.Call, sessionIDs []uuid.UUID) []error
	// Revoke soft-revokes one active session owned by userID; ErrNotFound otherwise.
	// actor, when not empty, is the operator who revoked (recorded in the event).
	Revoke(ctx context.Context, c backend.Call, sessionID, userID uuid.UUID, reason, actor string) ([]Event, error)
	// RevokeAll soft-revokes every active session of a user but except; one
	// event per revoked session.
	RevokeAll(ctx context.Context, c backend.Call, userID, except uuid.UUID, reason, actor string) ([]Event, error)
	// RecordProvider adds a provider to an active session's set.
	RecordProvider(ctx context.Context, c backend.Call, sessionID uuid.UUID, provider string) (backend.Recorded, []Event, error)
	// LinkRefreshToken sets an active session's refresh token id.
	LinkRefreshToken(ctx context.Context, c backend.Call, sessionID uuid.UUID, refreshTokenID string) ([]Event, error)
	// Rotate gives an active session of userID new credentials (another
	// user's is ErrNotFound, and untouched), keeping its id: the
	// old session token stops working, and a bearer session's refresh token
	// is replaced with no grace window. It returns the session and the new
	// refresh token's generation.
	Rotate(ctx context.Context, c backend.Call, sessionID, userID uuid.UUID, cred backend.Credentials) (Session, uint32, error)
	// UpdateData sets (value not nil) or deletes one key of an active
	// session's small data within bounds, atomically; past a bound, an error
	// wrapping ErrInvalid and nothing written.
	UpdateData(ctx context.Context, c backend.Call, sessionID uuid.UUID, key string, value *string, bounds backend.DataBounds) error
	// ReadData returns one key of an active session's data.
	ReadData(ctx context.Context, sessionID uuid.UUID, key string, now time.Time) (string, bool, error)
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

// freshPeeker is a Store that may answer Peek from memory (store.Cache):
// PeekFresh reads the session from the store behind it, for a secret the
// copy in memory does not know (rotated on another instance, and not yet
// announced).
type freshPeeker interface {
	PeekFresh(ctx context.Context, sessionID uuid.UUID) (Session, backend.Peeked, error)
}
