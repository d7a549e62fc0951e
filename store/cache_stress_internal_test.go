package store

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
)

// stressCache is a Cache that is on, with no Redis: only the in-memory
// paths (store, replace, forget, sweep, clearAll, reserve, a hit) run.
func stressCache(maxEntries int, ttl time.Duration) *Cache {
	c := &Cache{ttl: ttl, clock: time.Now, maxEntries: int64(maxEntries), done: make(chan struct{})}
	c.base = c.clock()
	n := cacheShards
	for n > 1 && n > maxEntries {
		n /= 2
	}
	c.mask = uint8(n - 1)
	for i := range n {
		c.shards[i].init()
	}
	c.on.Store(true)
	c.epoch.Store(1)
	return c
}

// stressSession is a session whose every field names id, so that a session
// served with any field of another can be told.
func stressSession(id uuid.UUID, version int) (sessionkit.Session, backend.Peeked) {
	tag := id.String()
	at := time.UnixMilli(1_780_000_000_000 + int64(version)).UTC()
	s := sessionkit.Session{
		ID: id, UserID: uuid.NewSHA1(uuid.NameSpaceOID, id[:]), UserAgent: "ua-" + tag,
		Device:    sessionkit.Device{Label: "dev-" + tag},
		Location:  sessionkit.Location{City: "city-" + tag},
		IPAddress: netip.AddrFrom16([16]byte(id)), LastIPAddress: netip.AddrFrom16([16]byte(id)),
		CreatedAt: at, LastActivityAt: time.Now().UTC().Truncate(time.Millisecond), ExpiresAt: at.Add(24 * time.Hour),
		AuthenticatedAt: at, AAL: sessionkit.AAL1,
	}
	pk := backend.Peeked{Indexed: true, TokenHashPrefix: true}
	h := sha256.Sum256(id[:])
	copy(pk.TokenHash[:17], h[:17])
	pk.TokenHash[16] &= 0xf0
	switch id[0] % 4 { // a quarter plain with a shared client, the rest with rare fields
	case 0:
		s.UserAgent, s.Device, s.Location = "shared", sessionkit.Device{}, sessionkit.Location{}
	case 1:
		s.Bearer, s.RefreshTokenID = true, "rt-"+tag
		pk.Refresh = backend.RefreshState{Hash: h, Generation: uint32(id[1])}
	case 2:
		s.ProvidersAccessed = []string{"p-" + tag}
		s.LastProviderAccessed, s.LastProviderAccessAt = "p-"+tag, at
		s.ImpersonatedBy = "imp-" + tag
	case 3:
		pk.TokenHashPrefix, pk.TokenHash = false, h
		s.AAL = "aal-" + tag
	}
	return s, pk
}

func checkServed(t *testing.T, id uuid.UUID, got sessionkit.Session, pk backend.Peeked) error {
	want, wpk := stressSession(id, 0)
	want.LastActivityAt, want.CreatedAt, want.ExpiresAt, want.AuthenticatedAt, want.LastProviderAccessAt = got.LastActivityAt, got.CreatedAt, got.ExpiresAt, got.AuthenticatedAt, got.LastProviderAccessAt
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("served %s:\n%+v\nwant\n%+v", id, got, want)
	}
	pk.Entry = nil
	if pk != wpk {
		return fmt.Errorf("served %s: peeked %+v, want %+v", id, pk, wpk)
	}
	return nil
}

// TestCacheStress races hits, stores, replaces, forgets, sweeps,
// clearAll and reserve's evictions on caches of a few entries (every shard
// full, so that reserve evicts all the time), over sessions whose every
// field names their id, most with rarely set fields and a client of their
// own: every session served, at once or later from the request's copy,
// must be its own, and in the end the shards' books balance (entries,
// clients' counts, rare fields).
func TestCacheStress(t *testing.T) {
	for _, maxEntries := range []int{1, 3, 8, 200} {
		t.Run(fmt.Sprint(maxEntries), func(t *testing.T) {
			c := stressCache(maxEntries, 20*time.Millisecond)
			ids := make([]uuid.UUID, 64)
			for i := range ids {
				ids[i] = uuid.New()
				ids[i][15] = byte(i % 4) // few shards: they churn
				ids[i][0] = byte(i)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			var fails atomic.Int64
			var hits atomic.Int64
			report := func(err error) {
				if err != nil && fails.Add(1) < 5 {
					t.Error(err)
				}
			}
			held := make(chan *cachedSession, 1024)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for !stop.Load() {
						id := ids[rng.IntN(len(ids))]
						sh := c.shard(id)
						switch op := rng.IntN(10); {
						case op < 4:
							if e, ok := c.hit(sh, id); ok {
								hits.Add(1)
								report(checkServed(t, id, e.Session(), e.peek()))
								select {
								case held <- e:
								default:
								}
							}
						case op < 6:
							s, pk := stressSession(id, rng.IntN(100))
							c.store(sh, id, s, pk, c.epoch.Load(), sh.gen.Load(), c.now()+int64(c.ttl))
						case op < 8:
							epoch := c.epoch.Load()
							sh.mu.RLock()
							old, ok := sh.view(id)
							sh.mu.RUnlock()
							if ok {
								s, _ := stressSession(id, rng.IntN(100))
								if rng.IntN(2) == 0 {
									c.replace(sh, id, &old, s, old.peek(), epoch)
								} else {
									_, pk := stressSession(id, 0)
									c.replace(sh, id, &old, s, pk, epoch)
								}
							}
						case op < 9:
							c.forget(id)
						default:
							switch rng.IntN(20) {
							case 0:
								c.clearAll()
							case 1, 2, 3:
								c.sweep()
							}
						}
					}
				}()
			}
			wg.Add(1)
			go func() { // requests reading their context's copy later
				defer wg.Done()
				for !stop.Load() {
					select {
					case e := <-held:
						report(checkServed(t, e.id, e.Session(), e.peek()))
					case <-time.After(time.Millisecond):
					}
				}
			}()
			time.Sleep(time.Second)
			stop.Store(true)
			wg.Wait()
			// The books balance: entries, clients and rare fields.
			total := 0
			for i := 0; i <= int(c.mask); i++ {
				sh := &c.shards[i]
				total += len(sh.m)
				refs := map[uint32]int32{}
				rare := 0
				for id, e := range sh.m {
					refs[e.client]++
					if e.flags&flagRare != 0 {
						rare++
						if sh.rare[id] == nil {
							t.Errorf("shard %d: %s has flagRare but no rare fields", i, id)
						}
					}
				}
				if rare != len(sh.rare) {
					t.Errorf("shard %d: %d entries with flagRare, %d rare fields held", i, rare, len(sh.rare))
				}
				for n, r := range refs {
					if sh.clients.slots[n].refs != r {
						t.Errorf("shard %d: client %d counted %d, held by %d", i, n, sh.clients.slots[n].refs, r)
					}
				}
				if len(sh.clients.index) != len(refs) {
					t.Errorf("shard %d: %d clients indexed, %d held", i, len(sh.clients.index), len(refs))
				}
			}
			if n := c.entries.Load(); n != int64(total) || total > maxEntries {
				t.Errorf("entries counted %d, held %d, max %d", n, total, maxEntries)
			}
			if hits.Load() == 0 {
				t.Error("no request was served from memory: the race ran without hits")
			}
		})
	}
}

