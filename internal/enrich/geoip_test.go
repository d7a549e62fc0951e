package enrich

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oschwald/geoip2-golang/v2"
)

// testBudget is the lookup time budget of tests that are not about it: large
// enough that a loaded test machine never trips it.
const testBudget = time.Minute

// openTestGeoIP opens spec's database without reloading and closes it when
// the test ends.
func openTestGeoIP(t testing.TB, spec dbSpec) *GeoIP {
	t.Helper()
	logger, _ := newTestLogger()
	g, err := OpenGeoIP(writeDB(t, spec), GeoIPOptions{Logger: logger, ReloadInterval: -1, LookupTimeout: testBudget})
	if err != nil {
		t.Fatalf("OpenGeoIP: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

var (
	london    = Location{Label: "London, England, GB", City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB"}
	boxford   = Location{Label: "Boxford, England, GB", City: "Boxford", Region: "England", Country: "United Kingdom", CountryCode: "GB"}
	saoPaulo  = Location{Label: "São Paulo, BR", City: "São Paulo", Region: "São Paulo", Country: "Brazil", CountryCode: "BR"}
	brazil    = Location{Label: "Brazil", Country: "Brazil", CountryCode: "BR"}
	singapore = Location{Label: "Singapore, SG", City: "Singapore", Country: "Singapore", CountryCode: "SG"}
	france    = Location{Label: "France", Country: "France", CountryCode: "FR"}
	england   = Location{Label: "England, GB", Region: "England", Country: "United Kingdom", CountryCode: "GB"}
	zurich    = Location{Label: "Zürich, Zurich, CH", City: "Zürich", Region: "Zurich", Country: "Switzerland", CountryCode: "CH"}
	paris     = Location{Label: "Paris, Île-de-France, FR", City: "Paris", Region: "Île-de-France", Country: "France", CountryCode: "FR"}
	turkiye   = Location{Label: "Türkiye", Country: "Türkiye", CountryCode: "TR"}
)

// notPublic are addresses that must give an empty Location even though the
// test databases hold data for most of them.
var notPublic = []string{
	"10.1.2.3", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.10.10", "224.0.0.251",
	"0.0.0.0", "255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0",
	"ff02::1", "::ffff:10.1.2.3", "::ffff:127.0.0.1", "::ffff:192.168.1.1",
}

func TestLookupCity(t *testing.T) {
	for _, dbType := range []string{"GeoIP2-City", "GeoLite2-City"} {
		g := openTestGeoIP(t, dbSpec{dbType: dbType, places: testPlaces})
		tests := []struct {
			ip   string
			want Location
		}{
			{"81.2.69.142", london},
			{"81.2.69.0", london},
			{"2.125.160.217", boxford},           // two subdivisions: the first (largest) is the region
			{"200.160.12.34", saoPaulo},          // non-ASCII; region equal to the city is not repeated in the label
			{"177.0.1.1", brazil},                // country only: the country name
			{"185.29.1.1", singapore},            // city without subdivisions
			{"2.0.1.1", france},                  // empty subdivisions array
			{"5.0.0.1", england},                 // region without city
			{"2001:620::1", zurich},              // IPv6
			{"2001:620:0:ff::1%eth0", zurich},    // zone ignored
			{"2a01:e0a::42", paris},              // IPv6, non-ASCII region
			{"2a02:ff0::1", turkiye},             // IPv6 country only, non-ASCII
			{"::ffff:81.2.69.142", london},       // IPv4-mapped: found only if unmapped
			{"::ffff:200.160.0.1", saoPaulo},     // IPv4-mapped
			{"8.8.8.8", Location{}},              // miss
			{"2001:4860:4860::8888", Location{}}, // IPv6 miss
			{"81.2.70.1", Location{}},            // next to a hit
		}
		for _, tt := range tests {
			t.Run(dbType+"/"+tt.ip, func(t *testing.T) {
				got := g.Lookup(context.Background(), netip.MustParseAddr(tt.ip))
				if got != tt.want {
					t.Errorf("Lookup(%s): got %+v, want %+v", tt.ip, got, tt.want)
				}
			})
		}
	}
}

func TestLookupCountry(t *testing.T) {
	for _, dbType := range []string{"GeoIP2-Country", "GeoLite2-Country"} {
		g := openTestGeoIP(t, dbSpec{dbType: dbType, places: testPlaces})
		tests := []struct {
			ip   string
			want Location
		}{
			{"81.2.69.142", Location{Label: "United Kingdom", Country: "United Kingdom", CountryCode: "GB"}},
			{"200.160.12.34", Location{Label: "Brazil", Country: "Brazil", CountryCode: "BR"}},
			{"2001:620::1", Location{Label: "Switzerland", Country: "Switzerland", CountryCode: "CH"}},
			{"2a02:ff0::1", turkiye},
			{"::ffff:81.2.69.142", Location{Label: "United Kingdom", Country: "United Kingdom", CountryCode: "GB"}},
			{"8.8.8.8", Location{}},
		}
		for _, tt := range tests {
			t.Run(dbType+"/"+tt.ip, func(t *testing.T) {
				got := g.Lookup(context.Background(), netip.MustParseAddr(tt.ip))
				if got != tt.want {
					t.Errorf("Lookup(%s): got %+v, want %+v", tt.ip, got, tt.want)
				}
			})
		}
	}
}

func TestLookupNotPublic(t *testing.T) {
	for _, spec := range []dbSpec{cityDB, countryDB} {
		g := openTestGeoIP(t, spec)
		for _, ip := range notPublic {
			t.Run(spec.dbType+"/"+ip, func(t *testing.T) {
				if got := g.Lookup(context.Background(), netip.MustParseAddr(ip)); got != (Location{}) {
					t.Errorf("Lookup(%s): got %+v, want empty", ip, got)
				}
			})
		}
		t.Run(spec.dbType+"/invalid", func(t *testing.T) {
			if got := g.Lookup(context.Background(), netip.Addr{}); got != (Location{}) {
				t.Errorf("Lookup(invalid): got %+v, want empty", got)
			}
		})
	}
}

// TestRecordLayout checks the test databases against geoip2-golang itself,
// so that the Lookup tests exercise the layout of real MaxMind files.
func TestRecordLayout(t *testing.T) {
	r, err := geoip2.Open(writeDB(t, cityDB))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.City(netip.MustParseAddr("2.125.160.217"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"city.names.en", rec.City.Names.English, "Boxford"},
		{"city.names.de", rec.City.Names.German, "Boxford (de)"},
		{"subdivisions[0].iso_code", rec.Subdivisions[0].ISOCode, "ENG"},
		{"subdivisions[1].names.en", rec.Subdivisions[1].Names.English, "West Berkshire"},
		{"country.iso_code", rec.Country.ISOCode, "GB"},
		{"country.names.en", rec.Country.Names.English, "United Kingdom"},
		{"registered_country.iso_code", rec.RegisteredCountry.ISOCode, "GB"},
		{"continent.code", rec.Continent.Code, "EU"},
		{"location.time_zone", rec.Location.TimeZone, "Europe/London"},
		{"postal.code", rec.Postal.Code, "EC2V"},
		{"network", rec.Traits.Network.String(), "2.125.160.216/29"},
		{"metadata.database_type", r.Metadata().DatabaseType, "GeoIP2-City"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
	t.Run("subdivisions length", func(t *testing.T) {
		if len(rec.Subdivisions) != 2 {
			t.Errorf("got %d subdivisions, want 2", len(rec.Subdivisions))
		}
	})
	t.Run("location.latitude", func(t *testing.T) {
		if rec.Location.Latitude == nil || *rec.Location.Latitude != 51.5142 {
			t.Errorf("got %v, want 51.5142", rec.Location.Latitude)
		}
	})
	t.Run("no subdivisions key", func(t *testing.T) {
		rec, err := r.City(netip.MustParseAddr("177.0.1.1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Subdivisions) != 0 || rec.City.HasData() || rec.Country.ISOCode != "BR" {
			t.Errorf("got %+v, want only country BR", rec)
		}
	})
}

func TestLookupIPv4OnlyDatabase(t *testing.T) {
	logger, logs := newTestLogger()
	path := writeDB(t, dbSpec{dbType: "GeoIP2-City", ipv4Only: true, places: testPlaces})
	g, err := OpenGeoIP(path, GeoIPOptions{Logger: logger, ReloadInterval: -1, LookupTimeout: testBudget})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tests := []struct {
		ip   string
		want Location
	}{
		{"81.2.69.142", london},
		{"::ffff:81.2.69.142", london},
		{"2001:620::1", Location{}}, // an IPv6 address is a miss, not an error
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := g.Lookup(context.Background(), netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := logs.String(); got != "" {
		t.Errorf("got log output %q, want none", got)
	}
}

func TestOpenGeoIPErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := buildDB(t, cityDB)
	tests := []struct {
		name string
		path string
		opts GeoIPOptions
	}{
		{"empty path", "", GeoIPOptions{}},
		{"missing file", filepath.Join(dir, "nope.mmdb"), GeoIPOptions{}},
		{"empty file", write("empty.mmdb", nil), GeoIPOptions{}},
		{"garbage", write("garbage.mmdb", []byte(strings.Repeat("not a database ", 1000))), GeoIPOptions{}},
		{"truncated", write("truncated.mmdb", good[:len(good)/2]), GeoIPOptions{}},
		{"damaged tree", write("damaged.mmdb", damageTree(t, good)), GeoIPOptions{}},
		{"ASN database", write("asn.mmdb", buildDB(t, dbSpec{dbType: "GeoLite2-ASN"})), GeoIPOptions{}},
		{"unknown type", write("custom.mmdb", buildDB(t, dbSpec{dbType: "Acme-Geo"})), GeoIPOptions{}},
		{"directory", dir, GeoIPOptions{}},
		{"negative timeout", write("ok.mmdb", good), GeoIPOptions{LookupTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := OpenGeoIP(tt.path, tt.opts)
			if err == nil {
				g.Close()
				t.Fatalf("OpenGeoIP(%q): got nil error, want one", tt.path)
			}
			if !strings.HasPrefix(err.Error(), "sessionkit: ") {
				t.Errorf("got error %q, want prefix %q", err, "sessionkit: ")
			}
		})
	}
	t.Run("unsupported type is errUnsupportedDB", func(t *testing.T) {
		_, err := OpenGeoIP(filepath.Join(dir, "custom.mmdb"), GeoIPOptions{})
		if !errors.Is(err, errUnsupportedDB) {
			t.Errorf("got %v, want errUnsupportedDB", err)
		}
	})
}

// damageTree overwrites the search tree with records that point past the
// data section, leaving the metadata intact so that the file still opens:
// only the probe lookups at open can tell.
func damageTree(t testing.TB, db []byte) []byte {
	t.Helper()
	r, err := geoip2.OpenBytes(db)
	if err != nil {
		t.Fatal(err)
	}
	meta := r.Metadata()
	treeBytes := int(meta.NodeCount * meta.RecordSize / 4)
	out := append([]byte(nil), db...)
	for i := range treeBytes {
		out[i] = 0xfe
	}
	if _, err := geoip2.OpenBytes(out); err != nil {
		t.Fatalf("damaged database no longer opens, so it tests nothing: %v", err)
	}
	return out
}

func TestLookupDefaultsAndNil(t *testing.T) {
	t.Run("nil GeoIP", func(t *testing.T) {
		var g *GeoIP
		if got := g.Lookup(context.Background(), netip.MustParseAddr("81.2.69.142")); got != (Location{}) {
			t.Errorf("got %+v, want empty", got)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close: got %v, want nil", err)
		}
	})
	t.Run("nil context", func(t *testing.T) {
		g := openTestGeoIP(t, cityDB)
		//lint:ignore SA1012 a nil context is the point of the test
		if got := g.Lookup(nil, netip.MustParseAddr("81.2.69.142")); got != london {
			t.Errorf("got %+v, want %+v", got, london)
		}
	})
	t.Run("after Close", func(t *testing.T) {
		g, err := OpenGeoIP(writeDB(t, cityDB), GeoIPOptions{LookupTimeout: testBudget})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Lookup(context.Background(), netip.MustParseAddr("81.2.69.142")); got != london {
			t.Fatalf("before Close: got %+v, want %+v", got, london)
		}
		if err := g.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("second Close: got %v, want nil", err)
		}
		if got := g.Lookup(context.Background(), netip.MustParseAddr("81.2.69.142")); got != (Location{}) {
			t.Errorf("after Close: got %+v, want empty", got)
		}
	})
	t.Run("option defaults", func(t *testing.T) {
		g, err := OpenGeoIP(writeDB(t, cityDB), GeoIPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if g.timeout != defaultLookupTimeout {
			t.Errorf("timeout: got %v, want %v", g.timeout, defaultLookupTimeout)
		}
		if g.logger.Load() != slog.Default() {
			t.Errorf("logger: got %p, want slog.Default()", g.logger.Load())
		}
	})
}

func TestLookupTimeBudget(t *testing.T) {
	logger, logs := newTestLogger()
	g, err := OpenGeoIP(writeDB(t, cityDB), GeoIPOptions{Logger: logger, ReloadInterval: -1, LookupTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ip := netip.MustParseAddr("81.2.69.142")

	t.Run("done context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got := g.Lookup(ctx, ip); got != (Location{}) {
			t.Errorf("got %+v, want empty", got)
		}
	})
	// steppingClock returns a clock that advances by step at every read, so
	// that each lookup appears to take exactly step.
	steppingClock := func(step time.Duration) func() time.Time {
		now := time.Now()
		return func() time.Time { now = now.Add(step); return now }
	}
	t.Run("within budget", func(t *testing.T) {
		g.now = steppingClock(50 * time.Millisecond) // exactly the budget is still in time
		if got := g.Lookup(context.Background(), ip); got != london {
			t.Errorf("got %+v, want %+v", got, london)
		}
	})
	t.Run("slow lookup", func(t *testing.T) {
		g.now = steppingClock(51 * time.Millisecond)
		for range 5 {
			if got := g.Lookup(context.Background(), ip); got != (Location{}) {
				t.Fatalf("got %+v, want empty", got)
			}
		}
		if n := logs.Count(failTimeout); n != 1 {
			t.Errorf("got %d timeout log lines, want 1; logs:\n%s", n, logs)
		}
	})
	t.Run("deadline passes during the lookup", func(t *testing.T) {
		g.now = steppingClock(time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Cancel from inside the lookup by cancelling when the clock is read
		// the second time, that is, after the record has been decoded.
		reads := 0
		clock := g.now
		g.now = func() time.Time {
			if reads++; reads == 2 {
				cancel()
			}
			return clock()
		}
		if got := g.Lookup(ctx, ip); got != (Location{}) {
			t.Errorf("got %+v, want empty", got)
		}
	})
}

// TestLookupFileTruncatedInPlace rewrites the mapped file in place, which
// makes reading the map fault (SIGBUS). Lookup must turn that into an empty
// Location and one log line, not a crash.
func TestLookupFileTruncatedInPlace(t *testing.T) {
	logger, logs := newTestLogger()
	path := writeDB(t, cityDB)
	g, err := OpenGeoIP(path, GeoIPOptions{Logger: logger, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"81.2.69.142", "2001:620::1", "8.8.8.8"} {
		if got := g.Lookup(context.Background(), netip.MustParseAddr(ip)); got != (Location{}) {
			t.Errorf("Lookup(%s): got %+v, want empty", ip, got)
		}
	}
	if n := logs.Count(failPanic); n != 1 {
		t.Errorf("got %d panic log lines, want 1; logs:\n%s", n, logs)
	}
}

// TestLocationStrings checks that names from the database come out bounded
// and as valid UTF-8 even if the file holds something odd.
func TestLocationStrings(t *testing.T) {
	long := strings.Repeat("Ä", 100)
	tests := []struct {
		name                        string
		city, region, country, code string
		want                        Location
	}{
		{"all parts", "Oxford", "England", "United Kingdom", "GB", Location{Label: "Oxford, England, GB", City: "Oxford", Region: "England", Country: "United Kingdom", CountryCode: "GB"}},
		{"no code", "Oxford", "England", "", "", Location{Label: "Oxford, England", City: "Oxford", Region: "England"}},
		{"code only", "", "", "", "GB", Location{Label: "GB", CountryCode: "GB"}},
		{"nothing", "", "", "", "", Location{}},
		{"bad code", "", "", "Narnia", "narnia", Location{Label: "Narnia", Country: "Narnia"}},
		{"region equals city, any case", "Berlin", "berlin", "Germany", "DE", Location{Label: "Berlin, DE", City: "Berlin", Region: "berlin", Country: "Germany", CountryCode: "DE"}},
		{"invalid UTF-8 and controls", "Ber\xfflin\x00", "", "", "DE", Location{Label: "Ber\uFFFDlin, DE", City: "Ber\uFFFDlin", CountryCode: "DE"}},
		{"too long", long, "", "", "", Location{Label: strings.Repeat("Ä", 40), City: strings.Repeat("Ä", 40)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newLocation(tt.city, tt.region, tt.country, tt.code)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !utf8.ValidString(got.Label) {
				t.Errorf("label %q is not valid UTF-8", got.Label)
			}
		})
	}
}

// TestSetLogger moves the records to a new logger, as the Manager does
// with its own when it is built.
func TestSetLogger(t *testing.T) {
	var before, after bytes.Buffer
	path := writeDB(t, cityDB)
	g, err := OpenGeoIP(path, GeoIPOptions{Logger: slog.New(slog.NewTextHandler(&before, nil)), ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.SetLogger(slog.New(slog.NewTextHandler(&after, nil)))
	g.SetLogger(nil) // ignored
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	g.check()
	if before.Len() != 0 || !strings.Contains(after.String(), "geoip") {
		t.Errorf("records: before %q, after %q; want every record after SetLogger on the new logger", before.String(), after.String())
	}
	var nilGeo *GeoIP
	nilGeo.SetLogger(slog.Default()) // a nil GeoIP accepts it, like every method
}
