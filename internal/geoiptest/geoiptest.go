// Package geoiptest writes small GeoIP2 City databases for tests and demos,
// laid out like MaxMind's files so geoip2-golang decodes them as real ones.
package geoiptest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Place is one network and where it is. Empty fields are left out of the record.
type Place struct {
	Network     string // CIDR, e.g. "81.2.69.0/24" or "2a02:db8::/32"
	City        string
	Region      string // first subdivision
	RegionCode  string
	Country     string // English name
	CountryCode string // ISO 3166-1 alpha-2
}

// Demo are documentation and test networks placed in a few cities, for the
// example app and tests: 203.0.113.0/24 London, 198.51.100.0/24 Paris,
// 192.0.2.0/24 New York, 2001:db8::/32 São Paulo.
var Demo = []Place{
	{Network: "203.0.113.0/24", City: "London", Region: "England", RegionCode: "ENG", Country: "United Kingdom", CountryCode: "GB"},
	{Network: "198.51.100.0/24", City: "Paris", Region: "Île-de-France", RegionCode: "IDF", Country: "France", CountryCode: "FR"},
	{Network: "192.0.2.0/24", City: "New York", Region: "New York", RegionCode: "NY", Country: "United States", CountryCode: "US"},
	{Network: "2001:db8::/32", City: "São Paulo", Region: "São Paulo", RegionCode: "SP", Country: "Brazil", CountryCode: "BR"},
}

// WriteCity writes a GeoIP2-City database holding places to dir and returns its path.
func WriteCity(dir string, places []Place) (string, error) {
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		RecordSize:              28,
		IncludeReservedNetworks: true, // the demo networks are documentation ranges
	})
	if err != nil {
		return "", err
	}
	for _, p := range places {
		_, network, err := net.ParseCIDR(p.Network)
		if err != nil {
			return "", fmt.Errorf("geoiptest: %q: %w", p.Network, err)
		}
		if err := w.Insert(network, record(p)); err != nil {
			return "", fmt.Errorf("geoiptest: insert %q: %w", p.Network, err)
		}
	}
	path := filepath.Join(dir, "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

func names(en string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(en)} }

func record(p Place) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if p.CountryCode != "" {
		c := mmdbtype.Map{"iso_code": mmdbtype.String(p.CountryCode), "names": names(p.Country)}
		rec["country"] = c
		rec["registered_country"] = c
	}
	if p.City != "" {
		rec["city"] = mmdbtype.Map{"names": names(p.City)}
	}
	if p.Region != "" {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(p.RegionCode), "names": names(p.Region)}}
	}
	return rec
}
