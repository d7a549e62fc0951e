package middleware

import (
	"net/http"
	"time"
)

// SetCookie sets the session cookie for token, as the login route does:
// the configured name (default "__Host-session"), HttpOnly, Secure (unless
// InsecureDevCookies), SameSite=Lax, Path=/, no Domain, and a Max-Age that
// ends with the session, never after it. Use it where an app signs users
// in outside the /sessions routes (a login form, an OAuth callback).
func (a *Authenticator) SetCookie(w http.ResponseWriter, token string, expires time.Time) {
	maxAge := int(expires.Sub(a.m.Now()) / time.Second)
	if maxAge < 1 {
		maxAge = 1 // 0 would make a browser-session cookie, negative a deletion
	}
	http.SetCookie(w, a.cookie(token, maxAge))
	w.Header().Set("Cache-Control", "no-store")
}

// ClearCookie tells the browser to drop the session cookie (Max-Age=0).
func (a *Authenticator) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, a.cookie("", -1))
	w.Header().Set("Cache-Control", "no-store")
}

func (a *Authenticator) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     a.opts.CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !a.opts.InsecureDevCookies,
		SameSite: http.SameSiteLaxMode,
	}
}
