package accesstoken

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// headerType is the "typ" of an access token (RFC 9068 §2.1).
const headerType = "at+jwt"

// idBytes is the number of random bytes in a generated "jti".
const idBytes = 16

// Mint signs an access token for c with the set's first key. The header
// carries "alg", "kid" and "typ": "at+jwt". Issuer, Subject, SessionID and
// ExpiresAt are required; an empty ID gets 16 random bytes (base64url) and
// a zero IssuedAt the current time. Times are truncated to whole seconds,
// and ExpiresAt must then be after IssuedAt.
func (k *KeySet) Mint(c Claims) (string, error) {
	if k == nil || k.signer == nil {
		return "", errors.New("accesstoken: mint: no key set")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	switch {
	case c.Issuer == "":
		return "", errors.New("accesstoken: mint: empty Issuer")
	case c.Subject == "":
		return "", errors.New("accesstoken: mint: empty Subject")
	case c.SessionID == uuid.Nil:
		return "", errors.New("accesstoken: mint: nil SessionID")
	case c.ExpiresAt.Unix() <= c.IssuedAt.Unix():
		return "", errors.New("accesstoken: mint: ExpiresAt not after IssuedAt")
	}
	if c.ID == "" {
		var b [idBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("accesstoken: mint: %w", err)
		}
		c.ID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	w := wireClaims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  c.Audience,
		SessionID: c.SessionID.String(),
		ClientID:  c.ClientID,
		ID:        c.ID,
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		Expiry:    jwt.NewNumericDate(c.ExpiresAt),
		ACR:       c.ACR,
		Family:    c.Family,
	}
	if !c.AuthTime.IsZero() {
		w.AuthTime = jwt.NewNumericDate(c.AuthTime)
	}
	if c.Actor != "" {
		w.Actor = &actor{Subject: c.Actor}
	}
	tok, err := jwt.Signed(k.signer).Claims(w).Serialize()
	if err != nil {
		return "", fmt.Errorf("accesstoken: mint: %w", err)
	}
	if len(tok) > MaxLen {
		return "", fmt.Errorf("accesstoken: mint: token of %d bytes exceeds MaxLen", len(tok))
	}
	return tok, nil
}
