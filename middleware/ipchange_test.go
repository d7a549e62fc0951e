package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/middleware"
)

func TestClientIPFromProxies(t *testing.T) {
	f := newFixture(t)
	a := f.auth(t, middleware.Options{TrustedProxies: []string{"10.0.0.0/8", "fd00::/8"}})
	cases := []struct {
		name   string
		remote string
		xff    []string
		want   string // the client address, and the one the session was created at
	}{
		{"no proxy", "198.51.100.9:5000", nil, "198.51.100.9"},
		{"XFF from an untrusted peer is ignored", "198.51.100.9:5000", []string{"1.2.3.4"}, "198.51.100.9"},
		{"spoof, real via a trusted proxy", "10.0.0.2:443", []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"},
		{"spoof, real, proxy via trusted proxies", "10.0.0.2:443", []string{"6.6.6.6, 203.0.113.7, 10.1.1.1"}, "203.0.113.7"},
		{"repeated XFF lines in order", "10.0.0.2:443", []string{"6.6.6.6", "203.0.113.7"}, "203.0.113.7"},
		{"not-an-ip via a trusted proxy stops at the proxy", "10.0.0.2:443", []string{"203.0.113.7, not-an-ip"}, "10.0.0.2"},
		{"not-an-ip from an untrusted peer", "198.51.100.9:5000", []string{"not-an-ip"}, "198.51.100.9"},
		{"zoned peer", "[fe80::1%eth0]:5000", nil, "fe80::1"},
		{"zoned XFF entry via a trusted proxy", "[fd00::1]:443", []string{"fe80::1%eth0"}, "fe80::1"},
		{"IPv4-mapped peer", "[::ffff:198.51.100.9]:5000", nil, "198.51.100.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.LoginFrom(t, uuid.New(), tc.want)
			r := request(cookie+res.Token, tc.remote)
			r.Header["X-Forwarded-For"] = tc.xff
			if got, ok := a.ClientIP(r); !ok || got.String() != tc.want {
				t.Errorf("ClientIP: got %v, %v; want %s", got, ok, tc.want)
			}
			var s seen
			rec := httptest.NewRecorder()
			a.Middleware(probe(&s)).ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d, want 200", rec.Code)
			}
			if s.changed || s.session.IPChangeCount != 0 || s.session.LastIPAddress.String() != tc.want {
				t.Errorf("got change %v (%+v), count %d, last ip %v; want no change from %s",
					s.changed, s.change, s.session.IPChangeCount, s.session.LastIPAddress, tc.want)
			}
		})
	}
}

func TestIPPolicies(t *testing.T) {
	const home, away = "203.0.113.7", "198.51.100.23"
	var decided []middleware.IPChange
	decide := func(r *http.Request, s sessionkit.Session, c middleware.IPChange) middleware.IPPolicy {
		decided = append(decided, c)
		if r.Header.Get("X-Trusted-Device") == "yes" {
			return middleware.IPAllow
		}
		return middleware.IPRevoke
	}
	cases := []struct {
		name        string
		opts        middleware.Options
		header      string
		wantStatus  int
		wantFlag    bool
		wantCount   int // ip changes recorded
		wantLast    string
		wantRevoked bool
	}{
		{"flag (default)", middleware.Options{}, "", http.StatusOK, true, 1, away, false},
		{"allow", middleware.Options{IPPolicy: middleware.IPAllow}, "", http.StatusOK, false, 0, home, false},
		{"revoke", middleware.Options{IPPolicy: middleware.IPRevoke}, "", http.StatusUnauthorized, false, 1, away, true},
		{"decision: allow", middleware.Options{IPDecision: decide}, "yes", http.StatusOK, false, 1, away, false},
		{"decision: revoke", middleware.Options{IPDecision: decide}, "", http.StatusUnauthorized, false, 1, away, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			decided = nil
			res := f.LoginFrom(t, uuid.New(), home)
			var s seen
			h := f.auth(t, tc.opts).Middleware(probe(&s))
			r := request(cookie+res.Token, away+":1")
			r.Header.Set("X-Trusted-Device", tc.header)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("got status %d, want %d", rec.Code, tc.wantStatus)
			}
			if s.changed != tc.wantFlag {
				t.Errorf("IPChanged: got %v, want %v", s.changed, tc.wantFlag)
			}
			if tc.wantFlag && (s.change.Previous.String() != home || s.change.Current.String() != away) {
				t.Errorf("change: got %v -> %v, want %s -> %s", s.change.Previous, s.change.Current, home, away)
			}
			if tc.opts.IPDecision != nil && (len(decided) != 1 || decided[0].Previous != netip.MustParseAddr(home) || decided[0].Current != netip.MustParseAddr(away)) {
				t.Errorf("decision calls: got %+v, want one %s -> %s", decided, home, away)
			}
			got := f.Session(t, res.Session.ID)
			if got.IPChangeCount != tc.wantCount || got.LastIPAddress.String() != tc.wantLast {
				t.Errorf("stored: %d changes, last ip %v; want %d, %s", got.IPChangeCount, got.LastIPAddress, tc.wantCount, tc.wantLast)
			}
			if revoked := got.StateAt(f.M.Now()) == sessionkit.StateRevoked; revoked != tc.wantRevoked {
				t.Errorf("revoked: got %v, want %v", revoked, tc.wantRevoked)
			}
			if tc.wantRevoked {
				if p := problem(t, rec); p.Reason != middleware.ReasonSessionRevoked {
					t.Errorf("reason: got %q, want %q", p.Reason, middleware.ReasonSessionRevoked)
				}
				if got.RevokedReason != sessionkit.ReasonIPChanged {
					t.Errorf("revoked reason: got %q, want %q", got.RevokedReason, sessionkit.ReasonIPChanged)
				}
				// Going back home does not bring it back.
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, request(cookie+res.Token, home+":1"))
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("from home after revocation: got %d, want 401", rec.Code)
				}
			}
			if tc.wantFlag {
				evs, err := f.M.Events(context.Background(), res.Session.UserID, sessionkit.EventQuery{})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 0 || evs[0].Type != sessionkit.EventIPChanged || evs[0].PreviousIP != home {
					t.Errorf("newest event: got %+v, want ip_changed from %s", evs, home)
				}
			}
		})
	}
}

