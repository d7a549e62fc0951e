// Package accesstoken mints and verifies short-lived access tokens for API
// and mobile clients: JWTs in the shape of RFC 9068 ("typ": "at+jwt"),
// signed with EdDSA (Ed25519) or ES256 (P-256) by a [KeySet].
//
// Verification is local and does no I/O. What it guarantees, following
// RFC 8725 and RFC 9068:
//
//   - The algorithm is pinned per key. The header's "kid" picks one of the
//     set's keys (never a key carried in the token: "jwk", "jku", "x5c"
//     and every header other than "alg", "kid" and "typ" are refused), and
//     the header's "alg" must be that key's algorithm. "none", HMAC (also
//     keyed with a public key) and every other algorithm are refused
//     before any signature check.
//   - The size is bounded ([MaxLen]) and the shape checked (three
//     canonical base64url parts) before anything is decoded.
//   - "typ" must be "at+jwt" (or "application/at+jwt"), so an ID token or
//     another JWT signed by the same key is not taken for an access token.
//   - "exp", "iat", "iss", "sub", "sid" (a UUID) and "jti" are required;
//     "exp", "nbf" and "iat" are checked against the clock, "iss" (and
//     "aud" when asked) against [VerifyOptions].
//
// Every refusal wraps [ErrInvalid]; an expired token also wraps
// [ErrExpired].
//
// What the caller must still check: a valid token proves only that this
// app minted it and that it has not expired. It says nothing about the
// session it names. The session may have been revoked, logged out or
// evicted since; look up the session ("sid") and its owner ("sub") in the
// store on every request, so that revocation takes effect at once rather
// than when the token expires.
//
// Verified tokens are cached in memory until they expire, so a client
// reusing one token pays for its signature check once; see
// [KeySet.Verify].
package accesstoken
