package handlers

import (
	"net/http"
	"time"
)

// setCookie sets the session cookie; see middleware.Authenticator.SetCookie.
func (h *Handler) setCookie(w http.ResponseWriter, token string, expires time.Time) {
	h.auth.SetCookie(w, token, expires)
}

// clearCookie tells the browser to drop the session cookie (Max-Age=0).
func (h *Handler) clearCookie(w http.ResponseWriter) { h.auth.ClearCookie(w) }
