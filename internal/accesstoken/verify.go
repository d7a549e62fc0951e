package accesstoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxLen is the longest token Verify reads. A token minted here is about
// 400 to 700 bytes; anything longer is refused before it is decoded.
const MaxLen = 4096

// sigLen is the length of the signature part: EdDSA and ES256 signatures
// are both 64 bytes, 86 characters of unpadded base64url.
const sigLen = 86

// VerifyOptions are what a token is checked against. The zero value of
// every field but Issuer means its default.
type VerifyOptions struct {
	// Issuer must equal the token's "iss". Required: Verify refuses every
	// token when it is empty.
	Issuer string
	// Audience, when set, must be one of the token's "aud" values.
	// Default: "aud" is not checked.
	Audience string
	// AllowNoAudience accepts a token without "aud" when Audience is set
	// (tokens minted before the issuer named one); a token naming other
	// audiences is still refused.
	AllowNoAudience bool
	// Now is the time the token is checked at. Default: time.Now().
	Now time.Time
	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat". The
	// tokens are minted and verified by the same app, so only the skew
	// between its own servers matters. Default: 0; a negative value counts
	// as 0.
	Leeway time.Duration
	// Skew is the clock skew tolerated on "iat" and "nbf" beyond Leeway: a
	// token minted by a server whose clock runs ahead is not refused as
	// issued in the future. It does not lengthen a token's life, as Leeway
	// does. Default: 0; a negative value counts as 0.
	Skew time.Duration
}

// Refusals that need no detail; predefined so that a flood of garbage
// costs no allocation.
var (
	errTooLong      = invalid(fmt.Sprintf("longer than %d bytes", MaxLen))
	errShape        = invalid("not three base64url parts")
	errSigShape     = invalid("signature part of the wrong length")
	errNoIssuer     = invalid("VerifyOptions.Issuer is empty")
	errIssuer       = invalid(`wrong "iss"`)
	errAudience     = invalid(`"aud" does not name this audience`)
	errIssuedFuture = invalid(`"iat" in the future`)
	errNotYet       = invalid(`"nbf" in the future`)
	errNoExp        = invalid(`missing "exp"`)
	errUnknownKid   = invalid(`unknown "kid"`)
)

// Verify checks token and returns its claims. It does no I/O. It refuses,
// with an error wrapping ErrInvalid (and ErrExpired when the token has
// expired), anything but a token minted by one of the set's keys, of type
// "at+jwt", issued by opts.Issuer and valid at opts.Now; the package
// documentation lists the checks.
//
// A token that verifies is kept in a bounded in-memory cache until its
// "exp", keyed by the token itself, so verifying it again skips the
// signature check; the claims are still checked against opts each time.
//
// The caller must still check the session the claims name: see the
// package documentation.
func (k *KeySet) Verify(token string, opts VerifyOptions) (Claims, error) {
	if k == nil || len(k.keys) == 0 {
		return Claims{}, errors.New("accesstoken: verify: no key set")
	}
	if opts.Issuer == "" {
		return Claims{}, errNoIssuer
	}
	if len(token) > MaxLen {
		return Claims{}, errTooLong
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	opts.Leeway, opts.Skew = max(opts.Leeway, 0), max(opts.Skew, 0)
	if v, ok := k.cache.get(token); ok {
		if err := v.check(&opts); err != nil {
			return Claims{}, err
		}
		return v.claims.clone(), nil
	}
	v, err := k.verifySlow(token)
	if err != nil {
		return Claims{}, err
	}
	if err := v.check(&opts); err != nil {
		return Claims{}, err
	}
	k.cache.put(token, v, opts.Now)
	return v.claims.clone(), nil
}

// verifySlow parses token and checks its header and signature.
func (k *KeySet) verifySlow(token string) (verified, error) {
	header, _, sig, ok := split(token)
	if !ok {
		return verified{}, errShape
	}
	h, err := parseHeader(header)
	if err != nil {
		return verified{}, err
	}
	key, ok := k.lookup(h.kid)
	if !ok {
		return verified{}, errUnknownKid
	}
	if jose.SignatureAlgorithm(h.alg) != key.alg {
		return verified{}, invalid(fmt.Sprintf(`"alg" %q is not the algorithm of key %q`, short(h.alg), h.kid))
	}
	if len(sig) != sigLen {
		return verified{}, errSigShape
	}
	// The allow-list holds only the algorithm pinned to this key.
	jws, err := jwt.ParseSigned(token, key.algs)
	if err != nil {
		return verified{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := sameHeader(jws.Headers, h); err != nil {
		return verified{}, err
	}
	var w wireClaims
	if err := jws.Claims(key.public, &w); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return verified{}, invalid("bad signature")
		}
		return verified{}, fmt.Errorf("%w: payload: %w", ErrInvalid, err)
	}
	return fromWire(&w)
}

// split cuts a compact JWS into its three parts, each non-empty and in
// canonical unpadded base64url (so a token has one spelling only).
func split(token string) (header, payload, sig string, ok bool) {
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !canonicalB64(header) || !canonicalB64(payload) || !canonicalB64(sig) {
		return "", "", "", false
	}
	return header, payload, sig, true
}

// canonicalB64 reports whether s is non-empty unpadded base64url whose last
// character carries no stray bits. A dot is not in the alphabet, so a
// fourth part fails here.
func canonicalB64(s string) bool {
	if len(s) == 0 || len(s)%4 == 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b64Value(s[i]) < 0 {
			return false
		}
	}
	last := b64Value(s[len(s)-1])
	switch len(s) % 4 {
	case 2: // 12 bits encode 8: the low 4 must be zero
		return last&0x0f == 0
	case 3: // 18 bits encode 16: the low 2 must be zero
		return last&0x03 == 0
	}
	return true
}

