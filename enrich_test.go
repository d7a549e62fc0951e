package sessionkit

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit/internal/geoiptest"
)

func TestNewEnricherLookupTimeout(t *testing.T) {
	path, err := geoiptest.WriteCity(t.TempDir(), geoiptest.Demo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEnricher(EnricherOptions{GeoIPPath: path, LookupTimeout: -time.Millisecond}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative LookupTimeout: got %v, want ErrInvalid", err)
	}
	e, err := NewEnricher(EnricherOptions{GeoIPPath: path, LookupTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Locate(context.Background(), netip.MustParseAddr("203.0.113.7")); got.City != "London" {
		t.Errorf("Locate with a one-minute budget: got %+v, want London", got)
	}
}
