package enrich

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; f.Add adds a few more.

func FuzzSanitizeUserAgent(f *testing.F) {
	f.Add(uaChromeMac)
	f.Add("a\xffb\x00c\u202e")
	f.Add(strings.Repeat("é", 400))
	f.Fuzz(func(t *testing.T, ua string) {
		got := SanitizeUserAgent(ua)
		if !utf8.ValidString(got) {
			t.Fatalf("got invalid UTF-8 %q", got)
		}
		if len(got) > MaxUserAgentBytes {
			t.Fatalf("got %d bytes, want at most %d", len(got), MaxUserAgentBytes)
		}
		if strings.ContainsFunc(got, isDropped) {
			t.Fatalf("got control characters in %q", got)
		}
		if again := SanitizeUserAgent(got); again != got {
			t.Fatalf("not idempotent: got %q, then %q", got, again)
		}
		// Clean input comes back as it went in.
		if isPlainASCII(ua) && len(ua) <= MaxUserAgentBytes && ua == strings.TrimSpace(ua) && got != ua {
			t.Fatalf("clean input changed: got %q, want %q", got, ua)
		}
	})
}

func FuzzParseUserAgent(f *testing.F) {
	for _, tt := range userAgentTests[:10] {
		f.Add(tt.ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		// parseDevice recovers only from the third-party parser, so a bug in
		// the mapping code fails the fuzz run instead of hiding behind
		// ParseUserAgent's recover.
		d := parseDevice(SanitizeUserAgent(ua))
		checkDevice(t, d)
		if got := ParseUserAgent(ua); got != d {
			t.Fatalf("ParseUserAgent: got %#v, want %#v", got, d)
		}
		// The header is sanitized before parsing, so sanitizing first
		// changes nothing.
		if got := ParseUserAgent(SanitizeUserAgent(ua)); got != d {
			t.Fatalf("ParseUserAgent(SanitizeUserAgent): got %#v, want %#v", got, d)
		}
		if d.Bot && d.Label != d.Browser && d.Label != "Unknown bot" {
			t.Fatalf("bot label: got %q, want the bot's name %q", d.Label, d.Browser)
		}
	})
}

func FuzzLookup(f *testing.F) {
	logger, _ := newTestLogger()
	g, err := OpenGeoIP(writeDB(f, cityDB), GeoIPOptions{Logger: logger, ReloadInterval: -1, LookupTimeout: testBudget})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.Close() })
	for _, s := range []string{"81.2.69.142", "::ffff:81.2.69.142", "2001:620::1", "10.0.0.1", "fe80::1"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ip netip.Addr
		switch len(b) {
		case 4:
			ip = netip.AddrFrom4([4]byte(b))
		case 16:
			ip = netip.AddrFrom16([16]byte(b))
		default:
			var a [16]byte
			copy(a[:], b)
			ip = netip.AddrFrom16(a)
		}
		got := g.Lookup(context.Background(), ip)
		if !isPublic(ip.Unmap()) && got != (Location{}) {
			t.Fatalf("Lookup(%s) of a non-public address: got %+v, want empty", ip, got)
		}
		for _, s := range []string{got.Label, got.City, got.Region, got.Country, got.CountryCode} {
			if !utf8.ValidString(s) {
				t.Fatalf("Lookup(%s): got invalid UTF-8 in %+v", ip, got)
			}
		}
		if (got.Label == "") != (got == Location{}) {
			t.Fatalf("Lookup(%s): got %+v, want a label exactly when something is known", ip, got)
		}
		if len(got.Label) > 3*maxGeoNameBytes+4 {
			t.Fatalf("Lookup(%s): got a %d-byte label", ip, len(got.Label))
		}
		// A mapped address and its IPv4 form are the same client.
		if ip.Is4In6() {
			if v4 := g.Lookup(context.Background(), ip.Unmap()); v4 != got {
				t.Fatalf("Lookup(%s): got %+v, but %s gives %+v", ip, got, ip.Unmap(), v4)
			}
		}
	})
}
