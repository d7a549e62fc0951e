package accesstoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

const testIssuer = "https://app.example"

// testNow is the clock of the tests: a whole second, as tokens carry.
var testNow = time.Unix(1_800_000_000, 0)

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeySet(t testing.TB, keys ...crypto.Signer) *KeySet {
	t.Helper()
	ks, err := NewKeySet(keys...)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	return ks
}

// kidOf computes a key's RFC 7638 thumbprint the way a client would.
func kidOf(t testing.TB, s crypto.Signer) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: s.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// testClaims are valid claims at testNow.
func testClaims() Claims {
	return Claims{
		Issuer:    testIssuer,
		Subject:   "user-42",
		SessionID: uuid.New(),
		IssuedAt:  testNow,
		ExpiresAt: testNow.Add(5 * time.Minute),
	}
}

func testOpts() VerifyOptions {
	return VerifyOptions{Issuer: testIssuer, Now: testNow}
}

func mint(t testing.TB, ks *KeySet, c Claims) string {
	t.Helper()
	tok, err := ks.Mint(c)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

// The attacker's tools: tokens built byte by byte, signed however the
// attacker likes.

var b64 = base64.RawURLEncoding

// validPayload is a payload that passes every claim check at testNow.
func validPayload() map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": "user-42",
		"sid": uuid.NewString(),
		"jti": "abcdefghijklmnopqrstuv",
		"iat": testNow.Unix(),
		"exp": testNow.Add(5 * time.Minute).Unix(),
	}
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// craft assembles header.payload.signature from raw JSON texts.
func craft(header, payload string, sign func(input []byte) []byte) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

func signEd(k ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k, in) }
}

// signES256 signs as JWS does: r||s, 32 bytes each.
func signES256(t testing.TB, k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func signHS256(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// signHS512 gives a 64-byte MAC: the same length as an EdDSA or ES256
// signature, so the token passes the shape checks and meets the alg pin.
func signHS512(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha512.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// fakeSig is 64 random bytes: enough to pass the shape checks.
func fakeSig([]byte) []byte {
	b := make([]byte, 64)
	rand.Read(b)
	return b
}

func noSig([]byte) []byte { return nil }

// parts splits a token for tampering.
func parts(t testing.TB, tok string) []string {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d parts, want 3", len(p))
	}
	return p
}

// decodeJSON decodes one base64url JSON part into a map.
func decodeJSON(t testing.TB, part string) map[string]any {
	t.Helper()
	raw, err := b64.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
