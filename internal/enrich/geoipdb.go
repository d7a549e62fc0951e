package enrich

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
)

// maxGeoNameBytes bounds each name taken from the database. The files are
// trusted more than a User-Agent, but every session stores its location, and
// the longest real city names fit comfortably.
const maxGeoNameBytes = 80

// errUnsupportedDB rejects databases that are neither City nor Country ones.
var errUnsupportedDB = errors.New("not a GeoIP2/GeoLite2 City or Country database")

// database is one opened file. It is reference counted so that a reload can
// retire it while lookups are still reading its memory map: the map is
// unmapped only when the last reader lets go, never under a reader's feet.
type database struct {
	reader   *geoip2.Reader
	city     bool // City database; otherwise Country
	ipv4Only bool
	file     os.FileInfo // the file as stat'ed before opening; nil if unknown
	dbType   string
	built    time.Time

	// refs counts the owner (the GeoIP that publishes it) plus each lookup in
	// flight. It only goes down to zero once, and then the reader is closed.
	refs    atomic.Int64
	onClose func(error) // reports a close error; may be nil
}

// openDatabase memory-maps path and checks that it is a City or Country
// database that can answer lookups. file is recorded as the file's identity.
func openDatabase(path string, file os.FileInfo) (*database, error) {
	r, err := geoip2.Open(path)
	if err != nil {
		if r != nil { // geoip2 returns the mapped reader with an unknown-type error
			_ = r.Close()
		}
		var unknown geoip2.UnknownDatabaseTypeError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("%w: type %q", errUnsupportedDB, unknown.DatabaseType)
		}
		return nil, err
	}
	meta := r.Metadata()
	db := &database{reader: r, file: file, dbType: meta.DatabaseType, built: meta.BuildTime().UTC()}
	switch {
	case strings.Contains(meta.DatabaseType, "City"):
		db.city = true
	case strings.Contains(meta.DatabaseType, "Country"):
	default:
		_ = r.Close()
		return nil, fmt.Errorf("%w: type %q", errUnsupportedDB, meta.DatabaseType)
	}
	db.ipv4Only = meta.IPVersion == 4
	if err := db.probe(); err != nil {
		_ = r.Close()
		return nil, err
	}
	db.refs.Store(1)
	return db, nil
}

// probeAddrs are well-known public addresses decoded once at open, so that a
// file whose header is fine but whose tree or data is damaged is refused
// before it replaces a working one. A full Reader.Verify would catch more,
// but it walks the whole file and builds a map of every record, which is too
// much memory and time to spend on every reload of a 60 MB City database.
var probeAddrs = []netip.Addr{
	netip.MustParseAddr("1.1.1.1"),
	netip.MustParseAddr("8.8.8.8"),
	netip.MustParseAddr("81.2.69.142"),
	netip.MustParseAddr("2001:4860:4860::8888"),
	netip.MustParseAddr("2a02:ff0::1"),
}

func (db *database) probe() error {
	for _, ip := range probeAddrs {
		if _, err := db.lookup(ip); err != nil {
			return fmt.Errorf("probe lookup: %w", err)
		}
	}
	return nil
}

// acquire takes a reference for a lookup; it fails once the database has
// been retired and its last reader has gone.
func (db *database) acquire() bool {
	for {
		n := db.refs.Load()
		if n <= 0 {
			return false
		}
		if db.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes the reader.
func (db *database) release() error {
	if db.refs.Add(-1) != 0 {
		return nil
	}
	err := db.reader.Close()
	if err != nil && db.onClose != nil {
		db.onClose(err)
	}
	return err
}

// lookup finds ip, which must be unmapped and without zone. The caller holds
// a reference.
func (db *database) lookup(ip netip.Addr) (Location, error) {
	if db.ipv4Only && ip.Is6() {
		return Location{}, nil // cannot be in the file; the reader would call it an error
	}
	if db.city {
		rec, err := db.reader.City(ip)
		if err != nil {
			return Location{}, err
		}
		var region string
		if len(rec.Subdivisions) > 0 { // many records have none (geoip2-golang#32, #49)
			region = rec.Subdivisions[0].Names.English
		}
		return newLocation(rec.City.Names.English, region, rec.Country.Names.English, rec.Country.ISOCode), nil
	}
	rec, err := db.reader.Country(ip)
	if err != nil {
		return Location{}, err
	}
	return newLocation("", "", rec.Country.Names.English, rec.Country.ISOCode), nil
}

// newLocation bounds and cleans the names and builds the label.
//
// The label is "City, Region, CC" with empty parts left out, and the region
// also left out when it repeats the city ("Singapore, SG"). A record with
// neither city nor region, which is every record of a Country database,
// reads as the country's English name ("United Kingdom"), or its code if the
// name is missing.
func newLocation(city, region, country, code string) Location {
	l := Location{
		City:        cleanText(city, maxGeoNameBytes),
		Region:      cleanText(region, maxGeoNameBytes),
		Country:     cleanText(country, maxGeoNameBytes),
		CountryCode: countryCode(code),
	}
	switch {
	case l.City != "" || l.Region != "":
		parts := make([]string, 0, 3)
		if l.City != "" {
			parts = append(parts, l.City)
		}
		if l.Region != "" && !strings.EqualFold(l.Region, l.City) {
			parts = append(parts, l.Region)
		}
		if l.CountryCode != "" {
			parts = append(parts, l.CountryCode)
		}
		l.Label = strings.Join(parts, ", ")
	case l.Country != "":
		l.Label = l.Country
	default:
		l.Label = l.CountryCode
	}
	return l
}

// countryCode returns code if it looks like ISO 3166-1 alpha-2, else "".
func countryCode(code string) string {
	if len(code) != 2 {
		return ""
	}
	for i := 0; i < 2; i++ {
		if code[i] < 'A' || code[i] > 'Z' {
			return ""
		}
	}
	return code
}
