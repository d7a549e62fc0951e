package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// testPlaces are the networks of the tests' GeoIP database: the addresses
// the browser test's devices claim through X-Forwarded-For.
var testPlaces = []struct {
	network, city, regionCode, region, countryCode, country string
}{
	{"81.2.69.0/24", "London", "ENG", "England", "GB", "United Kingdom"},
	{"2a01:e0a::/32", "Paris", "IDF", "Île-de-France", "FR", "France"},
	{"200.160.0.0/16", "São Paulo", "SP", "São Paulo", "BR", "Brazil"},
}

// writeGeoIPDB writes a small GeoIP2-City database, laid out like
// MaxMind's, and returns its path.
func writeGeoIPDB(t testing.TB) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		Description:             map[string]string{"en": "sessionkit example test database"},
		Languages:               []string{"en"},
		RecordSize:              28,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	en := func(s string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(s)} }
	for _, p := range testPlaces {
		_, network, err := net.ParseCIDR(p.network)
		if err != nil {
			t.Fatal(err)
		}
		country := mmdbtype.Map{"iso_code": mmdbtype.String(p.countryCode), "names": en(p.country)}
		err = w.Insert(network, mmdbtype.Map{
			"city":               mmdbtype.Map{"names": en(p.city)},
			"subdivisions":       mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(p.regionCode), "names": en(p.region)}},
			"country":            country,
			"registered_country": country,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "GeoIP2-City-Test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGeoIPLocations(t *testing.T) {
	cfg := testConfig(t)
	cfg.GeoIPPath = writeGeoIPDB(t)
	cfg.TrustedProxies = []string{"127.0.0.1/32"}
	ra := startApp(t, cfg)
	tests := []struct {
		xff, want string
	}{
		{"81.2.69.142", "London, England, GB"},
		{"203.0.113.9, 2a01:e0a::1", "Paris, Île-de-France, FR"}, // the rightmost entry is the client
		{"10.1.2.3", "Local network"},
	}
	for _, tt := range tests {
		t.Run(tt.xff, func(t *testing.T) {
			c := newClient(t, ra.URL)
			c.header.Set("X-Forwarded-For", tt.xff)
			c.login("alice")
			body, _ := devices(t, c)
			if !containsHTML(body, tt.want) {
				t.Errorf("got devices page without location %q", tt.want)
			}
		})
	}
}
