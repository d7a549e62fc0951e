// Package rediskey is the one place that names sessionkit's Redis keys.
//
// Every key of one user carries the same hash tag, the user's session-id
// tag (see sessionid), so each script touches one Cluster slot, and a
// command holding only a session id can name every key of the owner's slot
// without asking Redis first:
//
//	<prefix>{<tag>}:act              HASH  member -> session: the active sessions
//	<prefix>{<tag>}:idx              ZSET  the members of act, scored by deadline (ms); and the
//	                                       devices ("d:" and a 48-bit print of the label) and countries
//	                                       ("c:"...) signed in from recently, scored by minus the time (ms)
//	<prefix>{<tag>}:ret              HASH  member -> session: revoked and expired sessions kept for the audit
//	<prefix>{<tag>}:all              ZSET  every retained member, scored by purge time (ms)
//	<prefix>{<tag>}:rev              HASH  member -> "<revoked ms>|<reason>"
//	<prefix>{<tag>}:own              HASH  member -> owner's user id, kept only once tags collide or for impersonation
//	<prefix>{<tag>}:log              LIST  the user's audit trail, newest first; a STRING, the entry,
//	                                       while it has one
//	<prefix>{<tag>}:ev               STREAM the audit trail as earlier releases wrote it: read, never written
//	<prefix>{<tag>}:lim              STRING per-user session limit override
//	<prefix>{<tag>}:seen             ZSET  recent device labels and countries as earlier releases kept
//	                                       them, scored by the time: moved into idx at the next sign-in
//	<prefix>{<tag>}:data             HASH  member -> the session's small data (JSON object of strings)
//	<prefix>{<tag>}:seal             HASH  member -> "<until ms>|<generation>|<sealed secret>": a bearer
//	                                       session's current refresh secret, sealed with the token it
//	                                       superseded, for the refresh grace window only
//
// A session is active exactly while it is a field of act: one HGET reads
// the session and its standing together, and a lost act hash loses the
// sessions with it, so nothing is ever served from a record whose index is
// gone. idx orders act by deadline, for expiry and evictions; the scripts
// rebuild it from act if the two ever disagree.
//
// Members are session ids' last 64 bits in hex (sessionid.Member): the tag
// is already in the key, so members stay short (memory per session is a
// budget). Every read checks the owner stored in the session, and
// evictions and sign-out-everywhere count and revoke only the owner's
// members, so even users whose tags collide never see, evict or revoke
// each other's sessions. The own hash names the owners once a login finds
// another user's session in its slot (60-bit tags: about one slot in 2^60
// pairs of users); until then a slot is one user's and has none.
package rediskey

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/sessionid"
)

// MaxPrefixLen bounds the key prefix.
const MaxPrefixLen = 64

// DefaultPrefix is the key prefix used when none is configured.
const DefaultPrefix = "sk:"

// ErrBadPrefix reports a prefix that could break the key layout.
var ErrBadPrefix = errors.New("rediskey: invalid prefix")

// Keys names keys under one prefix.
type Keys struct{ prefix string }

// New returns the key namer for prefix. The prefix must be printable ASCII
// without spaces or braces (a brace would change the hash tag) and at most
// MaxPrefixLen bytes.
func New(prefix string) (Keys, error) {
	if len(prefix) > MaxPrefixLen {
		return Keys{}, fmt.Errorf("%w: longer than %d bytes", ErrBadPrefix, MaxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c < 0x21 || c > 0x7e || c == '{' || c == '}' {
			return Keys{}, fmt.Errorf("%w: byte %q at %d", ErrBadPrefix, c, i)
		}
	}
	return Keys{prefix: prefix}, nil
}

// Prefix returns the configured prefix.
func (k Keys) Prefix() string { return k.prefix }

// User holds the keys of one user's slot.
type User struct {
	Active, Index, Retained, All, Revoked, Owners, Events, Limit, Seen, Data, Seal string
	// EventsV1 is the stream earlier releases kept the audit trail in: it
	// is read until it expires, and never written.
	EventsV1 string
}

var suffixes = [...]string{"act", "idx", "ret", "all", "rev", "own", "log", "lim", "seen", "data", "seal", "ev"}

// ForTag returns the keys of the slot of tag. All of them share one
// allocation.
func (k Keys) ForTag(t sessionid.Tag) User {
	var hx [16]byte
	hex.Encode(hx[:], t[:])
	var b strings.Builder
	b.Grow(len(suffixes)*(len(k.prefix)+len(hx)+3) + len("actidxretallrevownloglimseendatasealev"))
	var ends [len(suffixes)]int
	for i, suffix := range suffixes {
		b.WriteString(k.prefix)
		b.WriteByte('{')
		b.Write(hx[:])
		b.WriteString("}:")
		b.WriteString(suffix)
		ends[i] = b.Len()
	}
	all := b.String()
	key := func(i int) string {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return all[start:ends[i]]
	}
	return User{
		Active:   key(0),
		Index:    key(1),
		Retained: key(2),
		All:      key(3),
		Revoked:  key(4),
		Owners:   key(5),
		Events:   key(6),
		Limit:    key(7),
		Seen:     key(8),
		Data:     key(9),
		Seal:     key(10),
		EventsV1: key(11),
	}
}

// Active names the hash of active sessions that holds sessionID, and the
// session's field in it: all the hot path reads. Both share one allocation.
func (k Keys) Active(sessionID uuid.UUID) (key, member string) {
	const suffix = "}:act"
	var hx [32]byte
	hex.Encode(hx[:], sessionID[:])
	var b strings.Builder
	b.Grow(len(k.prefix) + 1 + 16 + len(suffix) + 16)
	b.WriteString(k.prefix)
	b.WriteByte('{')
	b.Write(hx[:16])
	b.WriteString(suffix)
	n := b.Len()
	b.Write(hx[16:])
	both := b.String()
	return both[:n], both[n:]
}

// ForUser returns the keys of userID.
func (k Keys) ForUser(userID uuid.UUID) User { return k.ForTag(sessionid.TagOf(userID)) }

// ForSession returns the keys of the owner of sessionID.
func (k Keys) ForSession(sessionID uuid.UUID) User { return k.ForTag(sessionid.TagIn(sessionID)) }