// b64Value is the value of a base64url character, or -1.
func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}

// header is a token's JOSE header: the three parameters an access token
// has, and no others.
type header struct {
	alg, kid, typ string
}

// parseHeader decodes the header strictly: a JSON object of string values
// whose names are "alg", "kid" and "typ", each exactly once. Every other
// parameter is refused, among them "crit", "b64", "jwk", "jku", "x5c" and
// "x5u": a token never chooses its own key or changes how it is verified.
func parseHeader(part string) (header, error) {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return header{}, errShape
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return header{}, invalid("header is not a JSON object")
	}
	var h header
	for dec.More() {
		t, err := dec.Token()
		name, _ := t.(string)
		if err != nil {
			return header{}, invalid("header is not a JSON object")
		}
		var dst *string
		switch name {
		case "alg":
			dst = &h.alg
		case "kid":
			dst = &h.kid
		case "typ":
			dst = &h.typ
		default:
			return header{}, invalid(fmt.Sprintf("header parameter %q not allowed", short(name)))
		}
		if *dst != "" {
			return header{}, invalid(fmt.Sprintf("header parameter %q repeated", name))
		}
		t, err = dec.Token()
		value, isString := t.(string)
		if err != nil || !isString {
			return header{}, invalid(fmt.Sprintf("header parameter %q is not a string", name))
		}
		if value == "" {
			return header{}, invalid(fmt.Sprintf("header parameter %q is empty", name))
		}
		*dst = value
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return header{}, invalid("header is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return header{}, invalid("data after the header object")
	}
	switch {
	case h.alg == "":
		return header{}, invalid(`header has no "alg"`)
	case h.kid == "":
		return header{}, invalid(`header has no "kid"`)
	case !strings.EqualFold(h.typ, headerType) && !strings.EqualFold(h.typ, "application/"+headerType):
		return header{}, invalid(fmt.Sprintf(`"typ" %q is not %q`, short(h.typ), headerType))
	}
	return h, nil
}

// sameHeader checks that go-jose read the header as parseHeader did, so the
// two parsers cannot disagree about which key or algorithm applies.
func sameHeader(hs []jose.Header, h header) error {
	if len(hs) != 1 {
		return invalid("not one signature")
	}
	g := hs[0]
	typ, _ := g.ExtraHeaders[jose.HeaderType].(string)
	if g.Algorithm != h.alg || g.KeyID != h.kid || typ != h.typ ||
		g.JSONWebKey != nil || g.Nonce != "" || len(g.ExtraHeaders) != 1 {
		return invalid("header read two ways")
	}
	return nil
}

// short cuts an attacker's string to a length fit for an error message.
func short(s string) string {
	const limit = 32
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
