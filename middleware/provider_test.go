package middleware_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
)

// providers reads the providers a session has accessed.
func (f *fixture) providers(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	return f.Session(t, id).ProvidersAccessed
}

func TestRecordProviderInOneLine(t *testing.T) {
	f := newFixture(t)
	res := f.Login(t, uuid.New())
	h := f.auth(t, middleware.Options{}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sessionkit.RecordProvider(r.Context(), "schwab"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request(cookie+res.Token, "203.0.113.7:1"))
	if rec.Code != http.StatusOK {
		t.Fatalf("got %d (%s), want 200", rec.Code, rec.Body)
	}
	if got := f.providers(t, res.Session.ID); !slices.Equal(got, []string{"schwab"}) {
		t.Errorf("providers: got %q, want [schwab]", got)
	}
	if err := sessionkit.RecordProvider(context.Background(), "schwab"); !errors.Is(err, sessionkit.ErrNoSession) {
		t.Errorf("without the middleware: got %v, want ErrNoSession", err)
	}
}

func TestRecordProviderMiddleware(t *testing.T) {
	f := newFixture(t)
	a := f.auth(t, middleware.Options{})
	var served atomic.Int64
	accounts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) })
	mux := http.NewServeMux()
	mux.Handle("GET /schwab/accounts", a.Middleware(middleware.RecordProvider("schwab", middleware.ProviderOptions{})(accounts)))
	mux.Handle("GET /providers/{name}/accounts", a.Middleware(middleware.RecordProviderFromPath("name", middleware.ProviderOptions{})(accounts)))
	// A group whose session middleware is missing: nothing to record for.
	mux.Handle("GET /unprotected/accounts", middleware.RecordProvider("schwab", middleware.ProviderOptions{})(accounts))
	// A session revoked after it was authenticated.
	mux.Handle("GET /revoked/accounts", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessionkit.FromContext(r.Context())
		if _, err := f.M.RevokeSession(r.Context(), sessionkit.RevokeSession{SessionID: s.ID, UserID: s.UserID, Reason: sessionkit.ReasonUserRevoked}); err != nil {
			t.Error(err)
		}
		middleware.RecordProvider("schwab", middleware.ProviderOptions{})(accounts).ServeHTTP(w, r)
	})))

	cases := []struct {
		name      string
		path      string
		status    int
		reason    string
		providers []string
	}{
		{"fixed provider", "/schwab/accounts", 200, "", []string{"schwab"}},
		{"provider from the path", "/providers/fidelity/accounts", 200, "", []string{"fidelity"}},
		{"invalid provider from the path", "/providers/" + strings.Repeat("x", 65) + "/accounts", 400, middleware.ReasonInvalidRequest, nil},
		{"provider with a bad byte", "/providers/sch%20wab/accounts", 400, middleware.ReasonInvalidRequest, nil},
		{"no session middleware", "/unprotected/accounts", 401, middleware.ReasonNoSession, nil},
		{"revoked in between", "/revoked/accounts", 401, middleware.ReasonSessionRevoked, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.Login(t, uuid.New())
			before := served.Load()
			r := httptest.NewRequest("GET", tc.path, nil)
			r.Header.Set("Cookie", cookie+res.Token)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("got %d (%s), want %d", rec.Code, rec.Body, tc.status)
			}
			if wantServed := tc.status == 200; (served.Load() > before) != wantServed {
				t.Errorf("handler served: got %v, want %v", served.Load() > before, wantServed)
			}
			if tc.reason != "" {
				if p := problem(t, rec); p.Reason != tc.reason {
					t.Errorf("reason: got %q, want %q", p.Reason, tc.reason)
				}
			}
			if got := f.providers(t, res.Session.ID); !slices.Equal(got, tc.providers) && !(len(got) == 0 && len(tc.providers) == 0) {
				t.Errorf("providers: got %q, want %q", got, tc.providers)
			}
		})
	}
}