func TestUnusableRemoteAddrFallsBackAndLogsOnce(t *testing.T) {
	var logs logtest.Buffer
	f := newFixture(t, sessionkit.WithLogger(logs.Logger()))
	res := f.Login(t, uuid.New())
	a := f.auth(t, middleware.Options{})
	for _, remote := range []string{"@", "/run/app.sock", ""} {
		var s seen
		r := request(cookie+res.Token, "x")
		r.RemoteAddr = remote
		rec := httptest.NewRecorder()
		a.Middleware(probe(&s)).ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || !s.ok {
			t.Errorf("RemoteAddr %q: got status %d, session %v; want 200 with a session", remote, rec.Code, s.ok)
		}
		if s.changed || s.session.IPChangeCount != 0 {
			t.Errorf("RemoteAddr %q: got an address change %+v, want none", remote, s.change)
		}
		if _, ok := a.ClientIP(r); ok {
			t.Errorf("ClientIP(%q): got ok, want not ok", remote)
		}
	}
	if n := strings.Count(logs.String(), "RemoteAddr is not an IP address"); n != 1 {
		t.Errorf("warnings: got %d, want 1\n%s", n, logs.String())
	}
}

func TestIPRevokeFailsClosedWhenTheStoreFails(t *testing.T) {
	// The decision function stops Redis between the check and the revocation.
	f := newFixture(t)
	res := f.Login(t, uuid.New())
	ctx, cancel := context.WithCancel(context.Background())
	a := f.auth(t, middleware.Options{IPDecision: func(*http.Request, sessionkit.Session, middleware.IPChange) middleware.IPPolicy {
		cancel()
		return middleware.IPRevoke
	}})
	r := request(cookie+res.Token, "198.51.100.23:1").WithContext(ctx)
	_, err := a.Authenticate(r)
	if !errors.Is(err, sessionkit.ErrUnavailable) && !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a store failure", err)
	}
	rec := httptest.NewRecorder()
	a.Fail(rec, r, err)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", rec.Code)
	}
	// The failed request recorded nothing: the next one from the same
	// address is still a change, and is refused.
	var s seen
	rec = httptest.NewRecorder()
	a.Middleware(probe(&s)).ServeHTTP(rec, request(cookie+res.Token, "198.51.100.23:1"))
	if rec.Code != http.StatusUnauthorized || s.called {
		t.Errorf("the next request from the new address: got %d (served %v), want 401", rec.Code, s.called)
	}
	if got := f.Session(t, res.Session.ID); got.RevokedReason != sessionkit.ReasonIPChanged || got.IPChangeCount != 1 {
		t.Errorf("stored: revoked %q, %d changes; want %q and 1", got.RevokedReason, got.IPChangeCount, sessionkit.ReasonIPChanged)
	}
}

// TestIPRevokeRefusesConcurrentRequests: a burst of requests from a new
// address, all reading the session before any of them is decided, is
// refused whole under IPRevoke, or an IPDecision that revokes: none is
// served as if the address were known.
func TestIPRevokeRefusesConcurrentRequests(t *testing.T) {
	f := newFixture(t)
	revoke := func(*http.Request, sessionkit.Session, middleware.IPChange) middleware.IPPolicy {
		return middleware.IPRevoke
	}
	for name, opts := range map[string]middleware.Options{
		"IPRevoke":   {IPPolicy: middleware.IPRevoke},
		"IPDecision": {IPDecision: revoke},
	} {
		t.Run(name, func(t *testing.T) {
			a := f.auth(t, opts)
			var wrong atomic.Int32
			const rounds, burst = 20, 8
			for range rounds {
				res := f.Login(t, uuid.New())
				var wg sync.WaitGroup
				for range burst {
					wg.Go(func() {
						var s seen
						rec := httptest.NewRecorder()
						a.Middleware(probe(&s)).ServeHTTP(rec, request(cookie+res.Token, "198.51.100.23:1"))
						if rec.Code != http.StatusUnauthorized || s.called {
							wrong.Add(1)
						}
					})
				}
				wg.Wait()
			}
			if n := wrong.Load(); n > 0 {
				t.Errorf("%d of %d concurrent requests from a new address were not refused", n, rounds*burst)
			}
		})
	}
}

