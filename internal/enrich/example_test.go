package enrich_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/sessionkit/sessionkit/internal/enrich"
)

func ExampleParseUserAgent() {
	for _, ua := range []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"\x00\xff",
	} {
		d := enrich.ParseUserAgent(ua)
		fmt.Printf("%s (mobile=%v bot=%v)\n", d.Label, d.Mobile, d.Bot)
	}
	// Output:
	// Chrome 131 on macOS (mobile=false bot=false)
	// Safari on iPhone (mobile=true bot=false)
	// curl 8.5 (mobile=false bot=false)
	// Googlebot (mobile=false bot=true)
	// Unknown device (mobile=false bot=false)
}

func ExampleSanitizeUserAgent() {
	fmt.Printf("%+q\n", enrich.SanitizeUserAgent("curl/8.5.0\x00\r\n\xff"))
	// Output: "curl/8.5.0\ufffd"
}

func ExampleOpenGeoIP() {
	// The database reloads itself when geoipupdate replaces the file.
	geo, err := enrich.OpenGeoIP("/var/lib/GeoIP/GeoLite2-City.mmdb", enrich.GeoIPOptions{})
	if err != nil {
		log.Fatal(err) // at start-up; lookups themselves never fail
	}
	defer geo.Close()

	loc := geo.Lookup(context.Background(), netip.MustParseAddr("81.2.69.142"))
	fmt.Println(loc.Label) // "London, England, GB" with MaxMind's City database
}
