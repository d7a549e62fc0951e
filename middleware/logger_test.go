package middleware_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
)

// errRecording is a recording failure that is neither a refusal nor a store
// failure: the provider middleware and transport log it and serve the request.
var errRecording = errors.New("recording failed")

// failingProviders is the Redis store but for provider recording, which
// fails with errRecording: no failure of the real store reaches the lines
// logged for a failure that lets the request through.
type failingProviders struct{ sessionkit.Store }

func (failingProviders) RecordProvider(context.Context, backend.Call, uuid.UUID, string) (backend.Recorded, []sessionkit.Event, error) {
	return backend.Recorded{}, nil, errRecording
}

func TestLogsReachTheManagerLogger(t *testing.T) {
	var logs, fallback logtest.Buffer
	def := slog.Default()
	slog.SetDefault(fallback.Logger())
	t.Cleanup(func() { slog.SetDefault(def) })

	f := newFixtureWith(t, sessiontest.Options{Addr: shared.Addr(), RealTime: true,
		Wrap: func(s sessionkit.Store) sessionkit.Store { return failingProviders{s} }},
		sessionkit.WithLogger(logs.Logger()))
	m := f.M
	res := f.Login(t, uuid.New())
	devCookie := middleware.DevCookieName + "=" + res.Token

	var a *middleware.Authenticator
	provider := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer provider.Close()
	// serve sends a request with the session cookie from remote through
	// a's middleware to next, and returns the status.
	serve := func(t *testing.T, next http.Handler, withCookie bool, remote string) int {
		t.Helper()
		c := ""
		if withCookie {
			c = devCookie
		}
		r := request(c, "x")
		r.RemoteAddr = remote
		rec := httptest.NewRecorder()
		a.Middleware(next).ServeHTTP(rec, r)
		return rec.Code
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

	steps := []struct {
		name string
		run  func(t *testing.T)
		line string // what the step logs, once
	}{
		{"Authenticator: InsecureDevCookies warning", func(t *testing.T) {
			var err error
			if a, err = middleware.NewAuthenticator(m, middleware.Options{InsecureDevCookies: true}); err != nil {
				t.Fatal(err)
			}
		}, "InsecureDevCookies is on"},
		{"Authenticator: refusal at debug", func(t *testing.T) {
			if got := serve(t, ok, false, "203.0.113.7:1"); got != http.StatusUnauthorized {
				t.Errorf("no cookie: got %d, want 401", got)
			}
		}, "request refused"},
		{"Authenticator: address change", func(t *testing.T) {
			if got := serve(t, ok, true, "198.51.100.23:1"); got != http.StatusOK {
				t.Errorf("new address: got %d, want 200", got)
			}
		}, "session used from a new address"},
		{"Authenticator: unusable RemoteAddr", func(t *testing.T) {
			if got := serve(t, ok, true, "@"); got != http.StatusOK {
				t.Errorf("RemoteAddr @: got %d, want 200", got)
			}
		}, "RemoteAddr is not an IP address"},
		{"RecordProvider", func(t *testing.T) {
			served := false
			group := middleware.RecordProvider("schwab", middleware.ProviderOptions{})
			if got := serve(t, group(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })), true, "198.51.100.23:1"); got != http.StatusOK || !served {
				t.Errorf("provider group: got %d, served %v; want 200, served", got, served)
			}
		}, "provider access not recorded"},
		{"RecordProvider: refusal at debug", func(t *testing.T) {
			r := request(devCookie, "x")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			rec := httptest.NewRecorder()
			a.Middleware(middleware.RecordProvider("schwab", middleware.ProviderOptions{})(ok)).ServeHTTP(rec, r)
			if rec.Code != http.StatusForbidden {
				t.Errorf("cross-site provider request: got %d, want 403", rec.Code)
			}
		}, "reason=" + middleware.ReasonCrossOrigin},
		{"ProviderTransport", func(t *testing.T) {
			client := &http.Client{Transport: middleware.ProviderTransport{Provider: "schwab"}}
			call := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, _ := http.NewRequestWithContext(r.Context(), "GET", provider.URL, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("provider call: got %v, want it sent", err)
					return
				}
				resp.Body.Close()
			})
			if got := serve(t, call, true, "198.51.100.23:1"); got != http.StatusOK {
				t.Errorf("app request: got %d, want 200", got)
			}
		}, "provider access not recorded"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := logs.Count(st.line)
			st.run(t)
			if got := logs.Count(st.line) - before; got != 1 {
				t.Errorf("lines with %q in the Manager's logger: got %d, want 1\n%s", st.line, got, logs.String())
			}
		})
	}
	if n := fallback.Count("sessionkit:"); n != 0 {
		t.Errorf("lines in slog.Default(): got %d, want 0\n%s", n, fallback.String())
	}
	if strings.Contains(logs.String(), res.Token[37:]) {
		t.Error("the token is in the log")
	}
}
