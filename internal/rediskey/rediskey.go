// Package rediskey is the one place that names sessionkit's Redis keys.
//
// Every key of one user carries the same hash tag, derived from the user id,
// so each script touches one Cluster slot. Session ids are UUIDv8 values
// whose first 64 bits are that tag (with the version nibble), so a command
// holding only a session id can name every key of the owner's slot without
// asking Redis first:
//
//	<prefix>{<tag>}:act              HASH  member -> session: the active sessions
//	<prefix>{<tag>}:idx              ZSET  the members of act, scored by deadline (ms)
//	<prefix>{<tag>}:ret              HASH  member -> session: revoked and expired sessions kept for the audit
//	<prefix>{<tag>}:all              ZSET  every retained member, scored by purge time (ms)
//	<prefix>{<tag>}:rev              HASH  member -> "<revoked ms>|<reason>"
//	<prefix>{<tag>}:own              HASH  member -> owner's user id
//	<prefix>{<tag>}:ev               STREAM the user's audit trail
//	<prefix>{<tag>}:lim              STRING per-user session limit override
//	<prefix>{<tag>}:seen             ZSET  device labels and countries seen recently
//
// A session is active exactly while it is a field of act: one HGET reads
// the session and its standing together, and a lost act hash loses the
// sessions with it, so nothing is ever served from a record whose index is
// gone. idx orders act by deadline, for expiry and evictions; the scripts
// rebuild it from act if the two ever disagree.
//
// A member is the session id's last 64 bits in hex: the tag is already in
// the key, so members stay short (memory per session is a budget).
//
// The tag has 60 bits of SHA-256 of the user id; two users share one only by
// a collision of that hash (about n²/2⁶¹ for n users). Every read checks the
// owner stored in the session, and evictions and sign-out-everywhere count
// and revoke only the owner's members (the own hash), so even then no
// session is shown to, evicted or revoked by another user.
package rediskey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// MaxPrefixLen bounds the key prefix.
const MaxPrefixLen = 64

// DefaultPrefix is the key prefix used when none is configured.
const DefaultPrefix = "sk:"

// ErrBadPrefix reports a prefix that could break the key layout.
var ErrBadPrefix = errors.New("rediskey: invalid prefix")

// Tag is the per-user hash tag: the first 8 bytes of every session id of the user.
type Tag [8]byte

// UserTag derives the tag of a user.
func UserTag(userID uuid.UUID) Tag {
	h := sha256.New()
	h.Write([]byte("sessionkit/user-tag/v1\x00"))
	h.Write(userID[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var t Tag
	copy(t[:], sum[:8])
	t[6] = 0x80 | t[6]&0x0f // UUID version 8 lives in this nibble
	return t
}

// SessionTag returns the tag carried by a session id.
func SessionTag(sessionID uuid.UUID) Tag {
	var t Tag
	copy(t[:], sessionID[:8])
	return t
}

// NewSessionID mints a session id for userID: the user's tag, then 62 random bits.
func NewSessionID(userID uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	t := UserTag(userID)
	copy(id[:8], t[:])
	if _, err := rand.Read(id[8:]); err != nil {
		return uuid.UUID{}, err
	}
	id[8] = 0x80 | id[8]&0x3f // RFC 9562 variant
	return id, nil
}

// IsSessionID reports whether id has the shape of a session id (version 8, RFC variant).
func IsSessionID(id uuid.UUID) bool {
	return id[6]>>4 == 8 && id[8]>>6 == 2
}

// Keys names keys under one prefix.
type Keys struct{ prefix string }

// New returns the key namer for prefix. The prefix must be printable ASCII
// without braces (a brace would change the hash tag) and at most MaxPrefixLen bytes.
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

// Channel is the Pub/Sub channel on which revoked and evicted sessions are
// announced (see ParseAnnouncement).
func (k Keys) Channel() string { return k.prefix + "revoked" }

// User holds the keys of one user's slot.
type User struct {
	Active, Index, Retained, All, Revoked, Owners, Events, Limit, Seen string
}

// TagHex is the tag as written in keys and revocation announcements.
func TagHex(t Tag) string { return hex.EncodeToString(t[:]) }

// ParseAnnouncement decodes a revocation announcement "<tag hex>:<member>,<member>..."
// into session ids; malformed parts are skipped.
func ParseAnnouncement(msg string) []uuid.UUID {
	tagHex, members, ok := strings.Cut(msg, ":")
	var t Tag
	if !ok || len(tagHex) != 16 {
		return nil
	}
	if _, err := hex.Decode(t[:], []byte(tagHex)); err != nil {
		return nil
	}
	var ids []uuid.UUID
	for m := range strings.SplitSeq(members, ",") {
		if id, ok := SessionID(t, m); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

var suffixes = [...]string{"act", "idx", "ret", "all", "rev", "own", "ev", "lim", "seen"}

// ForTag returns the keys of the slot of tag. All of them share one
// allocation.
func (k Keys) ForTag(t Tag) User {
	var hx [16]byte
	hex.Encode(hx[:], t[:])
	var b strings.Builder
	b.Grow(len(suffixes)*(len(k.prefix)+len(hx)+3) + len("actidxretallrevownevlimseen"))
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
func (k Keys) ForUser(userID uuid.UUID) User { return k.ForTag(UserTag(userID)) }

// ForSession returns the keys of the owner of sessionID.
func (k Keys) ForSession(sessionID uuid.UUID) User { return k.ForTag(SessionTag(sessionID)) }

// Member is how a session is named inside its owner's keys.
func Member(sessionID uuid.UUID) string {
	var b [16]byte
	hex.Encode(b[:], sessionID[8:])
	return string(b[:])
}

// SessionID rebuilds a session id from its tag and member.
func SessionID(t Tag, member string) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(member) != 16 {
		return id, false
	}
	copy(id[:8], t[:])
	if _, err := hex.Decode(id[8:], []byte(member)); err != nil {
		return id, false
	}
	return id, IsSessionID(id)
}
