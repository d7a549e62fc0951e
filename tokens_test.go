package sessionkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWithAccessTokensValidates(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := AccessTokenOptions{SigningKeys: []crypto.Signer{ed, ec}, Issuer: "https://api.example.test"}
	if _, err := New(nopStore{}, WithAccessTokens(good)); err != nil {
		t.Fatalf("Ed25519 and P-256 keys: %v", err)
	}
	for name, change := range map[string]func(*AccessTokenOptions){
		"no issuer":                  func(o *AccessTokenOptions) { o.Issuer = "" },
		"no keys":                    func(o *AccessTokenOptions) { o.SigningKeys = nil },
		"an RSA key":                 func(o *AccessTokenOptions) { o.SigningKeys = []crypto.Signer{rsaKey} },
		"a P-384 key":                func(o *AccessTokenOptions) { o.SigningKeys = []crypto.Signer{p384} },
		"a nil key":                  func(o *AccessTokenOptions) { o.SigningKeys = []crypto.Signer{nil} },
		"a key twice":                func(o *AccessTokenOptions) { o.SigningKeys = []crypto.Signer{ed, ed} },
		"a TTL of 1s":                func(o *AccessTokenOptions) { o.TTL = time.Second },
		"a TTL of 2h":                func(o *AccessTokenOptions) { o.TTL = 2 * time.Hour },
		"an hour's grace":            func(o *AccessTokenOptions) { o.RefreshGrace = time.Hour },
		"a long audience":            func(o *AccessTokenOptions) { o.Audience = strings.Repeat("a", 257) },
		"an audience with a newline": func(o *AccessTokenOptions) { o.Audience = "https://api\n.example" },
	} {
		o := good
		change(&o)
		if _, err := New(nopStore{}, WithAccessTokens(o)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	m, err := New(nopStore{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.RefreshSession(t.Context(), RefreshSession{RefreshToken: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("RefreshSession without access tokens: got %v, want ErrInvalid", err)
	}
	if _, err := m.JWKS(); !errors.Is(err, ErrInvalid) {
		t.Errorf("JWKS without access tokens: got %v, want ErrInvalid", err)
	}
}
