package sessionkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/geoiptest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// enrichBudget bounds the lookups of tests that are not about time budgets:
// large enough that a loaded test machine never trips it (the defaults, 50 ms
// per GeoIP lookup and 100 ms per enrichment, do trip under -race on a busy
// 2-core machine, and a tripped budget leaves the location empty).
const enrichBudget = time.Minute

// demoEnricher is an enricher over geoiptest.Demo, closed with the test.
func demoEnricher(t *testing.T) *sessionkit.DefaultEnricher {
	t.Helper()
	path, err := geoiptest.WriteCity(t.TempDir(), geoiptest.Demo)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sessionkit.NewEnricher(sessionkit.EnricherOptions{GeoIPPath: path, LookupTimeout: enrichBudget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Enrichment through the whole path: login locates the address, an IP
// change to another country is recorded on the session and in the event,
// and a sign-in from a new country is flagged.
func TestLocationAndCountryChange(t *testing.T) {
	e := demoEnricher(t)
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		var mu sync.Mutex
		var hooked []sessionkit.Event
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithEnricher(e), sessionkit.WithEnrichTimeout(enrichBudget), sessionkit.WithHook(func(_ context.Context, ev sessionkit.Event) {
			mu.Lock()
			hooked = append(hooked, ev)
			mu.Unlock()
		}))
		user := uuid.New()
		res := f.Login(t, user) // 203.0.113.7: London
		want := sessionkit.Location{Label: "London, England, GB", City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB"}
		if res.Session.Location != want {
			t.Fatalf("login location: got %+v, want %+v", res.Session.Location, want)
		}
		stored, _ := f.M.Session(ctx, res.Session.ID)
		if stored.Location != want {
			t.Errorf("stored location: got %+v", stored.Location)
		}

		r, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr("198.51.100.23")) // Paris
		if err != nil {
			t.Fatal(err)
		}
		if !r.IPChanged || !r.CountryChanged || r.PreviousCountry != "GB" || r.Session.Location.CountryCode != "FR" {
			t.Fatalf("country change: %+v", r)
		}
		stored, _ = f.M.Session(ctx, res.Session.ID)
		if stored.Location.City != "Paris" || stored.IPChangeCount != 1 {
			t.Errorf("after change: %+v", stored)
		}
		evs, _ := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 1})
		if len(evs) != 1 || evs[0].Type != sessionkit.EventIPChanged || evs[0].Country != "FR" || evs[0].PreviousCountry != "GB" {
			t.Fatalf("ip_changed event: %+v", evs)
		}

		// A move to an address GeoIP does not know keeps the last known location.
		r, err = f.M.Authenticate(ctx, res.Token, netip.MustParseAddr("10.1.2.3"))
		if err != nil || !r.IPChanged || r.CountryChanged || r.Session.Location.City != "Paris" {
			t.Fatalf("move to a private address: %+v, %v", r, err)
		}

		second, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "192.0.2.10", UserAgent: sessiontest.ChromeMac})
		if err != nil {
			t.Fatal(err)
		}
		if !second.NewCountry || second.NewDevice || second.Session.Location.CountryCode != "US" {
			t.Errorf("sign-in from the US: new country %v, new device %v, location %+v", second.NewCountry, second.NewDevice, second.Session.Location)
		}
		f.M.Close(ctx)
		mu.Lock()
		defer mu.Unlock()
		last := hooked[len(hooked)-1]
		if last.Type != sessionkit.EventCreated || !last.NewCountry || last.Country != "US" {
			t.Errorf("hook for the new-country sign-in: %+v", last)
		}
	})
}

type hostileEnricher struct {
	panicDevice bool
	blockDevice chan struct{} // Device waits for it, ignoring any budget
	block       chan struct{}
}

func (h hostileEnricher) Device(string) sessionkit.Device {
	if h.panicDevice {
		panic("parser bug")
	}
	if h.blockDevice != nil {
		<-h.blockDevice
	}
	return sessionkit.Device{Label: "Fine"}
}

func (hostileEnricher) Locates() bool { return true }

func (h hostileEnricher) Locate(ctx context.Context, _ netip.Addr) sessionkit.Location {
	if h.block != nil {
		<-h.block // ignores ctx: the Manager must not wait for it
	}
	return sessionkit.Location{Label: "Somewhere"}
}

