package accesstoken_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/sessionkit/sessionkit/internal/accesstoken"
)

func Example() {
	_, key, err := ed25519.GenerateKey(rand.Reader) // in production: loaded from a secret store
	if err != nil {
		panic(err)
	}
	keys, err := accesstoken.NewKeySet(key)
	if err != nil {
		panic(err)
	}

	now := time.Now()
	token, err := keys.Mint(accesstoken.Claims{
		Issuer:    "https://app.example",
		Subject:   "user-42",
		SessionID: uuid.New(),
		ClientID:  "ios-app",
		IssuedAt:  now,
		ExpiresAt: now.Add(5 * time.Minute),
	})
	if err != nil {
		panic(err)
	}

	claims, err := keys.Verify(token, accesstoken.VerifyOptions{Issuer: "https://app.example"})
	if err != nil {
		panic(err)
	}
	// The token is genuine and current; the session it names must still be
	// looked up (claims.SessionID, claims.Subject): it may have been revoked.
	fmt.Println(claims.Subject, claims.ClientID)

	_, err = keys.Verify(token, accesstoken.VerifyOptions{Issuer: "https://app.example", Now: now.Add(time.Hour)})
	fmt.Println(errors.Is(err, accesstoken.ErrExpired), errors.Is(err, accesstoken.ErrInvalid))
	// Output:
	// user-42 ios-app
	// true true
}

func ExampleKeySet_JWKS() {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	keys, err := accesstoken.NewKeySet(key)
	if err != nil {
		panic(err)
	}
	// Serve keys.JWKS() as application/json on a public route such as
	// /.well-known/jwks.json, so that other services can verify tokens.
	fmt.Println(len(keys.JWKS()) > 0)
	// Output: true
}
