// Package token mints and parses session tokens.
//
// A token is "<session id>.<secret>": the session id is the canonical UUID
// string (public: it appears in lists, logs and URLs) and the secret is 32
// bytes from crypto/rand, base64url without padding. Only SHA-256 of the
// secret is ever stored. Parse checks length and charset before anything
// else, so a hostile cookie costs no allocation and no Redis call.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/google/uuid"
)

// SecretBytes is the number of random bytes in a token's secret.
const SecretBytes = 32

const (
	idLen     = 36                      // canonical UUID string
	secretLen = (SecretBytes*8 + 5) / 6 // unpadded base64url

	// Len is the length of every token.
	Len = idLen + 1 + secretLen
)

// ErrMalformed is returned for any value that is not a well-formed token.
var ErrMalformed = errors.New("token: malformed")

// Hash is SHA-256 of a token's secret: what the store keeps.
type Hash [sha256.Size]byte

// New mints a token for session id, returning the token and the hash to store.
func New(id uuid.UUID) (string, Hash, error) {
	var secret [SecretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Hash{}, err
	}
	buf := make([]byte, Len)
	copy(buf, id.String())
	buf[idLen] = '.'
	base64.RawURLEncoding.Encode(buf[idLen+1:], secret[:])
	return string(buf), sha256.Sum256(secret[:]), nil
}

// Parse splits a token into its session id and the hash of its secret.
// It rejects, without allocating, anything of the wrong length, with bytes
// outside the token alphabet, with the dot misplaced, or with a secret that
// does not decode to exactly SecretBytes.
func Parse(s string) (uuid.UUID, Hash, error) {
	if len(s) != Len || s[idLen] != '.' {
		return uuid.UUID{}, Hash{}, ErrMalformed
	}
	for i := 0; i < idLen; i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return uuid.UUID{}, Hash{}, ErrMalformed
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			// Upper-case hex is refused too: the canonical form is the only form.
			return uuid.UUID{}, Hash{}, ErrMalformed
		}
	}
	id, err := uuid.Parse(s[:idLen])
	if err != nil {
		return uuid.UUID{}, Hash{}, ErrMalformed
	}
	var src [secretLen]byte // a stack copy keeps Parse allocation-free
	copy(src[:], s[idLen+1:])
	var secret [SecretBytes + 2]byte
	n, err := base64.RawURLEncoding.Strict().Decode(secret[:], src[:])
	if err != nil || n != SecretBytes {
		return uuid.UUID{}, Hash{}, ErrMalformed
	}
	return id, sha256.Sum256(secret[:SecretBytes]), nil
}

// Plausible reports whether s has the length and alphabet of a token. It is
// the check to run before any store access; Parse does it too.
func Plausible(s string) bool {
	if len(s) != Len {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
