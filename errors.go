package sessionkit

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Match them with errors.Is. An error about a session or
// a command wraps one of them, except these: a sign-in refused at the limit
// under RejectNew is a *LimitError, which wraps ErrLimitReached;
// RecordProvider and the request's data helpers (PutData, Data, DeleteData)
// return ErrNoSession when the context holds no session; and a failure of
// the app's WithLimit or WithLimitPolicy function, of the system's random
// source or of signing an access token is wrapped as it came.
var (
	// ErrInvalid reports a command or option with a bad field; the message names it.
	ErrInvalid = errors.New("sessionkit: invalid input")
	// ErrNotFound reports an unknown session, a session of another user, or a
	// token whose secret does not match. The three are deliberately one answer.
	ErrNotFound = errors.New("sessionkit: session not found")
	// ErrRevoked reports a revoked or evicted session; errors.As to *RevokedError for the reason.
	ErrRevoked = errors.New("sessionkit: session revoked")
	// ErrExpired reports a session past its absolute lifetime.
	ErrExpired = errors.New("sessionkit: session expired")
	// ErrIdle reports a session past its idle timeout.
	ErrIdle = errors.New("sessionkit: session idle timeout")
	// ErrUnavailable reports that the store could not be reached or refused
	// the operation (down, timeout, out of memory). Nothing was half-written.
	ErrUnavailable = errors.New("sessionkit: store unavailable")
)

// Revocation reasons recorded by sessionkit itself.
const (
	ReasonLimitExceeded = "session_limit_exceeded"
	ReasonLogout        = "logout"
	ReasonLogoutAll     = "logout_everywhere"
	ReasonUserRevoked   = "revoked_by_user"
	ReasonLogin         = "replaced_by_login"
	ReasonIPChanged     = "ip_changed"
	// ReasonRefreshReused revokes a bearer session when a superseded
	// refresh token of its family comes back: the one just superseded,
	// after the grace window, or any older one. A sign that it was stolen.
	// (A session from before families knows only the one just superseded.)
	ReasonRefreshReused = "refresh_token_reused"
)

// ErrLimitReached reports a sign-in refused because the user holds their
// limit of sessions and their LimitPolicy is RejectNew; errors.As to
// *LimitError for the counts.
var ErrLimitReached = errors.New("sessionkit: session limit reached")

// LimitError is a sign-in refused at the limit. It wraps ErrLimitReached.
type LimitError struct {
	Active int // the user's active sessions
	Limit  int // the limit that applied
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s (%d active, limit %d)", ErrLimitReached.Error(), e.Active, e.Limit)
}

// Unwrap makes errors.Is(err, ErrLimitReached) true.
func (e *LimitError) Unwrap() error { return ErrLimitReached }

// RevokedError carries why and when a session was revoked. It wraps ErrRevoked.
type RevokedError struct {
	Reason string    // e.g. ReasonLimitExceeded; empty when unknown
	At     time.Time // zero when unknown
}

func (e *RevokedError) Error() string {
	if e.Reason == "" {
		return ErrRevoked.Error()
	}
	return fmt.Sprintf("%s (%s)", ErrRevoked.Error(), e.Reason)
}

// Unwrap makes errors.Is(err, ErrRevoked) true.
func (e *RevokedError) Unwrap() error { return ErrRevoked }

// invalid returns an ErrInvalid naming field.
func invalid(field, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, why)
}
