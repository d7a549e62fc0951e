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

// strictEncoding decodes a secret, refusing non-zero padding bits, so that
// each secret has one spelling. (Strict copies the Encoding: once, here.)
var strictEncoding = base64.RawURLEncoding.Strict()

// Parse splits a token into its session id and the hash of its secret.
// It rejects, without allocating, anything of the wrong length, with bytes
// outside the token alphabet, with the dot misplaced, or with a secret that
// does not decode to exactly SecretBytes.
func Parse(s string) (uuid.UUID, Hash, error) {
	if len(s) != Len || s[idLen] != '.' {
		return uuid.UUID{}, Hash{}, ErrMalformed
	}
	id, ok := parseID(s[:idLen])
	if !ok {
		return uuid.UUID{}, Hash{}, ErrMalformed
	}
	var src [secretLen]byte // a stack copy keeps Parse allocation-free
	copy(src[:], s[idLen+1:])
	var secret [SecretBytes + 2]byte
	n, err := strictEncoding.Decode(secret[:], src[:])
	if err != nil || n != SecretBytes {
		return uuid.UUID{}, Hash{}, ErrMalformed
	}
	return id, sha256.Sum256(secret[:SecretBytes]), nil
}

// idHex are the offsets of the 16 hex pairs of a canonical UUID string.
var idHex = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// ParseID decodes a UUID in its canonical form only (uuid.UUID.String's):
// 36 bytes, dashes at 8, 13, 18 and 23, lower-case hex elsewhere. It is
// faster than uuid.Parse, which accepts other forms too.
func ParseID(s string) (uuid.UUID, bool) {
	if len(s) != idLen {
		return uuid.UUID{}, false
	}
	return parseID(s)
}

// parseID decodes a UUID in its canonical form only: 36 bytes, dashes at
// 8, 13, 18 and 23, lower-case hex elsewhere. Upper-case hex is refused.
func parseID(s string) (id uuid.UUID, ok bool) {
	if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	for i, x := range idHex {
		hi, lo := hexValue[s[x]], hexValue[s[x+1]]
		if hi|lo > 0xf {
			return id, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}

// hexValue maps each byte to its value as a lower-case hex digit, or 0xff.
var hexValue = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// alphabet marks the bytes a token may contain: base64url and the dot.
var alphabet = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") {
		t[c] = true
	}
	return t
}()

// Plausible reports whether s has the length and alphabet of a token. It is
// the check to run before any store access; Parse does it too.
func Plausible(s string) bool {
	if len(s) != Len {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alphabet[s[i]] {
			return false
		}
	}
	return true
}
