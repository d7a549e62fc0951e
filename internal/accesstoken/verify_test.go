package accesstoken

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

// fixture is a key set with an Ed25519 signing key, a second Ed25519 key
// and a P-256 key, plus an attacker's keys that are in no set.
type fixture struct {
	ks                  *KeySet
	ed, ed2             []byte // ed25519.PrivateKey
	edKid, ed2Kid       string
	ecKid               string
	hdr                 func(alg, kid string) string
	sign, signEC        func([]byte) []byte
	signEd2             func([]byte) []byte
	attackerEd, attEC   func([]byte) []byte
	attackerKid         string
	edPub, ecPEM, jwks  []byte
	valid, validPayload string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ed, ed2, ec := newEd25519(t), newEd25519(t), newP256(t)
	att, attEC := newEd25519(t), newP256(t)
	ks := newKeySet(t, ed, ed2, ec)
	ecDER, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		ks: ks, ed: ed, ed2: ed2,
		edKid: kidOf(t, ed), ed2Kid: kidOf(t, ed2), ecKid: kidOf(t, ec),
		hdr: func(alg, kid string) string {
			return `{"alg":"` + alg + `","kid":"` + kid + `","typ":"at+jwt"}`
		},
		sign: signEd(ed), signEC: signES256(t, ec), signEd2: signEd(ed2),
		attackerEd: signEd(att), attEC: signES256(t, attEC), attackerKid: kidOf(t, att),
		edPub: []byte(ed.Public().(ed25519.PublicKey)),
		ecPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}),
		jwks:  ks.JWKS(),
	}
	f.validPayload = jsonOf(t, validPayload())
	f.valid = craft(f.hdr("EdDSA", f.edKid), f.validPayload, f.sign)
	if _, err := ks.Verify(f.valid, testOpts()); err != nil {
		t.Fatalf("baseline token: got %v, want it to verify", err)
	}
	return f
}

