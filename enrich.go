package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sessionkit/sessionkit/internal/enrich"
)

// Enricher turns a User-Agent into a Device and an address into a Location.
// Implementations must be safe for concurrent use. The Manager bounds each
// call in time and recovers panics, so enrichment never fails a login.
type Enricher interface {
	// Device describes the client; ua is already sanitized.
	Device(ua string) Device
	// Locate returns where ip is; the zero Location when unknown.
	Locate(ctx context.Context, ip netip.Addr) Location
	// Locates reports whether Locate can ever find an address. When it is
	// false the Manager skips locating, and an address change costs no
	// second round trip.
	Locates() bool
}

// EnricherOptions configures NewEnricher.
type EnricherOptions struct {
	// GeoIPPath is a GeoIP2 or GeoLite2 City or Country database (.mmdb).
	// Empty: no location. The file is memory-mapped and reloaded when it
	// changes on disk. Default: none.
	GeoIPPath string
	// ReloadInterval is how often the database file is checked for changes. Default: 30 s.
	ReloadInterval time.Duration
	// LookupTimeout is the time budget of one GeoIP lookup; a slower lookup
	// gives no location. It must not be negative. Default: 50 ms.
	LookupTimeout time.Duration
}

// DefaultEnricher is the built-in Enricher: github.com/mssola/useragent for
// devices and a MaxMind database for locations.
type DefaultEnricher struct {
	geo *enrich.GeoIP
}

// NewEnricher returns the built-in Enricher. A GeoIPPath that cannot be
// opened is an error here, at start-up, rather than silent missing locations.
func NewEnricher(opts EnricherOptions) (*DefaultEnricher, error) {
	e := &DefaultEnricher{}
	if opts.GeoIPPath == "" {
		return e, nil
	}
	g, err := enrich.OpenGeoIP(opts.GeoIPPath, enrich.GeoIPOptions{
		ReloadInterval: opts.ReloadInterval, LookupTimeout: opts.LookupTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: GeoIPPath: %v", ErrInvalid, err)
	}
	e.geo = g
	return e, nil
}

// Device parses ua.
func (e *DefaultEnricher) Device(ua string) Device { return Device(enrich.ParseUserAgent(ua)) }

// Locate looks ip up in the GeoIP database, if there is one.
func (e *DefaultEnricher) Locate(ctx context.Context, ip netip.Addr) Location {
	if e.geo == nil {
		return Location{}
	}
	return Location(e.geo.Lookup(ctx, ip))
}

// attach sends the database's reload and lookup failures (each logged
// once) to the Manager's logger; before, they go to slog.Default().
func (e *DefaultEnricher) attach(log *slog.Logger) { e.geo.SetLogger(log) }

// Locates reports whether the enricher has a GeoIP database.
func (e *DefaultEnricher) Locates() bool { return e.geo != nil }

// Close releases the GeoIP database.
func (e *DefaultEnricher) Close() error {
	if e.geo == nil {
		return nil
	}
	return e.geo.Close()
}

// uaOnly is the default when no Enricher is configured.
type uaOnly struct{}

func (uaOnly) Device(ua string) Device                     { return Device(enrich.ParseUserAgent(ua)) }
func (uaOnly) Locate(context.Context, netip.Addr) Location { return Location{} }
func (uaOnly) Locates() bool                               { return false }

// maxEnrichInFlight bounds the enrichment goroutines of a Manager (see
// bounded). A working Enricher returns in microseconds, so only a stuck
// one comes near it.
const maxEnrichInFlight = 256

var errEnrichTimeout = errors.New("sessionkit: enrichment timed out")

// logEnrichOnce logs each kind of enrichment failure once per Manager.
func (m *Manager) logEnrichOnce(reason string, args ...any) {
	if _, seen := m.enrichFailures.LoadOrStore(reason, struct{}{}); !seen {
		m.log.Warn("sessionkit: enrichment failed; fields left empty", append([]any{"reason", reason}, args...)...)
	}
}

// enrich runs the enricher for a login, each call bounded in time and
// shielded from panics.
func (m *Manager) enrich(ctx context.Context, ua string, ip netip.Addr) (d Device, l Location) {
	if _, builtin := m.enricher.(*DefaultEnricher); builtin {
		// Bounded already (a sanitized User-Agent of at most 512 bytes):
		// no goroutine.
		func() {
			defer func() {
				if p := recover(); p != nil {
					m.logEnrichOnce("panic", "panic", fmt.Sprint(p))
				}
			}()
			d = m.enricher.Device(ua)
		}()
	} else {
		d = bounded(m, ctx, func(context.Context) Device { return m.enricher.Device(ua) })
	}
	if d.Label == "" {
		d.Label = "Unknown device"
	}
	return d, m.locate(ctx, ip)
}

// locate finds ip, bounded by the enrich timeout and shielded from panics.
func (m *Manager) locate(ctx context.Context, ip netip.Addr) Location {
	if !m.locates || !ip.IsValid() {
		return Location{} // nothing to wait for
	}
	return bounded(m, ctx, func(ctx context.Context) Location { return m.enricher.Locate(ctx, ip) })
}

// bounded runs f on its own goroutine, with ctx bounded by the enrich
// timeout: a panic, or an answer later than that, gives the zero T, logged
// once per Manager. f may go on after bounded returns; its answer is then
// dropped.
//
// The goroutines are bounded too (maxEnrichInFlight, abandoned ones
// included): an Enricher stuck for good would otherwise leave one behind
// per login and address change. Past the bound, enrichment is skipped.
func bounded[T any](m *Manager, ctx context.Context, f func(context.Context) T) T {
	select {
	case m.enrichSlots <- struct{}{}:
	default:
		m.logEnrichOnce("saturated", "in_flight", maxEnrichInFlight)
		var zero T
		return zero
	}
	ctx, cancel := context.WithTimeoutCause(ctx, m.cfg.enrichTimeout, errEnrichTimeout)
	defer cancel()
	ch := make(chan T, 1)
	go func() {
		var v T
		defer func() {
			<-m.enrichSlots
			if p := recover(); p != nil {
				m.logEnrichOnce("panic", "panic", fmt.Sprint(p))
			}
			ch <- v
		}()
		v = f(ctx)
	}()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		if context.Cause(ctx) == errEnrichTimeout { // not the caller's own cancellation
			m.logEnrichOnce("timeout", "timeout", m.cfg.enrichTimeout.String())
		}
		var zero T
		return zero
	}
}
