// Package sessionid is the format of sessionkit's session ids.
//
// A session id is a UUIDv8 whose first 64 bits are its owner's tag (with the
// version nibble) and whose last 64 bits are random (with the RFC 9562
// variant). The tag has 60 bits of SHA-256 of the user id, so a command
// holding only a session id finds the owner's Redis slot, and a cookie
// carries no user id. Two users share a tag only by a collision of that
// hash (about n²/2⁶¹ for n users); the store checks owners wherever that
// matters.
//
// Inside its owner's keys a session is named by its member: the id's last
// 64 bits in hex (the tag is already in the key).
package sessionid

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"

	"github.com/google/uuid"
)

// Tag is the per-user tag: the first 8 bytes of every session id of the user.
type Tag [8]byte

// TagOf derives the tag of a user.
func TagOf(userID uuid.UUID) Tag {
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

// TagIn returns the tag a session id carries.
func TagIn(sessionID uuid.UUID) Tag {
	var t Tag
	copy(t[:], sessionID[:8])
	return t
}

// Hex is the tag as written in keys and announcements.
func (t Tag) Hex() string { return hex.EncodeToString(t[:]) }

// ParseTag decodes Hex's form.
func ParseTag(s string) (Tag, bool) {
	var t Tag
	if len(s) != 2*len(t) {
		return t, false
	}
	_, err := hex.Decode(t[:], []byte(s))
	return t, err == nil
}

// New mints a session id for userID: the user's tag, then 62 random bits.
func New(userID uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	t := TagOf(userID)
	copy(id[:8], t[:])
	if _, err := rand.Read(id[8:]); err != nil {
		return uuid.UUID{}, err
	}
	id[8] = 0x80 | id[8]&0x3f // RFC 9562 variant
	return id, nil
}

// Valid reports whether id has the shape of a session id (version 8, RFC
// variant). No session has an id of another shape.
func Valid(id uuid.UUID) bool {
	return id[6]>>4 == 8 && id[8]>>6 == 2
}

// Member is how a session is named inside its owner's keys.
func Member(sessionID uuid.UUID) string {
	var b [16]byte
	hex.Encode(b[:], sessionID[8:])
	return string(b[:])
}

// FromMember rebuilds a session id from its tag and member.
func FromMember(t Tag, member string) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(member) != 16 {
		return id, false
	}
	copy(id[:8], t[:])
	if _, err := hex.Decode(id[8:], []byte(member)); err != nil {
		return id, false
	}
	return id, Valid(id)
}
