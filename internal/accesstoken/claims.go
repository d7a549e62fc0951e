package accesstoken

import (
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// Claims are the claims of an access token (RFC 9068 §2.2). Times travel
// as whole seconds.
type Claims struct {
	// Issuer ("iss") names the app that minted the token. Required.
	Issuer string
	// Subject ("sub") is the user id. Required.
	Subject string
	// Audience ("aud") lists the resource servers the token is meant for.
	// Optional here; VerifyOptions.Audience makes it required.
	Audience []string
	// SessionID ("sid") is the session the token was minted for. Required.
	SessionID uuid.UUID
	// ClientID ("client_id") names the client the token was minted for.
	// Optional.
	ClientID string
	// ID ("jti") is unique per token. Mint fills an empty one with 16
	// random bytes, base64url. Name a token by its ID, not its bytes: an
	// ES256 signature has a second valid encoding (s and n-s).
	ID string
	// IssuedAt ("iat"). Mint fills a zero one with the current time.
	IssuedAt time.Time
	// ExpiresAt ("exp"): the token is refused from this instant on. Required.
	ExpiresAt time.Time
	// AuthTime ("auth_time", RFC 9068 §2.2.1) is when the user's credentials
	// were last checked for the session; ACR ("acr") the assurance level
	// then. Optional: a resource server that requires recent or stronger
	// authentication compares them, not the session's current values.
	AuthTime time.Time
	ACR      string
	// Actor ("act", RFC 8693 §4.1: {"sub": Actor}) names who acts as the
	// subject: the operator of a support session. Optional.
	Actor string
	// Family ("sk_fam") names the credentials the token was minted under,
	// opaque to other services: the app that minted it refuses it once the
	// session's credentials are replaced. Optional.
	Family string
}

// wireClaims is the JSON payload of a token.
type wireClaims struct {
	Issuer    string           `json:"iss,omitempty"`
	Subject   string           `json:"sub,omitempty"`
	Audience  jwt.Audience     `json:"aud,omitempty"`
	SessionID string           `json:"sid,omitempty"`
	ClientID  string           `json:"client_id,omitempty"`
	ID        string           `json:"jti,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	Expiry    *jwt.NumericDate `json:"exp,omitempty"`
	AuthTime  *jwt.NumericDate `json:"auth_time,omitempty"`
	ACR       string           `json:"acr,omitempty"`
	Actor     *actor           `json:"act,omitempty"`
	Family    string           `json:"sk_fam,omitempty"`
}

// actor is the "act" claim (RFC 8693 §4.1).
type actor struct {
	Subject string `json:"sub"`
}

// verified is what Verify learns from a token and what the cache keeps.
type verified struct {
	claims    Claims
	notBefore time.Time // zero when the token has no "nbf"
}

// fromWire checks that the required claims are present and well formed.
// The token's signature has been checked; the times and the issuer are
// checked against the caller's options by check.
func fromWire(w *wireClaims) (verified, error) {
	switch {
	case w.Expiry == nil:
		return verified{}, errNoExp
	case w.IssuedAt == nil:
		return verified{}, invalid(`missing "iat"`)
	case w.Issuer == "":
		return verified{}, invalid(`missing "iss"`)
	case w.Subject == "":
		return verified{}, invalid(`missing "sub"`)
	case w.ID == "":
		return verified{}, invalid(`missing "jti"`)
	}
	// Only the canonical form: the one Mint writes.
	sid, err := uuid.Parse(w.SessionID)
	if err != nil || len(w.SessionID) != 36 || sid == uuid.Nil {
		return verified{}, invalid(`"sid" is not a session id`)
	}
	v := verified{claims: Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  w.Audience,
		SessionID: sid,
		ClientID:  w.ClientID,
		ID:        w.ID,
		IssuedAt:  w.IssuedAt.Time(),
		ExpiresAt: w.Expiry.Time(),
		ACR:       w.ACR,
		Family:    w.Family,
	}}
	if w.Actor != nil {
		v.claims.Actor = w.Actor.Subject
	}
	if w.AuthTime != nil {
		v.claims.AuthTime = w.AuthTime.Time()
	}
	if w.NotBefore != nil {
		v.notBefore = w.NotBefore.Time()
	}
	return v, nil
}

// check tests the verified claims against the clock and the options. It runs
// on every Verify, cached or not, and does not allocate unless it refuses.
func (v *verified) check(o *VerifyOptions) error {
	c, now := &v.claims, o.Now
	if c.Issuer != o.Issuer {
		return errIssuer
	}
	if o.Audience != "" && !jwt.Audience(c.Audience).Contains(o.Audience) && (len(c.Audience) > 0 || !o.AllowNoAudience) {
		return errAudience
	}
	if !now.Before(c.ExpiresAt.Add(o.Leeway)) {
		return ErrExpired
	}
	late := now.Add(o.Leeway + o.Skew)
	if c.IssuedAt.After(late) {
		return errIssuedFuture
	}
	if !v.notBefore.IsZero() && v.notBefore.After(late) {
		return errNotYet
	}
	return nil
}

// clone returns c with its own Audience, so a caller that edits the slice
// cannot change what the cache holds.
func (c *Claims) clone() Claims {
	out := *c
	if c.Audience != nil {
		out.Audience = slices.Clone(c.Audience)
	}
	return out
}
