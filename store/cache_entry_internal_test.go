package store

import (
	"net/netip"
	"reflect"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
)

// entrySessions are sessions of every shape the cache holds: a plain
// cookie session, and one with every optional field set.
func entrySessions() map[string]sessionkit.Session {
	at := func(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
	plain := sessionkit.Session{
		ID: uuid.New(), UserID: uuid.New(), UserAgent: "Mozilla/5.0 (Macintosh) Chrome/131.0",
		Device:    sessionkit.Device{Label: "Chrome 131 on macOS", Browser: "Chrome", BrowserVersion: "131", OS: "macOS", Platform: "desktop"},
		IPAddress: netip.MustParseAddr("203.0.113.7"), LastIPAddress: netip.MustParseAddr("203.0.113.7"),
		CreatedAt: at(1_780_000_000_000), LastActivityAt: at(1_780_000_060_000), ExpiresAt: at(1_780_086_400_000),
		AuthenticatedAt: at(1_780_000_000_000), AAL: sessionkit.AAL1,
	}
	full := plain
	full.ID, full.UserID = uuid.New(), uuid.New()
	full.IPAddress = netip.MustParseAddr("2001:db8::1")
	full.LastIPAddress = netip.MustParseAddr("198.51.100.9")
	full.Location = sessionkit.Location{Label: "London, England, GB", City: "London", Country: "United Kingdom", CountryCode: "GB"}
	full.IdleTimeout = 30 * time.Minute
	full.RefreshTokenID = "rt-0123456789abcdef"
	full.IPChangeCount = 3
	full.LastProviderAccessed, full.LastProviderAccessAt = "schwab", at(1_780_000_050_000)
	full.ProvidersAccessed = []string{"fidelity", "schwab"}
	full.Bearer = true
	full.AAL = sessionkit.AAL2
	full.ImpersonatedBy = "support@example.com"
	zoned := plain
	zoned.IPAddress = netip.MustParseAddr("fe80::1%eth0")
	mapped := plain
	mapped.LastIPAddress = netip.MustParseAddr("::ffff:203.0.113.8") // not the same as 203.0.113.8
	custom := plain
	custom.AAL = "aal-custom"
	return map[string]sessionkit.Session{"plain": plain, "every field": full, "zoned address": zoned,
		"IPv4-mapped address": mapped, "other AAL": custom}
}

// TestCacheEntryRoundTrip: an entry gives back the session and the
// store's answer it was made from, exactly, and a slice of its own.
func TestCacheEntryRoundTrip(t *testing.T) {
	for name, s := range entrySessions() {
		t.Run(name, func(t *testing.T) {
			pk := backend.Peeked{TokenHash: [32]byte{1, 2, 3}, TokenHashPrefix: true, Indexed: true}
			if s.Bearer {
				pk.Refresh = backend.RefreshState{Hash: [32]byte{9, 8, 7}, Generation: 4}
			}
			e, ok := newCacheEntry(&s, pk, 42)
			if !ok {
				t.Fatal("not cached")
			}
			if got := e.Session(); !reflect.DeepEqual(got, s) {
				t.Fatalf("Session:\n%+v\nwant\n%+v", got, s)
			}
			got := e.peek()
			if got.Entry != e {
				t.Fatalf("peek: Entry %v, want the entry", got.Entry)
			}
			got.Entry = nil
			if got != pk {
				t.Fatalf("peek:\n%+v\nwant\n%+v", got, pk)
			}
			if e.deadline != 42 {
				t.Fatalf("deadline %d", e.deadline)
			}
			if len(s.ProvidersAccessed) > 0 {
				c := e.Session()
				c.ProvidersAccessed[0] = "changed"
				if again := e.Session(); !reflect.DeepEqual(again, s) {
					t.Fatalf("after the caller changed its copy: %+v", again)
				}
			}
		})
	}
	t.Run("inexact time", func(t *testing.T) {
		s := entrySessions()["plain"]
		s.CreatedAt = time.Now() // a monotonic reading cannot be given back
		if _, ok := newCacheEntry(&s, backend.Peeked{}, 0); ok {
			t.Fatal("cached a session it cannot give back exactly")
		}
	})
}

// TestCacheEntrySize: the cache holds up to MaxEntries of these, and the
// garbage collector reads every pointer word of every one on each cycle.
// An entry of a plain cookie session (most of them) is one allocation, of
// the 192-byte size class, with three words that may hold pointers: the
// shared client, the AAL and the rarely set fields.
func TestCacheEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(cacheEntry{}); n > 192 {
		t.Errorf("cacheEntry is %d bytes, want at most 192", n)
	}
	if n := pointerWords(reflect.TypeFor[cacheEntry]()); n > 3 {
		t.Errorf("cacheEntry has %d words that may hold pointers, want at most 3", n)
	}
	s := entrySessions()["plain"]
	e, ok := newCacheEntry(&s, backend.Peeked{}, 0)
	if !ok || e.rare != nil {
		t.Errorf("a plain cookie session: cached %v, rarely set fields %v; want cached without them", ok, e.rare)
	}
	if n := testing.AllocsPerRun(100, func() { newCacheEntry(&s, backend.Peeked{}, 0) }); n != 1 {
		t.Errorf("a plain cookie session's entry: %v allocations, want 1", n)
	}
}

// pointerWords counts the words of t that may hold a pointer.
func pointerWords(t reflect.Type) int {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.String, reflect.Slice:
		return 1
	case reflect.Interface:
		return 2
	case reflect.Array:
		return t.Len() * pointerWords(t.Elem())
	case reflect.Struct:
		n := 0
		for i := range t.NumField() {
			n += pointerWords(t.Field(i).Type)
		}
		return n
	}
	return 0
}

// BenchmarkCacheEntries is what 100,000 cached sessions (plain cookie
// sessions of one browser, the usual case) cost the heap and the garbage
// collector: the live heap per entry, map included, and the collector's
// CPU per cycle (runtime/metrics), each op one forced collection.
func BenchmarkCacheEntries(b *testing.B) {
	const n = 100_000
	s := entrySessions()["plain"]
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := make(map[uuid.UUID]*cacheEntry)
	for range n {
		s.ID = uuid.New()
		e, ok := newCacheEntry(&s, backend.Peeked{Indexed: true}, 0)
		if !ok {
			b.Fatal("not cached")
		}
		m[s.ID] = e
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	gc := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(gc)
	start := gc[0].Value.Float64()
	for b.Loop() {
		runtime.GC()
	}
	metrics.Read(gc)
	b.ReportMetric((gc[0].Value.Float64()-start)*1e3/float64(b.N), "gc-cpu-ms/cycle")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/entry")
	b.ReportMetric(0, "ns/op")
	runtime.KeepAlive(m)
}
