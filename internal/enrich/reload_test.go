package enrich

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Two versions of a database that disagree about 81.2.69.142.
var (
	placesA = []place{{network: "81.2.69.0/24", city: "London", subdivisions: [][2]string{{"ENG", "England"}}, country: [2]string{"GB", "United Kingdom"}}}
	placesB = []place{{network: "81.2.69.0/24", city: "Zürich", subdivisions: [][2]string{{"ZH", "Zurich"}}, country: [2]string{"CH", "Switzerland"}}}
	labelA  = "London, England, GB"
	labelB  = "Zürich, Zurich, CH"
	probeIP = netip.MustParseAddr("81.2.69.142")
)

const reloadInterval = 2 * time.Millisecond

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitChecks waits until the watcher has looked at the file n more times, so
// that a test can assert that something did not happen without guessing a
// sleep.
func waitChecks(t *testing.T, g *GeoIP, n uint64) {
	t.Helper()
	target := g.checks.Load() + n
	eventually(t, "file checks", func() bool { return g.checks.Load() >= target })
}

func lookupLabel(g *GeoIP) string {
	return g.Lookup(context.Background(), probeIP).Label
}

func TestReload(t *testing.T) {
	logger, logs := newTestLogger()
	path := writeDB(t, dbSpec{dbType: "GeoIP2-City", places: placesA})
	g, err := OpenGeoIP(path, GeoIPOptions{Logger: logger, ReloadInterval: reloadInterval, LookupTimeout: testBudget})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := lookupLabel(g); got != labelA {
		t.Fatalf("before reload: got %q, want %q", got, labelA)
	}

	t.Run("new database replaces the old", func(t *testing.T) {
		writeFileAtomic(t, path, buildDB(t, dbSpec{dbType: "GeoIP2-City", places: placesB}))
		eventually(t, "database B", func() bool { return lookupLabel(g) == labelB })
		// The watcher logs the reload just after it swaps the database in.
		eventually(t, "the reload log", func() bool { return logs.Count("geoip database reloaded") > 0 })
		waitChecks(t, g, 5)
		if n := logs.Count("geoip database reloaded"); n != 1 {
			t.Errorf("got %d reload log lines, want 1; logs:\n%s", n, logs)
		}
	})

	t.Run("garbage keeps the old and logs once", func(t *testing.T) {
		writeFileAtomic(t, path, []byte("this is not a MaxMind database"))
		eventually(t, "the reload failure log", func() bool { return logs.Count(failReload) > 0 })
		waitChecks(t, g, 20)
		if got := lookupLabel(g); got != labelB {
			t.Errorf("got %q, want %q", got, labelB)
		}
		if n := logs.Count(failReload); n != 1 {
			t.Errorf("got %d reload failure log lines, want 1; logs:\n%s", n, logs)
		}
		for line := range strings.Lines(logs.String()) {
			if !strings.Contains(line, failReload) {
				continue
			}
			for _, attr := range []string{"level=WARN", "event=" + failReload, "geoip_path=" + path, "error="} {
				if !strings.Contains(line, attr) {
					t.Errorf("got log line %q, want it to contain %q", line, attr)
				}
			}
		}
	})

	t.Run("a different broken file logs again, once", func(t *testing.T) {
		writeFileAtomic(t, path, nil) // empty
		eventually(t, "the second failure log", func() bool { return logs.Count(failReload) == 2 })
		waitChecks(t, g, 20)
		if n := logs.Count(failReload); n != 2 {
			t.Errorf("got %d reload failure log lines, want 2; logs:\n%s", n, logs)
		}
		if got := lookupLabel(g); got != labelB {
			t.Errorf("got %q, want %q", got, labelB)
		}
	})

	t.Run("vanished file keeps the old and logs once", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the unavailable log", func() bool { return logs.Count(failStat) > 0 })
		waitChecks(t, g, 20)
		if n := logs.Count(failStat); n != 1 {
			t.Errorf("got %d unavailable log lines, want 1; logs:\n%s", n, logs)
		}
		if got := lookupLabel(g); got != labelB {
			t.Errorf("got %q, want %q", got, labelB)
		}
	})

	t.Run("a good file after failures is loaded", func(t *testing.T) {
		writeFileAtomic(t, path, buildDB(t, dbSpec{dbType: "GeoIP2-City", places: placesA}))
		eventually(t, "database A again", func() bool { return lookupLabel(g) == labelA })
	})

	t.Run("Close stops the watcher", func(t *testing.T) {
		if err := g.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-g.done:
		default:
			t.Fatal("watcher still running after Close")
		}
		checks := g.checks.Load()
		writeFileAtomic(t, path, buildDB(t, dbSpec{dbType: "GeoIP2-City", places: placesB}))
		time.Sleep(20 * reloadInterval)
		if got := g.checks.Load(); got != checks {
			t.Errorf("got %d file checks after Close, want %d", got, checks)
		}
		if got := lookupLabel(g); got != "" {
			t.Errorf("after Close: got %q, want empty", got)
		}
	})
}

