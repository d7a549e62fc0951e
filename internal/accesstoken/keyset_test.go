package accesstoken

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// opaqueSigner is a crypto.Signer of no known type, as an HSM handle is.
type opaqueSigner struct{ crypto.Signer }

func TestNewKeySetRefuses(t *testing.T) {
	ed, ec := newEd25519(t), newP256(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The seed of one key with the public half of another.
	mismatched := append(ed25519.PrivateKey{}, ed[:32]...)
	mismatched = append(mismatched, newEd25519(t)[32:]...)
	edCopy := append(ed25519.PrivateKey{}, ed...)

	tests := []struct {
		name string
		keys []crypto.Signer
	}{
		{"no key", nil},
		{"nil", []crypto.Signer{nil}},
		{"nil after a good key", []crypto.Signer{ed, nil}},
		{"nil *ecdsa.PrivateKey", []crypto.Signer{(*ecdsa.PrivateKey)(nil)}},
		{"empty ecdsa key", []crypto.Signer{&ecdsa.PrivateKey{}}},
		{"P-256 key without its parts", []crypto.Signer{&ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: elliptic.P256()}}}},
		{"RSA", []crypto.Signer{rsaKey}},
		{"RSA after a good key", []crypto.Signer{ed, rsaKey}},
		{"P-384", []crypto.Signer{p384}},
		{"short ed25519 key", []crypto.Signer{ed[:32]}},
		{"ed25519 halves that do not match", []crypto.Signer{mismatched}},
		{"opaque signer", []crypto.Signer{opaqueSigner{ed}}},
		{"duplicate ed25519", []crypto.Signer{ed, ec, edCopy}},
		{"duplicate ecdsa", []crypto.Signer{ec, ed, ec}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := NewKeySet(tt.keys...)
			if !errors.Is(err, ErrBadKey) {
				t.Errorf("got %v, %v; want an error wrapping ErrBadKey", ks, err)
			}
		})
	}
}

func TestNewKeySetKids(t *testing.T) {
	ed, ec := newEd25519(t), newP256(t)
	ks := newKeySet(t, ed, ec)
	want := []struct {
		kid string
		alg jose.SignatureAlgorithm
	}{{kidOf(t, ed), jose.EdDSA}, {kidOf(t, ec), jose.ES256}}
	for i, w := range want {
		if got := ks.keys[i]; got.kid != w.kid || got.alg != w.alg {
			t.Errorf("key %d: got kid %q alg %s, want %q %s", i, got.kid, got.alg, w.kid, w.alg)
		}
	}
	// The kid depends on the key alone.
	if again := newKeySet(t, ec, ed); again.keys[1].kid != ks.keys[0].kid {
		t.Errorf("kid of the same key in another set: got %q, want %q", again.keys[1].kid, ks.keys[0].kid)
	}
}

func TestJWKS(t *testing.T) {
	ed, ec := newEd25519(t), newP256(t)
	ks := newKeySet(t, ed, ec)
	raw := ks.JWKS()

	t.Run("no private material", func(t *testing.T) {
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Keys) != 2 {
			t.Fatalf("got %d keys, want 2", len(doc.Keys))
		}
		for i, k := range doc.Keys {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := k[private]; ok {
					t.Errorf("key %d: got member %q, want no private member", i, private)
				}
			}
			if k["use"] != "sig" {
				t.Errorf("key %d: got use %v, want sig", i, k["use"])
			}
		}
		wantShape := []map[string]any{
			{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA"},
			{"kty": "EC", "crv": "P-256", "alg": "ES256"},
		}
		for i, want := range wantShape {
			for name, v := range want {
				if doc.Keys[i][name] != v {
					t.Errorf("key %d: got %s %v, want %v", i, name, doc.Keys[i][name], v)
				}
			}
		}
		if _, ok := doc.Keys[1]["y"]; !ok {
			t.Error(`EC key: got no "y", want one`)
		}
	})

	t.Run("parses into public keys named by their thumbprints", func(t *testing.T) {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		wantKids := []string{kidOf(t, ed), kidOf(t, ec)}
		for i, k := range set.Keys {
			if !k.IsPublic() || !k.Valid() {
				t.Errorf("key %d: got public %v valid %v, want both", i, k.IsPublic(), k.Valid())
			}
			tp, err := k.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if got := b64.EncodeToString(tp); got != k.KeyID || got != wantKids[i] {
				t.Errorf("key %d: got thumbprint %q kid %q, want both %q", i, got, k.KeyID, wantKids[i])
			}
		}
	})

	t.Run("another verifier accepts our tokens with it", func(t *testing.T) {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseSigned(mint(t, ks, testClaims()), []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.Claims
		if err := tok.Claims(set, &c); err != nil {
			t.Fatalf("go-jose with the published set: got %v, want the token to verify", err)
		}
		if c.Subject != "user-42" {
			t.Errorf("got sub %q, want user-42", c.Subject)
		}
	})

	t.Run("returns a copy", func(t *testing.T) {
		b := ks.JWKS()
		b[0] = 'X'
		if !bytes.Equal(ks.JWKS(), raw) {
			t.Error("editing the returned bytes changed the next JWKS, want a fresh copy")
		}
	})
}

func TestRotation(t *testing.T) {
	oldKey, newKey := newEd25519(t), newP256(t)
	before := newKeySet(t, oldKey)
	during := newKeySet(t, newKey, oldKey)
	after := newKeySet(t, newKey)

	oldTok := mint(t, before, testClaims())
	newTok := mint(t, during, testClaims())
	if got, want := decodeJSON(t, parts(t, newTok)[0])["kid"], kidOf(t, newKey); got != want {
		t.Errorf("kid of a token minted during rotation: got %v, want the new key's %q", got, want)
	}
	if got, want := decodeJSON(t, parts(t, newTok)[0])["alg"], "ES256"; got != want {
		t.Errorf("alg of a token minted during rotation: got %v, want %q", got, want)
	}

	tests := []struct {
		name  string
		ks    *KeySet
		token string
		ok    bool
	}{
		{"old token, old set", before, oldTok, true},
		{"old token, during rotation", during, oldTok, true},
		{"old token, old key removed", after, oldTok, false},
		{"new token, old set", before, newTok, false},
		{"new token, during rotation", during, newTok, true},
		{"new token, old key removed", after, newTok, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ks.Verify(tt.token, testOpts())
			if (err == nil) != tt.ok {
				t.Errorf("got %v, want success %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}
