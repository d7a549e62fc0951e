package handlers_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
)

// cdnCountry is an Enricher of the kind an app behind a CDN writes: it reads
// the CDN's country header from the login request, and only when the peer
// is the CDN.
type cdnCountry struct{ cdn netip.Prefix }

func (cdnCountry) Device(ua string) sessionkit.Device {
	return sessionkit.Device{Label: "Some browser"}
}

func (cdnCountry) Locates() bool { return true }

func (c cdnCountry) Locate(ctx context.Context, _ netip.Addr) sessionkit.Location {
	r, ok := sessionkit.RequestFromContext(ctx)
	if !ok {
		return sessionkit.Location{}
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !c.cdn.Contains(peer.Addr().Unmap()) {
		return sessionkit.Location{}
	}
	cc := r.Header.Get("CDN-Country")
	return sessionkit.Location{Label: cc, CountryCode: cc}
}

func TestEnricherSeesTheLoginRequest(t *testing.T) {
	for name, c := range map[string]struct {
		cdn  string
		want string
	}{
		"peer is the CDN":     {cdn: "127.0.0.0/8", want: "GB"},
		"peer is not the CDN": {cdn: "10.0.0.0/8", want: ""},
	} {
		t.Run(name, func(t *testing.T) {
			e := cdnCountry{cdn: netip.MustParsePrefix(c.cdn)}
			// A budget a loaded machine never trips: past the default 100 ms
			// the location would be left empty whatever the enricher says.
			f := newFixture(t, setup{mopts: []sessionkit.Option{sessionkit.WithEnricher(e), sessionkit.WithEnrichTimeout(time.Minute)}})
			r := f.do(t, f.client(t), "POST", "/sessions", strings.NewReader(`{"username":"alice","password":"password"}`),
				http.Header{"Content-Type": {"application/json"}, "CDN-Country": {"GB"}})
			if r.status != http.StatusCreated {
				t.Fatalf("login: got %d (%s), want 201", r.status, r.body)
			}
			var s handlers.SessionJSON
			r.decode(t, &s)
			got := ""
			if s.Location != nil && s.Location.CountryCode != nil {
				got = *s.Location.CountryCode
			}
			if got != c.want {
				t.Errorf("country: got %q, want %q", got, c.want)
			}
		})
	}
}
