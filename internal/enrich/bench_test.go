package enrich

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func BenchmarkParseUserAgent(b *testing.B) {
	for _, bm := range []struct{ name, ua string }{
		{"chrome-mac", uaChromeMac},
		{"safari-iphone", uaSafariIPhone},
		{"samsung-internet", uaSamsungInternet},
		{"googlebot", uaGooglebot},
		{"curl", uaCurl},
		{"100KB", strings.Repeat("A", 100<<10)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ParseUserAgent(bm.ua)
			}
		})
	}
}

func BenchmarkSanitizeUserAgent(b *testing.B) {
	for _, bm := range []struct{ name, ua string }{
		{"clean", uaChromeMac},
		{"dirty", uaChromeMac + "\x00\xff\u202e"},
		{"100KB", strings.Repeat("A", 100<<10)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = SanitizeUserAgent(bm.ua)
			}
		})
	}
}

func BenchmarkGeoIPLookup(b *testing.B) {
	for _, bm := range []struct {
		name string
		spec dbSpec
		ip   string
	}{
		{"city-hit-v4", cityDB, "81.2.69.142"},
		{"city-hit-v6", cityDB, "2001:620::1"},
		{"city-hit-mapped", cityDB, "::ffff:81.2.69.142"},
		{"city-miss", cityDB, "8.8.8.8"},
		{"private", cityDB, "192.168.1.1"},
		{"country-hit", countryDB, "81.2.69.142"},
	} {
		g := openTestGeoIP(b, bm.spec)
		ip := netip.MustParseAddr(bm.ip)
		ctx := context.Background()
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = g.Lookup(ctx, ip)
			}
		})
	}
	// Many goroutines share the reference count of one database.
	g := openTestGeoIP(b, cityDB)
	ip := netip.MustParseAddr("81.2.69.142")
	b.Run("city-hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				_ = g.Lookup(ctx, ip)
			}
		})
	})
}

// BenchmarkEnrichLogin is what a login costs: parsing the header and finding
// the address in a City database.
func BenchmarkEnrichLogin(b *testing.B) {
	g := openTestGeoIP(b, cityDB)
	ip := netip.MustParseAddr("81.2.69.142")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseUserAgent(uaChromeMac)
		_ = g.Lookup(ctx, ip)
	}
}

// BenchmarkLookupStrategies compares the time budget as Lookup enforces it
// (a direct call, checked after) with the alternative of running the lookup
// in a goroutine and selecting on a timer, to back the choice documented on
// Lookup.
func BenchmarkLookupStrategies(b *testing.B) {
	g := openTestGeoIP(b, cityDB)
	ip := netip.MustParseAddr("81.2.69.142")
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = g.Lookup(ctx, ip)
		}
	})
	b.Run("goroutine-select", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = lookupInGoroutine(ctx, g, ip, defaultLookupTimeout)
		}
	})
}

func lookupInGoroutine(ctx context.Context, g *GeoIP, ip netip.Addr, budget time.Duration) Location {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	ch := make(chan Location, 1)
	go func() { ch <- g.Lookup(ctx, ip) }()
	select {
	case loc := <-ch:
		return loc
	case <-ctx.Done():
		return Location{}
	}
}
