package token

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"

	"github.com/google/uuid"
)

// Refresh tokens are "<session id>.<generation>.<family>.<secret>": the
// session id as in a session token, the generation in decimal (0 at
// sign-in, one more at each rotation), and two 32-byte random values in
// base64url: the family, drawn with the session's first refresh token and
// carried by every token rotated from it, and the token's own secret. The
// store keeps SHA-256 of the current and the previous secret and of the
// family, so a superseded token of any age is known for what it is (reuse,
// RFC 9700 §4.14.2), while a token made up around a session id, which is
// not secret, is merely unknown. Tokens issued before families are
// "<session id>.<generation>.<secret>" and still parse (Family zero).
// A refresh token never parses as a session token, nor a session token
// or a JWT as a refresh token.

// MaxGeneration bounds a refresh token's generation: a session refreshed
// every minute for its longest lifetime (400 days) stays far below it.
const MaxGeneration = 1<<31 - 1

const (
	// minRefreshLen is the length of the earlier form's token of generation 0.
	minRefreshLen = idLen + 1 + 1 + 1 + secretLen
	// maxRefreshLen is the length of a token with a family, of MaxGeneration.
	maxRefreshLen = idLen + 1 + 10 + 1 + secretLen + 1 + secretLen
)

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

// Refresh is a refresh token's parts.
type Refresh struct {
	ID         uuid.UUID
	Generation uint32
	// Family is the secret every token of the session's family carries;
	// zero in a token of the earlier form, which has none.
	Family Secret
	Secret Secret
}

// HasFamily reports whether the token carries a family: every one issued
// since families exist does.
func (r *Refresh) HasFamily() bool { return r.Family != Secret{} }

// String spells the refresh token.
func (r Refresh) String() string {
	buf := make([]byte, 0, maxRefreshLen)
	buf = append(buf, r.ID.String()...)
	buf = append(buf, '.')
	buf = strconv.AppendUint(buf, uint64(r.Generation), 10)
	buf = append(buf, '.')
	if r.HasFamily() {
		buf = base64.RawURLEncoding.AppendEncode(buf, r.Family[:])
		buf = append(buf, '.')
	}
	buf = base64.RawURLEncoding.AppendEncode(buf, r.Secret[:])
	return string(buf)
}

// ParseRefresh splits a refresh token of either form; anything else is
// ErrMalformed.
func ParseRefresh(tok string) (Refresh, error) {
	var r Refresh
	if len(tok) < minRefreshLen || len(tok) > maxRefreshLen || tok[idLen] != '.' {
		return Refresh{}, ErrMalformed
	}
	var ok bool
	if r.ID, ok = parseID(tok[:idLen]); !ok {
		return Refresh{}, ErrMalformed
	}
	rest := tok[idLen+1:]
	dot := len(rest) - secretLen - 1
	if rest[dot] != '.' || !decodeSecret(rest[dot+1:], &r.Secret) {
		return Refresh{}, ErrMalformed
	}
	digits := rest[:dot]
	if fam := len(digits) - secretLen - 1; fam > 0 && digits[fam] == '.' {
		// The zero family is the earlier form's: one spelling per token.
		if !decodeSecret(digits[fam+1:], &r.Family) || !r.HasFamily() {
			return Refresh{}, ErrMalformed
		}
		digits = digits[:fam]
	}
	if len(digits) > 1 && digits[0] == '0' { // one spelling per generation
		return Refresh{}, ErrMalformed
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || n > MaxGeneration {
		return Refresh{}, ErrMalformed
	}
	r.Generation = uint32(n)
	return r, nil
}

// decodeSecret decodes a secret's secretLen characters into s, refusing
// any other spelling of it.
func decodeSecret(text string, s *Secret) bool {
	if len(text) != secretLen {
		return false
	}
	var src [secretLen]byte // a stack copy: no allocation
	copy(src[:], text)
	var raw [SecretBytes + 2]byte
	if m, err := strictEncoding.Decode(raw[:], src[:]); err != nil || m != SecretBytes {
		return false
	}
	copy(s[:], raw[:SecretBytes])
	return true
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
