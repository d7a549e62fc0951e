package enrich

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/sessionkit/sessionkit/internal/logtest"
)

// This file builds small GeoIP2 databases for the tests, laid out like
// MaxMind's own files (names maps keyed by locale, iso_code, an array of
// subdivisions ordered from largest to smallest), so that geoip2-golang
// decodes them exactly as it decodes the real ones.

// place is one test network and what the database says about it.
type place struct {
	network      string
	city         string
	subdivisions [][2]string // {iso_code, English name}, largest first; nil: key absent
	country      [2]string   // {iso_code, English name}; empty: key absent
}

func names(en string) mmdbtype.Map {
	// Real files carry several locales; geoip2 must pick "en".
	return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en + " (de)"), "ja": mmdbtype.String("日本語")}
}

func countryRecord(c [2]string) mmdbtype.Map {
	return mmdbtype.Map{
		"geoname_id":           mmdbtype.Uint32(2635167),
		"is_in_european_union": mmdbtype.Bool(false),
		"iso_code":             mmdbtype.String(c[0]),
		"names":                names(c[1]),
	}
}

// cityRecord is a GeoIP2-City record; Country databases hold the subset
// countryOnlyRecord writes.
func cityRecord(p place) mmdbtype.Map {
	rec := countryOnlyRecord(p)
	if p.city != "" {
		rec["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2643743), "names": names(p.city)}
		rec["location"] = mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(10),
			"latitude":        mmdbtype.Float64(51.5142),
			"longitude":       mmdbtype.Float64(-0.0931),
			"time_zone":       mmdbtype.String("Europe/London"),
		}
		rec["postal"] = mmdbtype.Map{"code": mmdbtype.String("EC2V")}
	}
	if p.subdivisions != nil {
		subs := mmdbtype.Slice{}
		for _, s := range p.subdivisions {
			subs = append(subs, mmdbtype.Map{
				"geoname_id": mmdbtype.Uint32(6269131),
				"iso_code":   mmdbtype.String(s[0]),
				"names":      names(s[1]),
			})
		}
		rec["subdivisions"] = subs
	}
	return rec
}

func countryOnlyRecord(p place) mmdbtype.Map {
	rec := mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": names("Europe")},
	}
	if p.country != [2]string{} {
		rec["country"] = countryRecord(p.country)
		rec["registered_country"] = countryRecord(p.country)
	}
	return rec
}

// testPlaces covers IPv4 and IPv6, city with one and with two subdivisions,
// a region equal to its city, a city without subdivisions, an explicit empty
// subdivisions array, country-only records and non-ASCII names. The private
// and special networks carry data on purpose: Lookup must refuse them itself,
// not rely on the database lacking them.
var testPlaces = []place{
	{network: "81.2.69.0/24", city: "London", subdivisions: [][2]string{{"ENG", "England"}}, country: [2]string{"GB", "United Kingdom"}},
	{network: "2.125.160.216/29", city: "Boxford", subdivisions: [][2]string{{"ENG", "England"}, {"WBK", "West Berkshire"}}, country: [2]string{"GB", "United Kingdom"}},
	{network: "200.160.0.0/16", city: "São Paulo", subdivisions: [][2]string{{"SP", "São Paulo"}}, country: [2]string{"BR", "Brazil"}},
	{network: "177.0.0.0/16", country: [2]string{"BR", "Brazil"}},
	{network: "185.29.0.0/16", city: "Singapore", country: [2]string{"SG", "Singapore"}},
	{network: "2.0.0.0/16", subdivisions: [][2]string{}, country: [2]string{"FR", "France"}},
	{network: "5.0.0.0/16", subdivisions: [][2]string{{"ENG", "England"}}, country: [2]string{"GB", "United Kingdom"}},
	{network: "2001:620::/32", city: "Zürich", subdivisions: [][2]string{{"ZH", "Zurich"}}, country: [2]string{"CH", "Switzerland"}},
	{network: "2a01:e0a::/32", city: "Paris", subdivisions: [][2]string{{"IDF", "Île-de-France"}}, country: [2]string{"FR", "France"}},
	{network: "2a02:ff0::/32", country: [2]string{"TR", "Türkiye"}},
	// Networks Lookup must never report.
	{network: "10.0.0.0/8", city: "Private", country: [2]string{"ZZ", "Nowhere"}},
	{network: "127.0.0.0/8", city: "Loopback", country: [2]string{"ZZ", "Nowhere"}},
	{network: "169.254.0.0/16", city: "LinkLocal", country: [2]string{"ZZ", "Nowhere"}},
	{network: "172.16.0.0/12", city: "Private", country: [2]string{"ZZ", "Nowhere"}},
	{network: "192.168.0.0/16", city: "Private", country: [2]string{"ZZ", "Nowhere"}},
	{network: "224.0.0.0/4", city: "Multicast", country: [2]string{"ZZ", "Nowhere"}},
	{network: "fc00::/7", city: "ULA", country: [2]string{"ZZ", "Nowhere"}},
	{network: "fe80::/10", city: "LinkLocal", country: [2]string{"ZZ", "Nowhere"}},
	{network: "ff00::/8", city: "Multicast", country: [2]string{"ZZ", "Nowhere"}},
}

// dbSpec describes a database to write.
type dbSpec struct {
	dbType   string // "GeoIP2-City", "GeoLite2-City", "GeoIP2-Country", ...
	ipv4Only bool
	places   []place
}

// buildDB returns the bytes of the database spec describes. IPv4 aliasing
// (::ffff:0:0/96 and friends pointing at the IPv4 tree) is turned off so
// that IPv4-mapped lookups only succeed if Lookup unmaps them.
func buildDB(t testing.TB, spec dbSpec) []byte {
	t.Helper()
	opts := mmdbwriter.Options{
		DatabaseType:            spec.dbType,
		Description:             map[string]string{"en": "sessionkit test database"},
		Languages:               []string{"en", "de", "ja"},
		RecordSize:              28,
		IncludeReservedNetworks: true,
		DisableIPv4Aliasing:     true,
		BuildEpoch:              1700000000,
	}
	if spec.ipv4Only {
		opts.IPVersion = 4
	}
	w, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatalf("mmdbwriter.New: %v", err)
	}
	country := !strings.Contains(spec.dbType, "City")
	for _, p := range spec.places {
		_, network, err := net.ParseCIDR(p.network)
		if err != nil {
			t.Fatalf("parse %s: %v", p.network, err)
		}
		if spec.ipv4Only && network.IP.To4() == nil {
			continue
		}
		rec := cityRecord(p)
		if country {
			rec = countryOnlyRecord(p)
		}
		if err := w.Insert(network, rec); err != nil {
			t.Fatalf("insert %s: %v", p.network, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("write database: %v", err)
	}
	return buf.Bytes()
}

// writeFileAtomic replaces path the way geoipupdate does: a temporary file in
// the same directory, renamed over the old one.
func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// writeDB writes spec's database to a new file in a test directory.
func writeDB(t testing.TB, spec dbSpec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "GeoIP2-Test.mmdb")
	writeFileAtomic(t, path, buildDB(t, spec))
	return path
}

// cityDB and countryDB are the databases most tests use.
var (
	cityDB    = dbSpec{dbType: "GeoIP2-City", places: testPlaces}
	countryDB = dbSpec{dbType: "GeoIP2-Country", places: testPlaces}
)

func newTestLogger() (*slog.Logger, *logtest.Buffer) {
	var b logtest.Buffer
	return b.Logger(), &b
}
