package sessionkit

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit/internal/geoiptest"
	"github.com/sessionkit/sessionkit/internal/logtest"
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

// TestEnricherLogsReachTheManagerLogger checks that the one logger option
// reaches the GeoIP database's records too.
func TestEnricherLogsReachTheManagerLogger(t *testing.T) {
	var logs, fallback logtest.Buffer
	def := slog.Default()
	slog.SetDefault(fallback.Logger())
	t.Cleanup(func() { slog.SetDefault(def) })

	path, err := geoiptest.WriteCity(t.TempDir(), geoiptest.Demo)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEnricher(EnricherOptions{GeoIPPath: path, ReloadInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	m, err := New(nopStore{}, WithEnricher(e), WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if err := os.Remove(path); err != nil { // the reloader logs the vanished file
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs.Count("geoip") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if logs.Count("geoip") == 0 || fallback.Count("geoip") != 0 {
		t.Errorf("GeoIP records: Manager's logger %q, slog.Default() %q; want them on the Manager's", logs.String(), fallback.String())
	}
}