// payloadWith returns a valid payload with edits applied (nil deletes).
func payloadWith(t *testing.T, edits map[string]any) string {
	p := validPayload()
	for k, v := range edits {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return jsonOf(t, p)
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	hdr, pay := f.hdr("EdDSA", f.edKid), f.validPayload
	edit := func(edits map[string]any) string { return payloadWith(t, edits) }
	vp := parts(t, f.valid)
	flip := func(s string, i int) string { // change one base64 char, keeping it canonical
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'Q'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	huge := edit(map[string]any{"pad": strings.Repeat("x", MaxLen)})

	tests := []struct {
		name    string
		want    string // in the error: the check that refused it
		token   string
		opts    *VerifyOptions // nil: testOpts()
		expired bool
	}{
		// Shape, before anything is decoded.
		{name: "empty", want: "not three base64url parts", token: ""},
		{name: "oversized but validly signed", want: "longer than 4096 bytes", token: craft(hdr, huge, f.sign)},
		{name: "garbage", want: "not three base64url parts", token: "not a token"},
		{name: "one part", want: "not three base64url parts", token: vp[0]},
		{name: "two parts", want: "not three base64url parts", token: vp[0] + "." + vp[1]},
		{name: "four parts", want: "not three base64url parts", token: f.valid + "." + vp[2]},
		{name: "empty header part", want: "not three base64url parts", token: "." + vp[1] + "." + vp[2]},
		{name: "empty payload part", want: "not three base64url parts", token: vp[0] + ".." + vp[2]},
		{name: "truncated signature", want: "signature part of the wrong length", token: f.valid[:len(f.valid)-10]},
		{name: "truncated to the header", want: "not three base64url parts", token: f.valid[:len(vp[0])+5]},
		{name: "padded base64", want: "not three base64url parts", token: f.valid + "=="},
		{name: "standard base64 alphabet", want: "not three base64url parts", token: strings.Replace(f.valid, "-", "+", 1) + "+/"},
		{name: "non-canonical trailing bits", want: "not three base64url parts", token: f.valid[:len(f.valid)-1] + string(f.valid[len(f.valid)-1]+1)},
		{name: "whitespace inside", want: "not three base64url parts", token: vp[0] + ".\n" + vp[1] + "." + vp[2]},
		{name: "JWS JSON serialization", want: "not three base64url parts", token: `{"payload":"` + vp[1] + `","protected":"` + vp[0] + `","signature":"` + vp[2] + `"}`},

		// Algorithm.
		{name: "alg none, empty signature", want: "not three base64url parts", token: craft(f.hdr("none", f.edKid), pay, noSig)},
		{name: "alg none, 64-byte signature", want: `"alg" "none" is not the algorithm`, token: craft(f.hdr("none", f.edKid), pay, fakeSig)},
		{name: "alg None", want: `"alg" "None" is not the algorithm`, token: craft(f.hdr("None", f.edKid), pay, fakeSig)},
		{name: "HS256 keyed with the Ed25519 public key", want: `"alg" "HS256" is not the algorithm`, token: craft(f.hdr("HS256", f.edKid), pay, signHS256(f.edPub))},
		{name: "HS256 keyed with the P-256 PEM", want: `"alg" "HS256" is not the algorithm`, token: craft(f.hdr("HS256", f.ecKid), pay, signHS256(f.ecPEM))},
		{name: "HS256 keyed with the JWKS", want: `"alg" "HS256" is not the algorithm`, token: craft(f.hdr("HS256", f.edKid), pay, signHS256(f.jwks))},
		{name: "HS512 keyed with the Ed25519 public key", want: `"alg" "HS512" is not the algorithm`, token: craft(f.hdr("HS512", f.edKid), pay, signHS512(f.edPub))},
		{name: "HS512 keyed with the P-256 PEM", want: `"alg" "HS512" is not the algorithm`, token: craft(f.hdr("HS512", f.ecKid), pay, signHS512(f.ecPEM))},
		{name: "RS256", want: `"alg" "RS256" is not the algorithm`, token: craft(f.hdr("RS256", f.edKid), pay, fakeSig)},
		{name: "PS256", want: `"alg" "PS256" is not the algorithm`, token: craft(f.hdr("PS256", f.edKid), pay, fakeSig)},
		{name: "ES384", want: `"alg" "ES384" is not the algorithm`, token: craft(f.hdr("ES384", f.ecKid), pay, fakeSig)},
		{name: "Ed25519 as alg name", want: `"alg" "Ed25519" is not the algorithm`, token: craft(f.hdr("Ed25519", f.edKid), pay, f.sign)},
		{name: "lower-case eddsa", want: `"alg" "eddsa" is not the algorithm`, token: craft(f.hdr("eddsa", f.edKid), pay, f.sign)},
		{name: "ES256 header with an Ed25519 kid", want: `"alg" "ES256" is not the algorithm`, token: craft(f.hdr("ES256", f.edKid), pay, f.attEC)},
		{name: "ES256 header with an Ed25519 kid, signed by the ES256 key", want: `"alg" "ES256" is not the algorithm`, token: craft(f.hdr("ES256", f.edKid), pay, f.signEC)},
		{name: "EdDSA header with the ES256 kid", want: `"alg" "EdDSA" is not the algorithm`, token: craft(f.hdr("EdDSA", f.ecKid), pay, f.sign)},

		// Key selection.
		{name: "swapped kid, same algorithm", want: "bad signature", token: craft(f.hdr("EdDSA", f.ed2Kid), pay, f.sign)},
		{name: "kid swapped after signing", want: "bad signature", token: b64.EncodeToString([]byte(f.hdr("EdDSA", f.ed2Kid))) + "." + vp[1] + "." + vp[2]},
		{name: "unknown key with its own kid", want: `unknown "kid"`, token: craft(f.hdr("EdDSA", f.attackerKid), pay, f.attackerEd)},
		{name: "unknown key with our kid", want: "bad signature", token: craft(hdr, pay, f.attackerEd)},
		{name: "unknown ES256 key with our kid", want: "bad signature", token: craft(f.hdr("ES256", f.ecKid), pay, f.attEC)},
		{name: "missing kid", want: `header has no "kid"`, token: craft(`{"alg":"EdDSA","typ":"at+jwt"}`, pay, f.sign)},
		{name: "empty kid", want: `header parameter "kid" is empty`, token: craft(f.hdr("EdDSA", ""), pay, f.sign)},
		{name: "numeric kid", want: `header parameter "kid" is not a string`, token: craft(`{"alg":"EdDSA","kid":1,"typ":"at+jwt"}`, pay, f.sign)},
		{name: "embedded jwk of the attacker", want: `header parameter "jwk" not allowed`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+b64.EncodeToString(f.edPub)+`"}}`, pay, f.sign)},
		{name: "jku", want: `header parameter "jku" not allowed`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","jku":"https://evil.example/jwks"}`, pay, f.sign)},
		{name: "x5u", want: `header parameter "x5u" not allowed`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","x5u":"https://evil.example/cert"}`, pay, f.sign)},
		{name: "x5c", want: `header parameter "x5c" not allowed`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","x5c":["MIIB"]}`, pay, f.sign)},

		// Other header parameters.
		{name: "crit", want: `header parameter "crit" not allowed`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","crit":["exp"],"exp":1}`, pay, f.sign)},
		{name: "b64 false with crit", want: `header parameter "b64" not allowed`, token: craft(`{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":"`+f.edKid+`","typ":"at+jwt"}`, pay, f.sign)},
		{name: "duplicate alg, none last", want: `header parameter "alg" repeated`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","alg":"none"}`, pay, f.sign)},
		{name: "duplicate alg, same value", want: `header parameter "alg" repeated`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt","alg":"EdDSA"}`, pay, f.sign)},
		{name: "duplicate kid", want: `header parameter "kid" repeated`, token: craft(`{"alg":"EdDSA","kid":"`+f.attackerKid+`","typ":"at+jwt","kid":"`+f.edKid+`"}`, pay, f.sign)},
		{name: "header not JSON", want: "header is not a JSON object", token: craft(`not json`, pay, f.sign)},
		{name: "header a JSON array", want: "header is not a JSON object", token: craft(`["EdDSA"]`, pay, f.sign)},
		{name: "header with trailing data", want: "data after the header object", token: craft(hdr+`{}`, pay, f.sign)},
		{name: "header truncated JSON", want: "header is not a JSON object", token: craft(hdr[:len(hdr)-1], pay, f.sign)},
		{name: "typ missing", want: `"typ" "" is not "at+jwt"`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`"}`, pay, f.sign)},
		{name: "typ JWT", want: `"typ" "JWT" is not "at+jwt"`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"JWT"}`, pay, f.sign)},
		{name: "typ with a trailing space", want: `"typ" "at+jwt " is not "at+jwt"`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"at+jwt "}`, pay, f.sign)},
		{name: "typ application/jwt", want: `"typ" "application/jwt" is not "at+jwt"`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"application/jwt"}`, pay, f.sign)},
		{name: "typ as an array", want: `header parameter "typ" is not a string`, token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":["at+jwt"]}`, pay, f.sign)},

		// Signature.
		{name: "tampered payload", want: "bad signature", token: vp[0] + "." + b64.EncodeToString([]byte(edit(map[string]any{"sub": "admin"}))) + "." + vp[2]},
		{name: "tampered signature", want: "bad signature", token: vp[0] + "." + vp[1] + "." + flip(vp[2], 10)},
		{name: "tampered header", want: "bad signature", token: b64.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"AT+JWT"}`)) + "." + vp[1] + "." + vp[2]},

		// Payload.
		{name: "payload not JSON", want: "payload: ", token: craft(hdr, `garbage`, f.sign)},
		{name: "payload a JSON array", want: "payload: ", token: craft(hdr, `[1,2]`, f.sign)},
		{name: "payload null", want: `missing "exp"`, token: craft(hdr, `null`, f.sign)},
		{name: "payload with duplicate exp", want: "duplicate key", token: craft(hdr, `{"iss":"`+testIssuer+`","sub":"u","sid":"`+"6ba7b810-9dad-11d1-80b4-00c04fd430c8"+`","jti":"j","iat":1800000000,"exp":1700000000,"exp":1900000000}`, f.sign)},
		{name: "exp a string", want: "NumericDate", token: craft(hdr, edit(map[string]any{"exp": "tomorrow"}), f.sign)},
		{name: "exp absurdly far", want: "NumericDate", token: craft(hdr, edit(map[string]any{"exp": 1e300}), f.sign)},
		{name: "sub a number", want: "payload: ", token: craft(hdr, edit(map[string]any{"sub": 42}), f.sign)},

		// Claims.
		{name: "exp missing", want: `missing "exp"`, token: craft(hdr, edit(map[string]any{"exp": nil}), f.sign)},
		{name: "exp past", want: "expired", token: craft(hdr, edit(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), f.sign), expired: true},
		{name: "exp now", want: "expired", token: craft(hdr, edit(map[string]any{"exp": testNow.Unix()}), f.sign), expired: true},
		{name: "exp past beyond leeway", want: "expired", token: craft(hdr, edit(map[string]any{"exp": testNow.Add(-time.Minute).Unix()}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Now: testNow, Leeway: 30 * time.Second}, expired: true},
		{name: "nbf future", want: `"nbf" in the future`, token: craft(hdr, edit(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), f.sign)},
		{name: "nbf future beyond leeway", want: `"nbf" in the future`, token: craft(hdr, edit(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Now: testNow, Leeway: 30 * time.Second}},
		{name: "iat future", want: `"iat" in the future`, token: craft(hdr, edit(map[string]any{"iat": testNow.Add(time.Second).Unix()}), f.sign)},
		{name: "iat future beyond skew", want: `"iat" in the future`, token: craft(hdr, edit(map[string]any{"iat": testNow.Add(time.Minute).Unix()}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Now: testNow, Skew: 30 * time.Second}},
		{name: "exp past within skew", want: "expired", token: craft(hdr, edit(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Now: testNow, Skew: 30 * time.Second}, expired: true},
		{name: "iat missing", want: `missing "iat"`, token: craft(hdr, edit(map[string]any{"iat": nil}), f.sign)},
		{name: "iss wrong", want: `wrong "iss"`, token: craft(hdr, edit(map[string]any{"iss": "https://evil.example"}), f.sign)},
		{name: "iss differs in case", want: `wrong "iss"`, token: craft(hdr, edit(map[string]any{"iss": strings.ToUpper(testIssuer)}), f.sign)},
		{name: "iss missing", want: `missing "iss"`, token: craft(hdr, edit(map[string]any{"iss": nil}), f.sign)},
		{name: "sub missing", want: `missing "sub"`, token: craft(hdr, edit(map[string]any{"sub": nil}), f.sign)},
		{name: "sub empty", want: `missing "sub"`, token: craft(hdr, edit(map[string]any{"sub": ""}), f.sign)},
		{name: "sid missing", want: `"sid" is not a session id`, token: craft(hdr, edit(map[string]any{"sid": nil}), f.sign)},
		{name: "sid not a UUID", want: `"sid" is not a session id`, token: craft(hdr, edit(map[string]any{"sid": "session-1"}), f.sign)},
		{name: "sid a URN", want: `"sid" is not a session id`, token: craft(hdr, edit(map[string]any{"sid": "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8"}), f.sign)},
		{name: "sid without dashes", want: `"sid" is not a session id`, token: craft(hdr, edit(map[string]any{"sid": "6ba7b8109dad11d180b400c04fd430c8"}), f.sign)},
		{name: "sid nil UUID", want: `"sid" is not a session id`, token: craft(hdr, edit(map[string]any{"sid": "00000000-0000-0000-0000-000000000000"}), f.sign)},
		{name: "jti missing", want: `missing "jti"`, token: craft(hdr, edit(map[string]any{"jti": nil}), f.sign)},
		{name: "aud missing when asked", want: `"aud" does not name this audience`, token: f.valid,
			opts: &VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", Now: testNow}},
		{name: "aud wrong", want: `"aud" does not name this audience`, token: craft(hdr, edit(map[string]any{"aud": []string{"https://other.example"}}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", Now: testNow}},
		{name: "aud wrong though none is allowed", want: `"aud" does not name this audience`, token: craft(hdr, edit(map[string]any{"aud": "https://other.example"}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", AllowNoAudience: true, Now: testNow}},

		// Options.
		{name: "no issuer configured", want: "VerifyOptions.Issuer is empty", token: f.valid, opts: &VerifyOptions{Now: testNow}},
		{name: "no issuer configured, token without iss", want: "VerifyOptions.Issuer is empty", token: craft(hdr, edit(map[string]any{"iss": nil}), f.sign), opts: &VerifyOptions{Now: testNow}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOpts()
			if tt.opts != nil {
				opts = *tt.opts
			}
			c, err := f.ks.Verify(tt.token, opts)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got claims %+v, error %v; want an error wrapping ErrInvalid", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to say %q", err, tt.want)
			}
			if got := errors.Is(err, ErrExpired); got != tt.expired {
				t.Errorf("errors.Is(%v, ErrExpired): got %v, want %v", err, got, tt.expired)
			}
			if c.Subject != "" || c.SessionID != [16]byte{} {
				t.Errorf("got claims %+v with the error, want none", c)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	ec := newP256(t)
	ecFirst := newKeySet(t, ec, newEd25519(t))
	hdr := f.hdr("EdDSA", f.edKid)
	edit := func(edits map[string]any) string { return payloadWith(t, edits) }
	leeway := VerifyOptions{Issuer: testIssuer, Now: testNow, Leeway: 30 * time.Second}
	skew := VerifyOptions{Issuer: testIssuer, Now: testNow, Skew: 30 * time.Second}

	tests := []struct {
		name  string
		ks    *KeySet
		token string
		opts  *VerifyOptions
	}{
		{name: "minted EdDSA", token: mint(t, f.ks, testClaims())},
		{name: "minted ES256", ks: ecFirst, token: mint(t, ecFirst, testClaims())},
		{name: "crafted ES256 with the set's P-256 key", token: craft(f.hdr("ES256", f.ecKid), f.validPayload, f.signEC)},
		{name: "signed by the second Ed25519 key", token: craft(f.hdr("EdDSA", f.ed2Kid), f.validPayload, f.signEd2)},
		{name: "typ upper case", token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"AT+JWT"}`, f.validPayload, f.sign)},
		{name: "typ application/at+jwt", token: craft(`{"alg":"EdDSA","kid":"`+f.edKid+`","typ":"application/at+jwt"}`, f.validPayload, f.sign)},
		{name: "header parameters in another order", token: craft(`{"typ":"at+jwt","kid":"`+f.edKid+`","alg":"EdDSA"}`, f.validPayload, f.sign)},
		{name: "exp one second ahead", token: craft(hdr, edit(map[string]any{"exp": testNow.Add(time.Second).Unix()}), f.sign)},
		{name: "exp past within leeway", token: craft(hdr, edit(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()}), f.sign), opts: &leeway},
		{name: "nbf now", token: craft(hdr, edit(map[string]any{"nbf": testNow.Unix()}), f.sign)},
		{name: "nbf future within leeway", token: craft(hdr, edit(map[string]any{"nbf": testNow.Add(10 * time.Second).Unix()}), f.sign), opts: &leeway},
		{name: "iat future within leeway", token: craft(hdr, edit(map[string]any{"iat": testNow.Add(10 * time.Second).Unix()}), f.sign), opts: &leeway},
		{name: "iat future within skew", token: craft(hdr, edit(map[string]any{"iat": testNow.Add(10 * time.Second).Unix()}), f.sign), opts: &skew},
		{name: "nbf future within skew", token: craft(hdr, edit(map[string]any{"nbf": testNow.Add(10 * time.Second).Unix()}), f.sign), opts: &skew},
		{name: "aud as a string", token: craft(hdr, edit(map[string]any{"aud": "https://api.example"}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", Now: testNow}},
		{name: "aud as a list", token: craft(hdr, edit(map[string]any{"aud": []string{"x", "https://api.example"}}), f.sign),
			opts: &VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", Now: testNow}},
		{name: "no aud when none is allowed", token: f.valid,
			opts: &VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", AllowNoAudience: true, Now: testNow}},
		{name: "unknown claims are ignored", token: craft(hdr, edit(map[string]any{"scope": "read", "client_id": "ios"}), f.sign)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, opts := f.ks, testOpts()
			if tt.ks != nil {
				ks = tt.ks
			}
			if tt.opts != nil {
				opts = *tt.opts
			}
			c, err := ks.Verify(tt.token, opts)
			if err != nil {
				t.Fatalf("got %v, want the token to verify", err)
			}
			if c.Subject != "user-42" || c.Issuer != testIssuer {
				t.Errorf("got sub %q iss %q, want %q %q", c.Subject, c.Issuer, "user-42", testIssuer)
			}
		})
	}
}

func TestVerifyNilKeySet(t *testing.T) {
	var ks *KeySet
	if _, err := ks.Verify("a.b.c", testOpts()); err == nil {
		t.Fatal("got nil error from a nil KeySet, want an error")
	}
}

// TestVerifyDefaultNow checks that a zero Now means the real clock.
func TestVerifyDefaultNow(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	c := testClaims()
	c.IssuedAt, c.ExpiresAt = time.Time{}, time.Now().Add(time.Minute)
	if _, err := ks.Verify(mint(t, ks, c), VerifyOptions{Issuer: testIssuer}); err != nil {
		t.Errorf("fresh token at the real time: got %v, want nil", err)
	}
	c.IssuedAt, c.ExpiresAt = time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)
	if _, err := ks.Verify(mint(t, ks, c), VerifyOptions{Issuer: testIssuer}); !errors.Is(err, ErrExpired) {
		t.Errorf("old token at the real time: got %v, want ErrExpired", err)
	}
}
