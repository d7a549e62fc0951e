package sessiontest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/sessionkit/sessionkit"
)

// Issuer is the access tokens' issuer of AccessTokens.
const Issuer = "https://api.example.test"

// AccessTokens turns on bearer sessions (sessionkit.WithAccessTokens) with
// o, signed by a fresh Ed25519 key for tb, and Issuer when o names none.
func AccessTokens(tb testing.TB, o sessionkit.AccessTokenOptions) sessionkit.Option {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	o.SigningKeys = []crypto.Signer{key}
	if o.Issuer == "" {
		o.Issuer = Issuer
	}
	return sessionkit.WithAccessTokens(o)
}