// TestCacheStressRedis: one instance over Redis, a cache of a few
// entries, sessions of distinct user agents; authentications (hits, misses,
// address changes through Touch, queued writes through TouchAll), fresh
// reads, provider records, announcements, sweeps and clearAll race. Every
// session served must be its own, and once everything is written the cache
// must hold each session as Redis does, or not at all.
func TestCacheStressRedis(t *testing.T) {
	for _, maxEntries := range []int{2, 16, 1000} {
		t.Run(fmt.Sprint(maxEntries), func(t *testing.T) {
			ctx := t.Context()
			r, c := onCacheWith(t, CacheOptions{TTL: MaxCacheTTL, MaxEntries: maxEntries})
			m, err := sessionkit.New(c, sessionkit.WithActivityThrottle(0), sessionkit.WithActivityWriteDelay(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			const n = 24
			type sess struct {
				id    uuid.UUID
				token string
				ua    string
				user  uuid.UUID
			}
			ss := make([]sess, n)
			for i := range ss {
				ua := fmt.Sprintf("Mozilla/5.0 agent-%d", i)
				user := uuid.New()
				res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: "203.0.113.7", UserAgent: ua})
				if err != nil {
					t.Fatal(err)
				}
				ss[i] = sess{res.Session.ID, res.Token, res.Session.UserAgent, user}
			}
			ips := []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.8")}
			var stop atomic.Bool
			var wg sync.WaitGroup
			var fails atomic.Int64
			check := func(i int, s sessionkit.Session, where string) {
				if s.ID != ss[i].id || s.UserAgent != ss[i].ua || s.UserID != ss[i].user {
					if fails.Add(1) < 5 {
						t.Errorf("%s: session %d served id %s ua %q user %s; want %s %q %s", where, i, s.ID, s.UserAgent, s.UserID, ss[i].id, ss[i].ua, ss[i].user)
					}
				}
			}
			for w := range 12 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 2))
					for !stop.Load() {
						i := rng.IntN(n)
						switch op := rng.IntN(20); {
						case op < 12:
							ip := ips[0]
							if rng.IntN(10) == 0 { // an address change, written through Touch
								ip = ips[1]
							}
							res, err := m.Authenticate(ctx, ss[i].token, ip)
							if err != nil {
								t.Errorf("authenticate: %v", err)
								return
							}
							check(i, res.Session, "Authenticate")
						case op < 15:
							s, _, err := c.Peek(ctx, ss[i].id)
							if err == nil {
								check(i, s, "Peek")
							}
						case op < 16:
							s, _, err := c.PeekFresh(ctx, ss[i].id)
							if err == nil {
								check(i, s, "PeekFresh")
							}
						case op < 17:
							if _, err := m.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: ss[i].id, ProviderName: fmt.Sprintf("p%d", rng.IntN(3))}); err != nil {
								t.Errorf("record: %v", err)
							}
						case op < 18:
							c.forget(ss[i].id)
						case op < 19:
							c.sweep()
						default:
							if rng.IntN(10) == 0 {
								c.clearAll()
							}
						}
					}
				})
			}
			time.Sleep(2 * time.Second)
			stop.Store(true)
			wg.Wait()
			if err := m.Close(ctx); err != nil { // the queued writes
				t.Fatal(err)
			}
			stale := 0
			for i := range ss {
				sh := c.shard(ss[i].id)
				sh.mu.RLock()
				v, held := sh.view(ss[i].id)
				sh.mu.RUnlock()
				if !held {
					continue
				}
				got := v.Session()
				want := r.sessionNow(t, ss[i].id)
				if !reflect.DeepEqual(got, want) {
					stale++
					if stale < 4 {
						t.Errorf("session %d: the cache holds\n%+v\nRedis\n%+v", i, got, want)
					}
				}
			}
			if st := c.Stats(); st.Hits == 0 {
				t.Errorf("no request was served from memory: %+v", st)
			}
		})
	}
}
