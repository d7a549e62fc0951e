package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/middleware"
)

// TestHeaderValuesAreNotShared checks that the headers the middleware sets
// together do not share values: an app that adds to one, or writes into one
// in place, changes no other header, of this response or of the next.
func TestHeaderValuesAreNotShared(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	want := func(t *testing.T, h http.Header, key string, vals ...string) {
		t.Helper()
		if got := h.Values(key); !slices.Equal(got, vals) {
			t.Errorf("%s: got %q, want %q", key, got, vals)
		}
	}
	addAll := func(h http.Header) {
		h.Add("Vary", "Accept-Encoding")
		h.Add("Cache-Control", "private")
		h.Add("Www-Authenticate", `Basic realm="app"`)
	}

	t.Run("authenticated", func(t *testing.T) {
		h := f.auth(t, middleware.Options{}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addAll(w.Header())
			w.WriteHeader(http.StatusOK)
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(cookie+tok, "203.0.113.7:1"))
		want(t, rec.Header(), "Vary", "Cookie", "Accept-Encoding")
		want(t, rec.Header(), "Cache-Control", "no-store", "private")

		rec.Header()["Vary"][0] = "overwritten"
		rec.Header()["Cache-Control"][0] = "overwritten"
		next := httptest.NewRecorder()
		h.ServeHTTP(next, request(cookie+tok, "203.0.113.7:1"))
		want(t, next.Header(), "Vary", "Cookie", "Accept-Encoding")
		want(t, next.Header(), "Cache-Control", "no-store", "private")
	})

	t.Run("refused", func(t *testing.T) {
		for _, bearer := range []bool{false, true} {
			a := f.auth(t, middleware.Options{AllowBearer: bearer, ErrorWriter: func(w http.ResponseWriter, r *http.Request, p middleware.Problem) {
				addAll(w.Header())
				w.WriteHeader(p.Status)
			}})
			h := a.Middleware(noContent)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, request(cookie+"malformed", "203.0.113.7:1"))
			vary, challenges := "Cookie", []string{`Cookie realm="sessionkit", cookie-name="__Host-session"`}
			if bearer {
				vary = "Cookie, Authorization"
				challenges = append(challenges, `Bearer realm="sessionkit", error="invalid_token"`)
			}
			want(t, rec.Header(), "Vary", vary, "Accept-Encoding")
			want(t, rec.Header(), "Cache-Control", "no-store", "private")
			want(t, rec.Header(), "Www-Authenticate", append(challenges, `Basic realm="app"`)...)

			rec.Header()["Www-Authenticate"][0] = "overwritten"
			next := httptest.NewRecorder()
			h.ServeHTTP(next, request(cookie+"malformed", "203.0.113.7:1"))
			want(t, next.Header(), "Www-Authenticate", append(challenges, `Basic realm="app"`)...)
		}
	})

	t.Run("existing Vary", func(t *testing.T) {
		a := f.auth(t, middleware.Options{})
		inner := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addAll(w.Header())
			w.WriteHeader(http.StatusOK)
		}))
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Vary", "Origin")
			inner.ServeHTTP(w, r)
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(cookie+tok, "203.0.113.7:1"))
		want(t, rec.Header(), "Vary", "Origin", "Cookie", "Accept-Encoding")
		want(t, rec.Header(), "Cache-Control", "no-store", "private")

		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, request(cookie+"malformed", "203.0.113.7:1"))
		want(t, rec.Header(), "Vary", "Origin", "Cookie")
		want(t, rec.Header(), "Cache-Control", "no-store")
	})
}
