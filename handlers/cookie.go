package handlers

import (
	"net/http"
	"time"
)

// setCookie sets the session cookie: HttpOnly, Secure (unless
// InsecureDevCookies), SameSite=Lax, Path=/, no Domain, and a Max-Age that
// ends with the session, never after it.
func (h *Handler) setCookie(w http.ResponseWriter, token string, expires time.Time) {
	maxAge := int(expires.Sub(h.m.Now()) / time.Second)
	if maxAge < 1 {
		maxAge = 1 // 0 would mean a browser-session cookie, -1 deletion
	}
	http.SetCookie(w, h.newCookie(token, maxAge))
}

// clearCookie tells the browser to drop the session cookie (Max-Age=0).
func (h *Handler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, h.newCookie("", -1))
}

func (h *Handler) newCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     h.cookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !h.insecure,
		SameSite: http.SameSiteLaxMode,
	}
}