// A trusted proxy that names no client (no X-Forwarded-For, or none the
// middleware can use) leaves the proxy's own address standing for every
// client behind it, so address changes and locations mean nothing: that
// is a misconfiguration, warned once, and the request is served.
func TestTrustedProxyWithoutClientIsWarned(t *testing.T) {
	var logs logtest.Buffer
	f := newFixture(t, sessionkit.WithLogger(logs.Logger()))
	a := f.auth(t, middleware.Options{TrustedProxies: []string{"10.0.0.0/8"}})
	const line = "a trusted proxy named no client"
	for _, xff := range [][]string{nil, {"unknown"}, {" , "}, {"10.1.1.1"}} {
		r := request("", "10.0.0.2:443")
		r.Header["X-Forwarded-For"] = xff
		ip, ok := a.ClientIP(r)
		if !ok || !ip.IsPrivate() {
			t.Errorf("XFF %q via a trusted proxy: got %v, %v; want the proxy's address", xff, ip, ok)
		}
	}
	if n := logs.Count(line); n != 1 {
		t.Errorf("warnings: got %d, want 1\n%s", n, logs.String())
	}
	// An untrusted peer, or a client named, is no misconfiguration.
	for _, tc := range []struct {
		remote string
		xff    []string
	}{{"198.51.100.9:5000", nil}, {"10.0.0.2:443", []string{"203.0.113.7"}}} {
		r := request("", tc.remote)
		r.Header["X-Forwarded-For"] = tc.xff
		a.ClientIP(r)
	}
	if n := logs.Count(line); n != 1 {
		t.Errorf("warnings after well-formed requests: got %d, want still 1\n%s", n, logs.String())
	}
}

// TestTrustEveryAddressIsWarned: a trusted proxy range that covers every
// address (0.0.0.0/0, ::/0) believes X-Forwarded-For from any peer, so any
// client chooses the address its session records and its IP policy sees.
// It is legal behind a load balancer that is the only way in, and warned
// once at start; a narrower list is not.
func TestTrustEveryAddressIsWarned(t *testing.T) {
	const line = "TrustedProxies trusts every address"
	for _, tc := range []struct {
		proxies []string
		warned  int
	}{
		{[]string{"0.0.0.0/0"}, 1},
		{[]string{"10.0.0.0/8", "::/0"}, 1},
		{[]string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"}, 0},
		{nil, 0},
	} {
		var logs logtest.Buffer
		f := newFixture(t, sessionkit.WithLogger(logs.Logger()))
		f.auth(t, middleware.Options{TrustedProxies: tc.proxies})
		if n := logs.Count(line); n != tc.warned {
			t.Errorf("TrustedProxies %q: %d warnings, want %d\n%s", tc.proxies, n, tc.warned, logs.String())
		}
	}
}

// TestUntrustedForwardedForIsHinted: behind a load balancer with no
// TrustedProxies, every session records the balancer's address and nothing
// said why. A request that carries X-Forwarded-For while no proxy is
// trusted is logged once at info (the header is ignored, rightly: any
// client can send it), so the operator learns of the setting.
func TestUntrustedForwardedForIsHinted(t *testing.T) {
	var logs logtest.Buffer
	f := newFixture(t, sessionkit.WithLogger(logs.Logger()))
	a := f.auth(t, middleware.Options{})
	const line = "X-Forwarded-For, which is ignored"
	r := request("", "10.0.0.2:443")
	a.ClientIP(r)
	if n := logs.Count(line); n != 0 {
		t.Fatalf("no header: %d hints, want 0", n)
	}
	for range 3 {
		r := request("", "10.0.0.2:443")
		r.Header.Set("X-Forwarded-For", "203.0.113.7")
		if ip, ok := a.ClientIP(r); !ok || ip.String() != "10.0.0.2" {
			t.Errorf("got %v, %v; want the peer, 10.0.0.2", ip, ok)
		}
	}
	if n := logs.Count(line); n != 1 {
		t.Errorf("hints: got %d, want 1\n%s", n, logs.String())
	}
	// With a trusted proxy the header is read, and nothing is hinted.
	var logs2 logtest.Buffer
	g := newFixture(t, sessionkit.WithLogger(logs2.Logger()))
	b := g.auth(t, middleware.Options{TrustedProxies: []string{"10.0.0.0/8"}})
	r = request("", "10.0.0.2:443")
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	b.ClientIP(r)
	if n := logs2.Count(line); n != 0 {
		t.Errorf("with a trusted proxy: %d hints, want 0", n)
	}
}
