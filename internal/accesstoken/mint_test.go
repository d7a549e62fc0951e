package accesstoken

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestMintHeader(t *testing.T) {
	for _, tt := range []struct {
		name string
		alg  string
		ks   func(t *testing.T) (*KeySet, string)
	}{
		{"EdDSA", "EdDSA", func(t *testing.T) (*KeySet, string) {
			k := newEd25519(t)
			return newKeySet(t, k, newP256(t)), kidOf(t, k)
		}},
		{"ES256", "ES256", func(t *testing.T) (*KeySet, string) {
			k := newP256(t)
			return newKeySet(t, k, newEd25519(t)), kidOf(t, k)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ks, kid := tt.ks(t)
			h := decodeJSON(t, parts(t, mint(t, ks, testClaims()))[0])
			want := map[string]any{"alg": tt.alg, "kid": kid, "typ": "at+jwt"}
			if len(h) != len(want) {
				t.Errorf("got header %v, want exactly %v", h, want)
			}
			for k, v := range want {
				if h[k] != v {
					t.Errorf("header %s: got %v, want %v", k, h[k], v)
				}
			}
		})
	}
}

func TestMintRoundTrip(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	in := testClaims()
	in.Audience = []string{"https://api.example"}
	in.ClientID = "ios-app"
	in.Family = "3q2-7wABAgMEBQYH"
	in.ExpiresAt = in.ExpiresAt.Add(900 * time.Millisecond) // truncated to the second
	tok := mint(t, ks, in)

	p := decodeJSON(t, parts(t, tok)[1])
	for claim, want := range map[string]any{
		"iss": in.Issuer, "sub": in.Subject, "sid": in.SessionID.String(), "client_id": "ios-app",
		"sk_fam": in.Family, "aud": "https://api.example", "iat": float64(testNow.Unix()), "exp": float64(testNow.Add(5 * time.Minute).Unix()),
	} {
		if p[claim] != want {
			t.Errorf("claim %s: got %v, want %v", claim, p[claim], want)
		}
	}
	jti, _ := p["jti"].(string)
	if raw, err := b64.DecodeString(jti); err != nil || len(raw) != idBytes {
		t.Errorf("jti %q: got %d bytes (%v), want %d random bytes, base64url", jti, len(raw), err, idBytes)
	}

	got, err := ks.Verify(tok, VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", Now: testNow})
	if err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	want := in
	want.ID = jti
	want.ExpiresAt = testNow.Add(5 * time.Minute)
	if got.Issuer != want.Issuer || got.Subject != want.Subject || got.SessionID != want.SessionID ||
		got.ClientID != want.ClientID || got.ID != want.ID || got.Family != want.Family || !slices.Equal(got.Audience, want.Audience) ||
		!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("got claims %+v, want %+v", got, want)
	}
}

func TestMintID(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	seen := map[string]bool{}
	for range 100 {
		p := decodeJSON(t, parts(t, mint(t, ks, testClaims()))[1])
		jti := p["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %q minted twice, want each new", jti)
		}
		seen[jti] = true
	}
	c := testClaims()
	c.ID = "chosen-id"
	if got := decodeJSON(t, parts(t, mint(t, ks, c))[1])["jti"]; got != "chosen-id" {
		t.Errorf("jti: got %v, want the caller's chosen-id", got)
	}
}

func TestMintDefaultIssuedAt(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	c := testClaims()
	c.IssuedAt, c.ExpiresAt = time.Time{}, time.Now().Add(time.Minute)
	before := time.Now().Unix()
	iat := decodeJSON(t, parts(t, mint(t, ks, c))[1])["iat"].(float64)
	if int64(iat) < before || int64(iat) > time.Now().Unix() {
		t.Errorf("iat: got %v, want the current time %d", iat, before)
	}
}

func TestMintRefuses(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	tests := []struct {
		name string
		edit func(*Claims)
	}{
		{"empty Issuer", func(c *Claims) { c.Issuer = "" }},
		{"empty Subject", func(c *Claims) { c.Subject = "" }},
		{"nil SessionID", func(c *Claims) { c.SessionID = uuid.Nil }},
		{"zero ExpiresAt", func(c *Claims) { c.ExpiresAt = time.Time{} }},
		{"ExpiresAt before IssuedAt", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Second) }},
		{"ExpiresAt in the same second", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(500 * time.Millisecond) }},
		{"longer than MaxLen", func(c *Claims) { c.ClientID = string(make([]byte, MaxLen)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClaims()
			tt.edit(&c)
			if tok, err := ks.Mint(c); err == nil {
				t.Errorf("got token %q, want an error", tok)
			}
		})
	}
	var nilSet *KeySet
	if _, err := nilSet.Mint(testClaims()); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("nil KeySet: got %v, want an error", err)
	}
}