func TestProviderTransport(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int64
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"accounts":[]}`)
	}))
	defer provider.Close()
	a := f.auth(t, middleware.Options{})

	// call authenticates a request, then calls the provider with its context.
	call := func(t *testing.T, tr middleware.ProviderTransport, tok string, revokeFirst bool) error {
		t.Helper()
		var callErr error
		h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if revokeFirst {
				s, _ := sessionkit.FromContext(r.Context())
				f.M.RevokeSession(r.Context(), sessionkit.RevokeSession{SessionID: s.ID, UserID: s.UserID, Reason: sessionkit.ReasonUserRevoked})
			}
			client := &http.Client{Transport: tr}
			req, _ := http.NewRequestWithContext(r.Context(), "POST", provider.URL+"/v1/accounts", strings.NewReader("q=1"))
			resp, err := client.Do(req)
			if err != nil {
				callErr = err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(cookie+tok, "203.0.113.7:1"))
		if rec.Code != http.StatusOK {
			t.Fatalf("app request: got %d, want 200", rec.Code)
		}
		return callErr
	}

	t.Run("named provider", func(t *testing.T) {
		res := f.Login(t, uuid.New())
		before := hits.Load()
		if err := call(t, middleware.ProviderTransport{Provider: "schwab"}, res.Token, false); err != nil {
			t.Fatal(err)
		}
		if hits.Load() != before+1 {
			t.Errorf("provider hits: got %d, want %d", hits.Load()-before, 1)
		}
		if got := f.providers(t, res.Session.ID); !slices.Equal(got, []string{"schwab"}) {
			t.Errorf("providers: got %q, want [schwab]", got)
		}
	})
	t.Run("host name by default", func(t *testing.T) {
		res := f.Login(t, uuid.New())
		if err := call(t, middleware.ProviderTransport{Base: http.DefaultTransport}, res.Token, false); err != nil {
			t.Fatal(err)
		}
		if got := f.providers(t, res.Session.ID); !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Errorf("providers: got %q, want [127.0.0.1]", got)
		}
	})
	t.Run("revoked session is not sent", func(t *testing.T) {
		res := f.Login(t, uuid.New())
		before := hits.Load()
		err := call(t, middleware.ProviderTransport{Provider: "schwab"}, res.Token, true)
		if !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("got %v, want an error wrapping ErrRevoked", err)
		}
		if hits.Load() != before {
			t.Errorf("provider hits: got %d, want 0", hits.Load()-before)
		}
	})
	t.Run("no session is sent unrecorded", func(t *testing.T) {
		before := hits.Load()
		resp, err := (&http.Client{Transport: middleware.ProviderTransport{Provider: "schwab"}}).Get(provider.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if hits.Load() != before+1 {
			t.Errorf("provider hits: got %d, want 1", hits.Load()-before)
		}
	})
	t.Run("invalid provider name is not sent", func(t *testing.T) {
		res := f.Login(t, uuid.New())
		before := hits.Load()
		if err := call(t, middleware.ProviderTransport{Provider: "charles schwab"}, res.Token, false); !errors.Is(err, sessionkit.ErrInvalid) {
			t.Errorf("got %v, want an error wrapping ErrInvalid", err)
		}
		if hits.Load() != before {
			t.Errorf("provider hits: got %d, want 0", hits.Load()-before)
		}
	})
}

// sent is an app's base transport that answers every request itself.
type sent struct{ hosts []string }

func (s *sent) RoundTrip(r *http.Request) (*http.Response, error) {
	s.hosts = append(s.hosts, r.URL.Host)
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestProviderTransportHostNames: with no Provider, the host name recorded
// is made a valid provider name, so that no host stops the request.
func TestProviderTransportHostNames(t *testing.T) {
	f := newFixture(t)
	a := f.auth(t, middleware.Options{})
	long := strings.Repeat("a", 30) + "." + strings.Repeat("b", 30) + ".schwabapi.com"
	for _, tc := range []struct{ url, want string }{
		{"https://api.schwabapi.com/v1", "api.schwabapi.com"},
		{"https://API.SchwabAPI.com/v1", "api.schwabapi.com"},
		{"http://[::1]:8443/v1", "--1"},
		{"http://[fe80::1%25eth0]/v1", "fe80--1-eth0"},
		{"https://" + long + "/v1", strings.Repeat("b", 30) + ".schwabapi.com"},
	} {
		base := &sent{}
		var callErr error
		h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", tc.url, nil)
			resp, err := (&http.Client{Transport: middleware.ProviderTransport{Base: base}}).Do(req)
			if err != nil {
				callErr = err
				return
			}
			resp.Body.Close()
		}))
		res := f.Login(t, uuid.New())
		h.ServeHTTP(httptest.NewRecorder(), request(cookie+res.Token, "203.0.113.7:1"))
		if callErr != nil || len(base.hosts) != 1 {
			t.Errorf("%s: sent %d times, %v", tc.url, len(base.hosts), callErr)
		}
		if got := f.providers(t, res.Session.ID); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s: recorded %q, want %q", tc.url, got, tc.want)
		}
	}
}