func TestEnrichmentNeverFailsLogin(t *testing.T) {
	ctx := t.Context()
	b := backends[0] // standalone
	block := make(chan struct{})
	defer close(block)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	// Only the blocking lookup may time out: the panicking parser's Locate
	// answers at once, so its Manager gets a budget a loaded machine never
	// trips, and the timeout is logged by the blocking case's Manager alone.
	cases := map[string]struct {
		e       hostileEnricher
		timeout time.Duration
	}{
		"panicking parser": {hostileEnricher{panicDevice: true}, enrichBudget},
		"blocking lookup":  {hostileEnricher{block: block}, 50 * time.Millisecond},
		"blocking parser":  {hostileEnricher{blockDevice: block}, 50 * time.Millisecond},
	}
	for name, c := range cases {
		e := c.e
		t.Run(name, func(t *testing.T) {
			f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithEnricher(e), sessionkit.WithLogger(logger), sessionkit.WithEnrichTimeout(c.timeout))
			for range 3 {
				res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: "203.0.113.7", UserAgent: sessiontest.ChromeMac})
				if err != nil {
					t.Fatalf("login failed: %v", err)
				}
				if (e.panicDevice || e.blockDevice != nil) && res.Session.Device.Label != "Unknown device" {
					t.Errorf("device after a panic: %+v", res.Session.Device)
				}
				if e.block != nil && res.Session.Location != (sessionkit.Location{}) {
					t.Errorf("location after a timeout: %+v", res.Session.Location)
				}
			}
		})
	}
	// Each failure is logged once per Manager, not per login.
	for reason, want := range map[string]int{"reason=panic": 1, "reason=timeout": 2} {
		if n := strings.Count(logs.String(), reason); n != want {
			t.Errorf("%s logged %d times, want %d:\n%s", reason, n, want, logs.String())
		}
	}
}

// TestAuthenticateWithDecidesTheChange: AuthenticateWith shows the caller
// an address change, located, before anything is recorded; a decision to
// revoke records the change and revokes the session in one step (both
// events reach the hooks), over the cache too; a decision to keep it
// records the change as Authenticate does.
func TestAuthenticateWithDecidesTheChange(t *testing.T) {
	e := demoEnricher(t)
	paris := netip.MustParseAddr("198.51.100.23")
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			ctx := t.Context()
			var mu sync.Mutex
			var hooked []sessionkit.Event
			o := sessiontest.Options{Client: backends[0].Client}
			if cached {
				o.Cache = &store.CacheOptions{}
			}
			f := sessiontest.New(t, o, sessionkit.WithEnricher(e), sessionkit.WithEnrichTimeout(enrichBudget),
				sessionkit.WithHook(func(_ context.Context, ev sessionkit.Event) {
					mu.Lock()
					hooked = append(hooked, ev)
					mu.Unlock()
				}))
			for _, revoke := range []bool{false, true} {
				res := f.Login(t, uuid.New()) // 203.0.113.7: London
				if _, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
					t.Fatal(err) // cached, when the cache is on
				}
				var seen []sessionkit.UpdateSessionActivityResult
				decide := func(c sessionkit.UpdateSessionActivityResult) bool {
					if s := f.Session(t, res.Session.ID); s.IPChangeCount != 0 {
						t.Errorf("the change was recorded before the decision: %d changes", s.IPChangeCount)
					}
					seen = append(seen, c)
					return revoke
				}
				r, err := f.M.AuthenticateWith(ctx, res.Token, paris, decide)
				if len(seen) != 1 {
					t.Fatalf("revoke %v: the decision was asked %d times, want once", revoke, len(seen))
				}
				if c := seen[0]; !c.IPChanged || c.PreviousIP != sessiontest.LoginIP || c.PreviousCountry != "GB" ||
					c.Session.Location.CountryCode != "FR" || !c.CountryChanged || c.Session.LastIPAddress != paris {
					t.Errorf("revoke %v: the change shown to the decision: %+v", revoke, c)
				}
				stored := f.Session(t, res.Session.ID)
				if stored.IPChangeCount != 1 || stored.LastIPAddress != paris || stored.Location.City != "Paris" {
					t.Errorf("revoke %v: stored after the decision: %d changes, last %v, in %s", revoke, stored.IPChangeCount, stored.LastIPAddress, stored.Location.City)
				}
				if !revoke {
					if err != nil || !r.IPChanged || r.PreviousIP != sessiontest.LoginIP {
						t.Errorf("kept: got %+v, %v", r, err)
					}
					continue
				}
				var revoked *sessionkit.RevokedError
				if !errors.As(err, &revoked) || revoked.Reason != sessionkit.ReasonIPChanged {
					t.Fatalf("revoked: got %v, want a RevokedError for ip_changed", err)
				}
				if stored.RevokedReason != sessionkit.ReasonIPChanged {
					t.Errorf("stored revocation reason %q", stored.RevokedReason)
				}
				// Refused from then on, from either address, cache or not.
				for _, ip := range []netip.Addr{paris, netip.MustParseAddr(sessiontest.LoginIP)} {
					if _, err := f.M.Authenticate(ctx, res.Token, ip); !errors.As(err, &revoked) {
						t.Errorf("after the revocation, from %v: got %v", ip, err)
					}
				}
				if err := f.M.Close(ctx); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				var types []sessionkit.EventType
				for _, ev := range hooked {
					if ev.SessionID == res.Session.ID && ev.Type != sessionkit.EventCreated {
						types = append(types, ev.Type)
						if ev.Type == sessionkit.EventRevoked && ev.Reason != sessionkit.ReasonIPChanged {
							t.Errorf("revoked event reason %q", ev.Reason)
						}
					}
				}
				mu.Unlock()
				if !slices.Equal(types, []sessionkit.EventType{sessionkit.EventIPChanged, sessionkit.EventRevoked}) {
					t.Errorf("hooked events: %v, want ip_changed then revoked", types)
				}
			}
		})
	}
}
