// Package backend is the contract between sessionkit's Manager and its
// store: what every store call carries besides the command's own input
// (Call: the time and the Manager's policy), and what a store reports back
// beyond sessions and events. The root package's Store interface names
// these types, so only this module can implement it: Redis is the only
// store, and the contract can change without breaking an app.
package backend

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
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
	RefreshGrace   time.Duration // how long a superseded refresh token gets the current one back; 0: not at all
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

// Limit is the user's session limit at a sign-in.
type Limit struct {
	Max    int  // Unlimited (-1) for none; a stored per-user override wins
	Reject bool // at the limit, refuse the sign-in instead of evicting
}

// DataBounds bound one session's small data.
type DataBounds struct {
	Keys  int // keys at most
	Bytes int // bytes of keys and values together at most
}

// Credentials are the hashes a new session is stored with, or a rotated
// one's.
type Credentials struct {
	TokenHash   [32]byte  // SHA-256 of the session token's secret
	RefreshHash *[32]byte // a bearer session's first refresh secret, hashed; nil for a cookie session
	// RefreshFamily is, with RefreshHash, the hashed secret of the new
	// refresh token family (token.Refresh.Family): every later token of
	// the session carries it. Nil only for a session from before families.
	RefreshFamily *[32]byte
	// Reauthenticated (Rotate): the user's credentials were just checked
	// again; AAL, when not empty, is the new assurance level.
	Reauthenticated bool
	AAL             string
}

// Refresh is what a store's Refresh needs: the refresh token presented
// (its session, generation, hashed secret and hashed family) and the one to
// issue if the presented one is current.
type Refresh struct {
	SessionID  uuid.UUID
	Generation uint32
	Presented  [32]byte  // SHA-256 of the presented secret
	Family     *[32]byte // SHA-256 of the presented family; nil: a token from before families
	Next       [32]byte  // SHA-256 of the successor's secret
	Sealed     [32]byte  // the successor's secret sealed with the presented one
}

// Refreshed is what a store's Refresh did.
type Refreshed struct {
	// Rotated: the presented token was current and Next supersedes it.
	// Otherwise the presented token is the one just superseded, within the
	// grace window, and Sealed holds the current secret, sealed with it.
	Rotated    bool
	Generation uint32 // the current token's
	Sealed     [32]byte
	// Reused: the presented token is of the session's family but neither
	// current nor the one just superseded within the grace window (any
	// older one, or that one after the window); the session is revoked
	// (reason refresh_token_reused).
	Reused bool
}

// RefreshState is a bearer session's stored refresh token state.
type RefreshState struct {
	Hash       [32]byte // SHA-256 of the current secret
	Generation uint32
	// Previous is SHA-256 of the secret the current one superseded (zero
	// when none has been), and RotatedAt when the current one was issued:
	// the superseded token is still accepted within the grace window
	// after RotatedAt.
	Previous  [32]byte
	RotatedAt time.Time
	// Family is SHA-256 of the family's secret as stored: its first 132
	// bits (as Peeked.TokenHash with TokenHashPrefix), the rest zero;
	// zero for a session from before families.
	Family [32]byte
}

// FamilyMatches reports, in time independent of the hashes, whether h
// (the SHA-256 of a presented token's family, nil for a token without one)
// is the stored family: a token and a session from before families match.
func (r *RefreshState) FamilyMatches(h *[32]byte) bool {
	if r.Family == ([32]byte{}) || h == nil {
		return r.Family == ([32]byte{}) && h == nil
	}
	return prefixMatches(&r.Family, h)
}

// familyTagBytes is how much of a family's hash an access token carries.
const familyTagBytes = 12

// FamilyTag is what an access token minted under the token family h (its
// hash, whole or as stored) carries of it: the hash's first 96 bits,
// base64url. The store keeps more of the same hash; neither tells the
// family's secret.
func FamilyTag(h *[32]byte) string {
	return base64.RawURLEncoding.EncodeToString(h[:familyTagBytes])
}

// TagMatches reports whether tag, an access token's FamilyTag, is of the
// stored family, so that the token was minted under the session's current
// credentials. An empty tag, of a token minted before tags, matches.
func (r *RefreshState) TagMatches(tag string) bool {
	if tag == "" {
		return true
	}
	var b [familyTagBytes]byte
	if r.Family == ([32]byte{}) || len(tag) != base64.RawURLEncoding.EncodedLen(familyTagBytes) {
		return false
	}
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(tag)); err != nil || n != familyTagBytes {
		return false
	}
	return subtle.ConstantTimeCompare(b[:], r.Family[:familyTagBytes]) == 1
}

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
	// Hold, when the address changed, makes Touch report it (Used.Held,
	// IPChanged, PreviousIP, PreviousCountry) without writing anything, so
	// that the caller can locate the new address or decide on the change,
	// and call again without Hold.
	Hold bool
	// Revoke records the address change and revokes the session
	// (sessionkit.ReasonIPChanged) in one step: the caller decided to end
	// the session on the change Hold reported. A change recorded meanwhile
	// is not recorded again; the session is revoked all the same.
	Revoke bool
	// From, with a decision, is the previous address Hold reported: if
	// another request has stored another since, Touch holds the change
	// again (Used.Held) rather than record one that was not decided.
	From netip.Addr
}

// Used is what a store's Touch did besides returning the session.
type Used struct {
	Written         bool
	Held            bool // Use.Hold stopped at an address change: nothing was written
	Revoked         bool // Use.Revoke revoked the session; its events are returned
	IPChanged       bool
	PreviousIP      netip.Addr
	PreviousCountry string
}

// Peeked is what a store's Peek read besides the session.
type Peeked struct {
	// TokenHash is SHA-256 of the token's secret as stored: whole, or
	// with TokenHashPrefix, its first 132 bits (16 bytes and the high half
	// of the 17th), the rest zero.
	TokenHash       [32]byte
	TokenHashPrefix bool
	Indexed         bool         // among the user's active sessions (revocation is its absence)
	Refresh         RefreshState // a bearer session's; zero for a cookie session
	// Entry, when set, is the immutable copy of the session a store keeps
	// and answered from (the verified-session cache's entry), with a
	// method Session() sessionkit.Session that returns the session
	// again: a request's context holds it rather than a copy of the
	// session. It must never change once returned.
	Entry any
}

// TokenMatches reports, in time independent of the hashes, whether h (the
// SHA-256 of a presented secret) is the stored hash.
func (p *Peeked) TokenMatches(h *[32]byte) bool {
	if !p.TokenHashPrefix {
		return subtle.ConstantTimeCompare(p.TokenHash[:], h[:]) == 1
	}
	return prefixMatches(&p.TokenHash, h)
}

// prefixMatches compares a hash stored by its first 132 bits with h's.
func prefixMatches(stored, h *[32]byte) bool {
	return subtle.ConstantTimeCompare(stored[:16], h[:16])&subtle.ConstantTimeByteEq(stored[16], h[16]&0xf0) == 1
}

// Recorded is what a store's RecordProvider did.
type Recorded struct {
	Written, First bool
}

// Env is what a Manager hands its store once, when it is built.
type Env struct {
	Logger *slog.Logger
	// MeterProvider is where the store registers its own instruments (a
	// store.Cache's hits and misses); never nil from a Manager.
	MeterProvider metric.MeterProvider
}

// Keyable reports whether v can be a map key: not only its type but the
// values inside it (an interface field holding a slice cannot). The
// Manager and the cache key what they share per MeterProvider by it.
func Keyable(v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = map[any]bool{v: true}
	return true
}
