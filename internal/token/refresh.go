package token

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"

	"github.com/google/uuid"
)

// Refresh tokens are "<session id>.<generation>.<secret>": the session id
// as in a session token, the generation in decimal (0 at sign-in, one more
// at each rotation), and 32 random bytes of secret in base64url. Only
// SHA-256 of the secret is stored. A refresh token never parses as a
// session token, nor a session token or a JWT as a refresh token.

// MaxGeneration bounds a refresh token's generation: a session refreshed
// every minute for its longest lifetime (400 days) stays far below it.
const MaxGeneration = 1<<31 - 1

// maxRefreshLen is the length of a refresh token of MaxGeneration.
const maxRefreshLen = idLen + 1 + 10 + 1 + secretLen

// Secret is a refresh token's random part.
type Secret [SecretBytes]byte

// Hash is SHA-256 of the secret: what the store keeps.
func (s Secret) Hash() Hash { return sha256.Sum256(s[:]) }

// NewSecret returns a fresh random secret.
func NewSecret() (Secret, error) {
	var s Secret
	_, err := rand.Read(s[:])
	return s, err
}

// FormatRefresh spells a refresh token.
func FormatRefresh(id uuid.UUID, gen uint32, s Secret) string {
	buf := make([]byte, 0, maxRefreshLen)
	buf = append(buf, id.String()...)
	buf = append(buf, '.')
	buf = strconv.AppendUint(buf, uint64(gen), 10)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, s[:])
	return string(buf)
}

// ParseRefresh splits a refresh token; anything else is ErrMalformed.
func ParseRefresh(tok string) (id uuid.UUID, gen uint32, s Secret, err error) {
	if len(tok) < idLen+1+1+1+secretLen || len(tok) > maxRefreshLen || tok[idLen] != '.' {
		return id, 0, s, ErrMalformed
	}
	var ok bool
	if id, ok = parseID(tok[:idLen]); !ok {
		return id, 0, s, ErrMalformed
	}
	rest := tok[idLen+1:]
	dot := len(rest) - secretLen - 1
	if rest[dot] != '.' {
		return id, 0, s, ErrMalformed
	}
	digits := rest[:dot]
	if len(digits) > 1 && digits[0] == '0' { // one spelling per generation
		return id, 0, s, ErrMalformed
	}
	n, perr := strconv.ParseUint(digits, 10, 32)
	if perr != nil || n > MaxGeneration {
		return id, 0, s, ErrMalformed
	}
	var src [secretLen]byte
	copy(src[:], rest[dot+1:])
	var raw [SecretBytes + 2]byte
	if m, derr := strictEncoding.Decode(raw[:], src[:]); derr != nil || m != SecretBytes {
		return id, 0, s, ErrMalformed
	}
	copy(s[:], raw[:SecretBytes])
	return id, uint32(n), s, nil
}

// Seal hides next, the secret that supersedes prev, so that only a holder
// of prev can recover it (Open): it is XORed with 32 bytes derived from
// prev by HKDF-SHA256. Each prev seals exactly one successor (a secret is
// superseded once), so the derived bytes are a one-time pad. The store
// keeps the sealed successor for the refresh grace window, so that a
// repeated refresh with prev (a retry, two tabs) gets the same current
// token back while nothing is kept that a Redis dump could turn into one.
func Seal(id uuid.UUID, prev, next Secret) (Secret, error) {
	pad, err := successorPad(id, prev)
	if err != nil {
		return Secret{}, err
	}
	for i := range next {
		next[i] ^= pad[i]
	}
	return next, nil
}

// Open recovers the successor of prev from its sealed form.
func Open(id uuid.UUID, prev, sealed Secret) (Secret, error) { return Seal(id, prev, sealed) }

func successorPad(id uuid.UUID, prev Secret) ([]byte, error) {
	return hkdf.Key(sha256.New, prev[:], id[:], "sessionkit/refresh-successor/v1", SecretBytes)
}
