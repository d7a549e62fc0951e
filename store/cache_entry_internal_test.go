package store

import (
	"fmt"
	"math"
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
	longIdle := plain
	longIdle.IdleTimeout = 90 * 24 * time.Hour // more milliseconds than an entry holds
	oddIdle := plain
	oddIdle.IdleTimeout = 1500 * time.Microsecond
	return map[string]sessionkit.Session{"plain": plain, "every field": full, "zoned address": zoned,
		"IPv4-mapped address": mapped, "other AAL": custom, "long idle timeout": longIdle, "idle timeout in µs": oddIdle}
}

// TestCacheEntryRoundTrip: an entry gives back the session and the
// store's answer it was made from, exactly, and a slice of its own, as
// made and as a shard holds it.
func TestCacheEntryRoundTrip(t *testing.T) {
	prefix := [32]byte{1, 2, 3, 15: 4, 16: 0x50} // storedHash's 132 bits
	for name, s := range entrySessions() {
		for _, whole := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/whole hash=%v", name, whole), func(t *testing.T) {
				pk := backend.Peeked{TokenHash: prefix, TokenHashPrefix: true, Indexed: true}
				if whole {
					pk.TokenHash, pk.TokenHashPrefix = [32]byte{1, 2, 3, 31: 9}, false
				}
				if s.Bearer {
					pk.Refresh = backend.RefreshState{Hash: [32]byte{9, 8, 7}, Generation: 4}
				}
				made, ok := newCachedSession(&s, pk, 42)
				if !ok {
					t.Fatal("not cached")
				}
				var sh cacheShard
				sh.init()
				sh.put(&made)
				held, ok := sh.view(s.ID)
				if !ok {
					t.Fatal("the shard does not hold the entry put")
				}
				for _, e := range []*cachedSession{&made, &held} {
					if got := e.Session(); !reflect.DeepEqual(got, s) {
						t.Fatalf("Session:\n%+v\nwant\n%+v", got, s)
					}
					got := e.peek()
					if got.Entry != any(e) {
						t.Fatalf("peek: Entry %v, want the entry", got.Entry)
					}
					got.Entry = nil
					if got != pk {
						t.Fatalf("peek:\n%+v\nwant\n%+v", got, pk)
					}
					if e.e.deadline != 42 {
						t.Fatalf("deadline %d", e.e.deadline)
					}
					if len(s.ProvidersAccessed) > 0 {
						c := e.Session()
						c.ProvidersAccessed[0] = "changed"
						if again := e.Session(); !reflect.DeepEqual(again, s) {
							t.Fatalf("after the caller changed its copy: %+v", again)
						}
					}
				}
			})
		}
	}
	t.Run("address changes an entry cannot hold", func(t *testing.T) {
		for _, n := range []int{-1, math.MaxInt32 + 1} {
			s := entrySessions()["plain"]
			s.IPChangeCount = n
			if _, ok := newCachedSession(&s, backend.Peeked{TokenHashPrefix: true}, 0); ok {
				t.Errorf("cached a session with %d address changes, which an entry cannot give back", n)
			}
		}
	})
	t.Run("inexact time", func(t *testing.T) {
		s := entrySessions()["plain"]
		s.CreatedAt = time.Now() // a monotonic reading cannot be given back
		if _, ok := newCachedSession(&s, backend.Peeked{}, 0); ok {
			t.Fatal("cached a session it cannot give back exactly")
		}
	})
}

// TestCacheEntrySize: the cache holds up to MaxEntries of these, by value
// in its shards' maps. With no pointer in an entry the garbage collector
// never scans those maps, and at 128 bytes or less a map keeps an entry in
// place rather than as an object of its own (Go's maps do so up to 128).
// An entry of a plain cookie session (most of them) needs nothing beside it.
func TestCacheEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(cacheEntry{}); n > 128 {
		t.Errorf("cacheEntry is %d bytes, want at most 128", n)
	}
	if n := pointerWords(reflect.TypeFor[cacheEntry]()); n != 0 {
		t.Errorf("cacheEntry has %d words that may hold pointers, want none", n)
	}
	s := entrySessions()["plain"]
	pk := backend.Peeked{TokenHashPrefix: true, Indexed: true}
	v, ok := newCachedSession(&s, pk, 0)
	if !ok || v.rare != nil || v.e.flags&flagRare != 0 {
		t.Errorf("a plain cookie session: cached %v, rarely set fields %v; want cached without them", ok, v.rare)
	}
	if n := testing.AllocsPerRun(100, func() { newCachedSession(&s, pk, 0) }); n != 0 {
		t.Errorf("a plain cookie session's entry: %v allocations, want none", n)
	}
}

// TestShardLetsGoOfClients: a shard numbers its entries' clients and lets
// go of each with the last entry that holds it; a rarely set field goes
// with its entry.
func TestShardLetsGoOfClients(t *testing.T) {
	var sh cacheShard
	sh.init()
	sessions := entrySessions()
	plain, full := sessions["plain"], sessions["every field"]
	pk := backend.Peeked{TokenHashPrefix: true, Indexed: true}
	put := func(s sessionkit.Session) {
		t.Helper()
		v, ok := newCachedSession(&s, pk, 1)
		if !ok {
			t.Fatal("not cached")
		}
		sh.put(&v)
	}
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		plain.ID = id
		put(plain) // one client for the three
	}
	put(full)
	if len(sh.clients.index) != 2 || len(sh.rare) != 1 {
		t.Fatalf("%d clients and %d rare entries, want 2 and 1", len(sh.clients.index), len(sh.rare))
	}
	other := plain
	other.ID, other.UserAgent = ids[0], "another browser"
	put(other) // in place of ids[0]'s entry: its client is still held by two
	if got := sh.clients.slots[sh.m[ids[1]].client].refs; got != 2 || len(sh.clients.index) != 3 {
		t.Fatalf("the shared client held by %d, %d clients; want 2 and 3", got, len(sh.clients.index))
	}
	for _, id := range []uuid.UUID{ids[1], ids[2], full.ID} {
		sh.drop(id, sh.m[id])
	}
	if len(sh.clients.index) != 1 || len(sh.rare) != 0 || len(sh.clients.free) != 2 {
		t.Fatalf("after the drops: %d clients, %d rare entries, %d free numbers; want 1, 0, 2", len(sh.clients.index), len(sh.rare), len(sh.clients.free))
	}
	v, ok := sh.view(ids[0])
	if !ok || v.Session().UserAgent != "another browser" {
		t.Fatalf("the entry left: %v, %+v", ok, v.Session())
	}
	plain.ID = uuid.New()
	put(plain) // takes a free number
	if len(sh.clients.slots) != 3 || len(sh.clients.free) != 1 {
		t.Fatalf("%d numbers, %d free; want a free one taken", len(sh.clients.slots), len(sh.clients.free))
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
	var sh cacheShard
	sh.init()
	for range n {
		s.ID = uuid.New()
		v, ok := newCachedSession(&s, backend.Peeked{TokenHashPrefix: true, Indexed: true}, 0)
		if !ok {
			b.Fatal("not cached")
		}
		sh.put(&v)
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
	runtime.KeepAlive(&sh)
}
