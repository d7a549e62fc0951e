package middleware_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/middleware"
)

func TestStoreDownIs503NeverAnonymous(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	f := newFixtureWith(t, sessiontest.Options{Addr: srv.Addr()})
	res := f.Login(t, uuid.New())
	required := f.auth(t, middleware.Options{})
	optional := f.auth(t, middleware.Options{Optional: true})
	group := middleware.RecordProvider("schwab", middleware.ProviderOptions{})

	serve := func(a *middleware.Authenticator, next http.Handler) (*httptest.ResponseRecorder, *seen) {
		var s seen
		if next == nil {
			next = probe(&s)
		}
		rec := httptest.NewRecorder()
		a.Middleware(next).ServeHTTP(rec, request(cookie+res.Token, "203.0.113.7:1"))
		return rec, &s
	}
	if rec, _ := serve(required, nil); rec.Code != http.StatusOK {
		t.Fatalf("before: got %d, want 200", rec.Code)
	}

	// Record a provider access while Redis is up, then stop it between
	// authentication and the recording.
	stopInHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := srv.Kill(); err != nil {
			t.Error(err)
		}
		group(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served with the store down") })).ServeHTTP(w, r)
	})
	rec, _ := serve(required, stopInHandler)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("provider group with the store down: got %d, want 503", rec.Code)
	} else if p := problem(t, rec); p.Reason != middleware.ReasonStoreUnavailable {
		t.Errorf("reason: got %q, want %q", p.Reason, middleware.ReasonStoreUnavailable)
	}

	for _, mode := range []struct {
		name string
		a    *middleware.Authenticator
	}{{"required", required}, {"optional", optional}} {
		t.Run(mode.name, func(t *testing.T) {
			rec, s := serve(mode.a, nil)
			if rec.Code != http.StatusServiceUnavailable || s.called {
				t.Fatalf("store down: got %d, handler called %v; want 503, not called", rec.Code, s.called)
			}
			if p := problem(t, rec); p.Reason != middleware.ReasonStoreUnavailable {
				t.Errorf("reason: got %q, want %q", p.Reason, middleware.ReasonStoreUnavailable)
			}
			if got := rec.Header().Get("Set-Cookie"); got != "" {
				t.Errorf("Set-Cookie: got %q, want none", got)
			}
		})
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	err := redistest.WaitFor(10*time.Second, func() error {
		rec, s := serve(required, nil)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("got %d, want 200", rec.Code)
		}
		if s.session.ID != res.Session.ID {
			t.Errorf("after restart: session %s, want %s", s.session.ID, res.Session.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestStoreTimeoutIs503(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr())
	f := newFixtureWith(t, sessiontest.Options{Addr: srv.Addr()})
	res := f.Login(t, uuid.New())
	// A Manager reaching the same data through the proxy.
	pf := newFixtureWith(t, sessiontest.Options{Addr: proxy.Addr(), Prefix: f.Prefix})
	a := pf.auth(t, middleware.Options{StoreTimeout: 50 * time.Millisecond})
	var s seen
	rec := httptest.NewRecorder()
	a.Middleware(probe(&s)).ServeHTTP(rec, request(cookie+res.Token, "203.0.113.7:1"))
	if rec.Code != http.StatusOK {
		t.Fatalf("no delay: got %d, want 200", rec.Code)
	}
	proxy.SetDelay(500 * time.Millisecond)
	r := request(cookie+res.Token, "203.0.113.7:1")
	_, err := a.Authenticate(r)
	if !errors.Is(err, sessionkit.ErrUnavailable) {
		t.Errorf("slow store: got %v, want ErrUnavailable", err)
	}
	rec = httptest.NewRecorder()
	a.Middleware(probe(&s)).ServeHTTP(rec, r)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("slow store: got %d, want 503", rec.Code)
	}
}
