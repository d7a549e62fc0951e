package middleware

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/token"
)

// Token errors. Each wraps sessionkit.ErrNoSession, so ProblemFor answers
// 401 no_session for all of them.
var (
	// ErrNoToken: the request carries no session cookie (nor bearer token).
	ErrNoToken = fmt.Errorf("%w: no session token in the request", sessionkit.ErrNoSession)
	// ErrInvalidToken: the token is malformed, unknown, or its secret is wrong.
	ErrInvalidToken = fmt.Errorf("%w: invalid session token", sessionkit.ErrNoSession)
	// ErrAmbiguousToken: the request carries two session cookies of the
	// configured name, or a cookie and a different bearer token. None is
	// accepted, in either mode: a second cookie is how cookie-tossing
	// attacks plant a session.
	ErrAmbiguousToken = fmt.Errorf("%w: more than one session token in the request", sessionkit.ErrNoSession)
)

// Token returns the request's session token, checked for length and
// alphabet but not yet against the store. It reads the session cookie and,
// with AllowBearer, an "Authorization: Bearer" header; a request carrying
// both must carry the same token in each.
func (a *Authenticator) Token(r *http.Request) (string, error) {
	tok, n := cookieValue(r.Header["Cookie"], a.opts.CookieName)
	if n > 1 {
		return "", ErrAmbiguousToken
	}
	fromHeader := false
	if a.opts.AllowBearer {
		switch auth := r.Header["Authorization"]; {
		case len(auth) > 1:
			return "", ErrAmbiguousToken
		case len(auth) == 1:
			if b, ok := bearer(auth[0]); ok {
				if n == 1 && b != tok {
					return "", ErrAmbiguousToken
				}
				tok, n, fromHeader = b, 1, true
			}
		}
	}
	if n == 0 {
		return "", ErrNoToken
	}
	if !token.Plausible(tok) && !(fromHeader && plausibleJWT(tok)) {
		return "", ErrInvalidToken
	}
	return tok, nil
}

// maxAccessToken bounds an access token (a JWT) in a bearer header.
const maxAccessToken = 4096

// plausibleJWT reports whether s may be an access token: at most
// maxAccessToken bytes, three dot-separated parts, the first a JSON
// object's base64url. The Manager verifies it strictly (every byte, the
// signature), still without a store call; this only keeps other values out.
func plausibleJWT(s string) bool {
	return len(s) <= maxAccessToken && strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// cookieValue returns the value of the cookie called name in the Cookie
// header lines and how many cookies of that name there are. It splits the
// way net/http does (";"-separated, optional whitespace trimmed, one pair of
// double quotes removed) but without allocating, and it counts a cookie even
// when net/http would drop it for a bad byte, so a malformed duplicate still
// makes the request ambiguous.
func cookieValue(lines []string, name string) (val string, n int) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(strings.Trim(part, " \t"), "=")
			if k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			val, n = v, n+1
		}
	}
	return val, n
}

// bearer returns the token of an "Authorization: Bearer <token>" value; the
// scheme is case-insensitive (RFC 9110 §11.1). Other schemes report false.
func bearer(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.Trim(v[len(scheme):], " \t"), true
}
