package geoiptest

import (
	"net/netip"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"
)

func TestWriteCityDecodes(t *testing.T) {
	path, err := WriteCity(t.TempDir(), Demo)
	if err != nil {
		t.Fatal(err)
	}
	db, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string][3]string{
		"203.0.113.7":   {"London", "England", "GB"},
		"198.51.100.23": {"Paris", "Île-de-France", "FR"},
		"2001:db8::1":   {"São Paulo", "São Paulo", "BR"},
	} {
		rec, err := db.City(netip.MustParseAddr(ip))
		if err != nil {
			t.Fatal(err)
		}
		got := [3]string{rec.City.Names.English, "", rec.Country.ISOCode}
		if len(rec.Subdivisions) > 0 {
			got[1] = rec.Subdivisions[0].Names.English
		}
		if got != want {
			t.Errorf("%s: got %v, want %v", ip, got, want)
		}
	}
}