// TestReloadSameFileIsNotReopened checks that an unchanged file is left alone.
func TestReloadSameFileIsNotReopened(t *testing.T) {
	logger, logs := newTestLogger()
	path := writeDB(t, dbSpec{dbType: "GeoIP2-City", places: placesA})
	g, err := OpenGeoIP(path, GeoIPOptions{Logger: logger, ReloadInterval: reloadInterval})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	before := g.cur.Load()
	waitChecks(t, g, 20)
	if after := g.cur.Load(); after != before {
		t.Errorf("got a new database for an unchanged file")
	}
	if got := logs.String(); got != "" {
		t.Errorf("got log output %q, want none", got)
	}
}

// TestReloadConcurrentLookups swaps databases back and forth while lookups
// run, under -race. Every lookup must see one whole database or the other,
// and none may touch an unmapped file (that would crash the test binary).
func TestReloadConcurrentLookups(t *testing.T) {
	logger, logs := newTestLogger()
	path := writeDB(t, dbSpec{dbType: "GeoIP2-City", places: placesA})
	// With more busy goroutines than CPUs (and -race), a lookup can be
	// descheduled past the default budget; this test is about reloads.
	g, err := OpenGeoIP(path, GeoIPOptions{Logger: logger, ReloadInterval: reloadInterval, LookupTimeout: testBudget})
	if err != nil {
		t.Fatal(err)
	}
	dbA := buildDB(t, dbSpec{dbType: "GeoIP2-City", places: placesA})
	dbB := buildDB(t, dbSpec{dbType: "GeoIP2-City", places: placesB})

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		lookups atomic.Int64
		bad     atomic.Value // first unexpected label
	)
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				switch got := lookupLabel(g); got {
				case labelA, labelB:
				case "":
					if !stop.Load() { // empty is only right once Close has begun
						bad.CompareAndSwap(nil, "(empty before Close)")
					}
				default:
					bad.CompareAndSwap(nil, got)
				}
				lookups.Add(1)
			}
		})
	}
	for i := range 10 {
		data, want := dbB, labelB
		if i%2 == 1 {
			data, want = dbA, labelA
		}
		writeFileAtomic(t, path, data)
		eventually(t, "reload to "+want, func() bool { return lookupLabel(g) == want })
	}
	// Close while lookups are still running, then stop them.
	stop.Store(true)
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Errorf("got label %q during reloads, want %q or %q; logs:\n%s", v, labelA, labelB, logs)
	}
	if lookups.Load() == 0 {
		t.Error("got no lookups, want some")
	}
}

// TestRetiredDatabaseClosedAfterLastLookup checks the reference counting
// directly: a retired database stays open while a lookup holds it.
func TestRetiredDatabaseClosedAfterLastLookup(t *testing.T) {
	path := writeDB(t, cityDB)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openDatabase(path, fi)
	if err != nil {
		t.Fatal(err)
	}
	if !db.acquire() { // a lookup in flight
		t.Fatal("acquire on a live database: got false, want true")
	}
	if err := db.release(); err != nil { // the owner retires it
		t.Fatal(err)
	}
	if got, err := db.lookup(probeIP); err != nil || got != london {
		t.Fatalf("lookup on a retired database still in use: got %+v, %v, want %+v", got, err, london)
	}
	if err := db.release(); err != nil { // the lookup finishes: now it closes
		t.Fatal(err)
	}
	if db.acquire() {
		t.Error("acquire on a closed database: got true, want false")
	}
}
