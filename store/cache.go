package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/announce"
	"github.com/sessionkit/sessionkit/internal/backend"
)

// Cache bounds.
const (
	// DefaultCacheTTL is how long a verified session may be answered from
	// memory after it was read from Redis, when CacheOptions.TTL is zero.
	//
	// The TTL is a safety bound, not what keeps the cache correct:
	// revocations, evictions and rotations reach every instance through
	// Pub/Sub within milliseconds, any gap in that channel empties the cache
	// at once, and expiry, the idle deadline and the activity throttle are
	// checked on every hit from the cached fields. Each activity write (once
	// a throttle, a minute by default, for a session in use) replaces the
	// entry's session with the one Redis holds, so its other fields (last
	// activity, providers) lag no more than the
	// throttle (or the TTL, if shorter). A refresh token's rotation is
	// announced too. What the TTL bounds is a change that were ever not
	// announced: a revocation or rotation whose announcement was lost while
	// the connection stayed healthy and, on a Cluster, every heartbeat came
	// back (see HealthCheck). Redis's own client-side caching (CLIENT TRACKING)
	// keeps entries with no time bound at all, until invalidated; rueidis,
	// built on it, takes a client-side TTL per call as such a safety net.
	//
	// Five minutes covers the gaps between most requests of a session in
	// use, which a minute often does not: with 100,000 sessions hit
	// uniformly, make bench measured a hit ratio of 0.975 with five minutes
	// against 0.82 with one.
	DefaultCacheTTL = 5 * time.Minute
	// MaxCacheTTL is the longest CacheOptions.TTL accepted: even an
	// announcement that was lost is honoured within it.
	MaxCacheTTL = 10 * time.Minute
	// DefaultCacheEntries is CacheOptions.MaxEntries when it is zero. At
	// about 200 bytes of heap per cached session (196 to 232 measured by
	// make bench over 100,000 sessions, map included; more for a session
	// whose User-Agent no other session shares, or that holds a bearer
	// session's refresh state or provider access), a full cache holds 20
	// to 23 MB, which the garbage collector does not scan (cacheShard).
	DefaultCacheEntries = 100_000
	// DefaultCacheHealthCheck is CacheOptions.HealthCheck when it is zero.
	DefaultCacheHealthCheck = time.Second
)

const (
	cacheShards     = 64
	resubscribeMin  = 20 * time.Millisecond
	resubscribeMax  = time.Second
	pingTimeoutMult = 2 // silence, in health-check intervals, that counts as a dead connection
	// idleMargin is how long before the idle deadline an entry holds it
	// stops being served: longer than the Manager can take between the
	// cache's answer and its own reading of the clock.
	idleMargin = time.Second
)

// CacheOptions configures a Cache. The zero value gives the defaults.
type CacheOptions struct {
	// TTL is the longest a verified session is answered from memory, at
	// most MaxCacheTTL: a safety bound, as revocations are announced (see
	// DefaultCacheTTL). Default: DefaultCacheTTL (5 minutes).
	TTL time.Duration
	// MaxEntries bounds the sessions held in memory, over all shards; past
	// it an arbitrary entry makes room. Default: DefaultCacheEntries
	// (100,000).
	MaxEntries int
	// HealthCheck is how often the Pub/Sub connection is pinged. A
	// connection silent for twice this is taken as dropped: the cache
	// empties and stays off until a new subscription is confirmed. On a
	// Cluster each check also publishes a heartbeat on every master, which
	// the cluster bus carries to the subscription as it carries
	// announcements; one not back from every master within twice this is
	// taken as a gap in the same way. Default: DefaultCacheHealthCheck
	// (1 s).
	HealthCheck time.Duration
	// Clock measures entry age and the distance to a session's idle
	// deadline; it must agree with the Manager's clock. Default: time.Now.
	Clock func() time.Time
}

// CacheStats is a snapshot of a Cache's counters.
type CacheStats struct {
	On            bool   // the subscription is confirmed and hits are served
	Entries       int    // sessions held
	Hits, Misses  uint64 // Peek calls answered from memory, and sent to Redis
	Invalidations uint64 // sessions dropped by an announcement or a local write
	Subscribed    uint64 // times a subscription was confirmed (the cache turned on)
	Dropped       uint64 // times the subscription was lost while on (the cache turned off)
}

// Cache is a sessionkit.Store that answers repeated authentications of a
// recently verified session from memory, without a Redis round trip. It
// decorates a *Redis and is opt-in:
//
//	st, _ := store.NewRedis(client, store.Options{})
//	cache, _ := store.NewCache(st, store.CacheOptions{})
//	defer cache.Close()
//	m, _ := sessionkit.New(cache)
//
// It serves Peek, the read Manager.Authenticate starts with: a session read
// from Redis is kept for at most the TTL, and the Manager then checks the
// token hash (in constant time), the session's state at its own clock
// (expiry and idle deadline, from the cached fields), the address and the
// activity throttle exactly as it does on a fresh read. A request that
// finds the throttle elapsed is still answered from memory: the Manager
// queues its activity write and sends it with others, off the request
// path, through TouchAll. A write the Manager makes on the request path
// (an address change, a session near its idle deadline, or every write
// with sessionkit.WithActivityEvents or sessionkit.WithActivityWriteDelay(0))
// goes to Redis through Touch, whose script checks everything again. Either way the
// session Redis answers replaces the entry (which keeps its deadline: no
// field served is older than the TTL), so the next request is served from
// memory again and none writes again before the throttle elapses again.
// The revocations,
// the evictions and the other writes made through this instance drop the
// entry at once. Every other method goes straight to Redis.
//
// Revocations, evictions, secret rotations and recorded address changes
// made anywhere are announced by the store's scripts on Redis Pub/Sub
// (Redis.Channel); the cache drops announced
// sessions as the announcement arrives. Until a subscription is confirmed,
// and from the moment the Pub/Sub connection fails or falls silent, the
// cache is empty and off: every call goes to Redis. So a revoked session is
// refused on every instance within the Pub/Sub delivery time, and never
// later than the TTL even if an announcement were lost.
//
// An entry is not served within a second of the idle deadline it holds
// (the one in Redis can only be later), so activity recorded by another
// instance can never make this one refuse a session as idle. Within the TTL
// an instance may serve a session whose other fields another instance has
// just changed without an announcement: last activity and providers (a
// bearer session's refresh token state, whose rotation is announced, is
// read from Redis by Manager.SessionByRefreshToken whatever the cache
// holds, through PeekFresh). A secret an entry does not know is checked against
// Redis before it is refused (Manager.Authenticate): it may have just been
// rotated on another instance, its announcement still on the way. Sessions deleted from
// Redis by hand, without a revocation, are served until their entry ages
// out. Clock, when set, must be the Manager's clock.
//
// Memory is bounded by MaxEntries. An entry holds the session's own fields
// only, by value and with no pointer; its User-Agent, device and location
// are held once for all the sessions that share them (package unique), and
// nothing of the record Redis returned is kept.
type Cache struct {
	r      *Redis
	ttl    time.Duration
	health time.Duration
	log    atomic.Pointer[slog.Logger] // the Manager's, once attached
	clock  func() time.Time
	base   time.Time

	shards     [cacheShards]cacheShard
	mask       uint8
	entries    atomic.Int64 // held, over all shards
	maxEntries int64

	stateMu sync.Mutex // serializes turning on and off
	on      atomic.Bool
	epoch   atomic.Uint64 // bumped on every on/off transition

	subscribed, dropped, invalidations atomic.Uint64

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	// uninstrumented is set by Close, under cacheGroups.mu: a later
	// Attach must not register the cache again.
	uninstrumented bool
}

// cacheShard holds the entries of the sessions whose id ends in its
// number. Its map holds each entry by value, with no pointer in it (see
// cacheEntry): the garbage collector neither scans the map nor marks an
// object per session, which with 100,000 sessions cost some 40 ms of CPU
// per collection (BenchmarkCacheEntries). What an entry refers to, its
// client and its rarely set fields, is held beside the map.
type cacheShard struct {
	mu           sync.RWMutex
	m            map[uuid.UUID]cacheEntry
	clients      clientTable
	rare         map[uuid.UUID]*cacheRare // the entries with flagRare
	stamps       uint32                   // puts so far: each entry's stamp
	gen          atomic.Uint64            // bumped whenever an entry of this shard is invalidated or written
	hits, misses atomic.Uint64
	_            [64]byte // keep hot shards on separate cache lines
}

func (sh *cacheShard) init() {
	sh.m = make(map[uuid.UUID]cacheEntry)
	sh.rare = make(map[uuid.UUID]*cacheRare)
	sh.clients.index = make(map[unique.Handle[cacheClient]]uint32)
}

// view is the entry of id with what it refers to; sh is locked.
func (sh *cacheShard) view(id uuid.UUID) (cachedSession, bool) {
	e, ok := sh.m[id]
	if !ok {
		return cachedSession{}, false
	}
	v := cachedSession{id: id, e: e, client: sh.clients.slots[e.client].h}
	if e.flags&flagRare != 0 {
		v.rare = sh.rare[id]
	}
	return v, true
}

// put holds v in place of any entry of its session; sh is locked and has
// room for it.
func (sh *cacheShard) put(v *cachedSession) {
	if old, ok := sh.m[v.id]; ok {
		sh.drop(v.id, old)
	}
	e := v.e
	sh.stamps++
	e.stamp = sh.stamps
	e.client = sh.clients.acquire(v.client)
	if v.rare != nil {
		sh.rare[v.id] = v.rare
	}
	sh.m[v.id] = e
}

// drop deletes the entry e of id and lets go of what it refers to; sh is
// locked.
func (sh *cacheShard) drop(id uuid.UUID, e cacheEntry) {
	sh.clients.release(e.client)
	if e.flags&flagRare != 0 {
		delete(sh.rare, id)
	}
	delete(sh.m, id)
}

// empty drops every entry; sh is locked.
func (sh *cacheShard) empty() {
	clear(sh.m)
	clear(sh.rare)
	clear(sh.clients.index)
	sh.clients.slots, sh.clients.free = nil, nil
}

// clientTable numbers the clients of a shard's entries, so that an entry
// holds a number rather than a pointer; each is counted by the entries
// that hold it and let go with the last.
type clientTable struct {
	slots []clientSlot
	index map[unique.Handle[cacheClient]]uint32
	free  []uint32 // slots no entry holds
}

type clientSlot struct {
	h    unique.Handle[cacheClient]
	refs int32
}

func (t *clientTable) acquire(h unique.Handle[cacheClient]) uint32 {
	if i, ok := t.index[h]; ok {
		t.slots[i].refs++
		return i
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
		t.slots[i] = clientSlot{h: h, refs: 1}
	} else {
		i = uint32(len(t.slots))
		t.slots = append(t.slots, clientSlot{h: h, refs: 1})
	}
	t.index[h] = i
	return i
}

func (t *clientTable) release(i uint32) {
	s := &t.slots[i]
	if s.refs--; s.refs == 0 {
		delete(t.index, s.h)
		*s = clientSlot{}
		t.free = append(t.free, i)
	}
}

// cacheEntry is a session and the store's answer about it (backend.Peeked)
// in compact form: times as Unix nanoseconds (noTime for the zero time),
// addresses as their 16 bytes, the stored token hash's 132 bits, the
// client (the strings many sessions share) as its number in the shard's
// clientTable, and the fields most cookie sessions leave empty in a
// cacheRare beside it. It holds no pointer and is at most 128 bytes, so a
// map holds it in place (TestCacheEntrySize).
type cacheEntry struct {
	deadline      int64 // on the cache clock, in ns since Cache.base
	created       int64
	lastActivity  int64
	expires       int64
	authenticated int64
	userID        uuid.UUID
	ip, lastIP    [16]byte
	tokenHash     [storedHashBytes]byte // backend.Peeked's, with TokenHashPrefix; a whole hash is in rare
	ipChanges     int32
	client        uint32
	stamp         uint32 // which put made the entry (cacheShard.stamps): a write's result replaces only the entry read before it
	idleMs        uint32 // the idle timeout in milliseconds; one that does not fit is in rare
	aal           uint8  // aalCodes' index, or aalOther
	kinds         uint8  // the addresses' kinds: ip's in the low half, lastIP's in the high
	flags         entryFlags
}

// storedHashBytes holds the 132 bits of a stored token hash.
const storedHashBytes = 17

// entryFlags are an entry's booleans.
type entryFlags uint8

const (
	flagIndexed   entryFlags = 1 << iota // backend.Peeked's
	flagBearer                           // the session's
	flagRare                             // the shard's rare map holds the entry's cacheRare
	flagZoned                            // an address has a zone: both are in rare
	flagWholeHash                        // the stored hash is whole (a record older than the prefix): it is in rare
	flagIdleRare                         // the idle timeout is in rare
)

// The AAL values an entry holds as a number; another is in rare.
var aalCodes = [...]string{"", sessionkit.AAL1, sessionkit.AAL2, sessionkit.AAL3}

const aalOther = 0xff

// cacheRare is what a cookie session seldom has: a bearer session's
// refresh state, provider access, impersonation, an address with a zone,
// an AAL of its own, a token hash stored whole.
type cacheRare struct {
	refresh      backend.RefreshState
	refreshID    string
	lastProvider string
	lastProvAt   int64
	impersonator string
	aal          string
	providers    []string
	ip, lastIP   netip.Addr    // with flagZoned only
	wholeHash    [32]byte      // with flagWholeHash only
	idle         time.Duration // with flagIdleRare only
}

// Address kinds, as an entry holds them.
const (
	kindNone = 0 // the zero Addr
	kind4    = 4
	kind6    = 6
)

// packAddr is a's 16 bytes and kind, and false when a has a zone, which
// they cannot hold.
func packAddr(a netip.Addr) ([16]byte, uint8, bool) {
	switch {
	case !a.IsValid():
		return [16]byte{}, kindNone, true
	case a.Zone() != "":
		return [16]byte{}, kindNone, false
	case a.Is4():
		return a.As16(), kind4, true
	}
	return a.As16(), kind6, true
}

func unpackAddr(b [16]byte, kind uint8) netip.Addr {
	switch kind {
	case kind4:
		return netip.AddrFrom16(b).Unmap()
	case kind6:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// cacheClient is what a session shares with the other sessions of the
// same browser at the same place.
type cacheClient struct {
	userAgent string
	device    sessionkit.Device
	location  sessionkit.Location
}

const noTime = math.MinInt64

// packTime is t in Unix nanoseconds, and whether unpackTime gives t back
// exactly (the codec's times do: UTC, no monotonic reading).
func packTime(t time.Time) (int64, bool) {
	if t.IsZero() {
		return noTime, t == time.Time{}
	}
	n := t.UnixNano()
	return n, unpackTime(n) == t
}

func unpackTime(n int64) time.Time {
	if n == noTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// intern gives the form of a short string the entry keeps: a constant for
// the usual values, a copy otherwise.
func intern(s string) string {
	switch s {
	case "":
		return ""
	case sessionkit.AAL1:
		return sessionkit.AAL1
	case sessionkit.AAL2:
		return sessionkit.AAL2
	case sessionkit.AAL3:
		return sessionkit.AAL3
	}
	return strings.Clone(s)
}

// cachedSession is an entry with what it refers to: what a shard takes
// (cacheShard.put) and gives back (cacheShard.view). A Peek the cache
// answers returns a copy of it as backend.Peeked.Entry, which a request's
// context holds rather than a copy of the session; nothing changes it
// once made.
type cachedSession struct {
	id     uuid.UUID
	e      cacheEntry
	client unique.Handle[cacheClient]
	rare   *cacheRare
}

// newCachedSession packs s and pk; false when s cannot be given back
// exactly (it is then not cached).
func newCachedSession(s *sessionkit.Session, pk backend.Peeked, deadline int64) (cachedSession, bool) {
	if !s.RevokedAt.IsZero() || s.RevokedReason != "" || s.IPChangeCount < 0 || s.IPChangeCount > math.MaxInt32 {
		return cachedSession{}, false
	}
	v := cachedSession{
		id:     s.ID,
		client: unique.Make(cacheClient{userAgent: s.UserAgent, device: s.Device, location: s.Location}),
		e: cacheEntry{
			deadline: deadline, userID: s.UserID, ipChanges: int32(s.IPChangeCount),
		},
	}
	e := &v.e
	ms := int64(s.IdleTimeout / time.Millisecond)
	idleFits := s.IdleTimeout%time.Millisecond == 0 && ms >= 0 && ms <= math.MaxUint32
	if idleFits {
		e.idleMs = uint32(ms)
	}
	if pk.Indexed {
		e.flags |= flagIndexed
	}
	if s.Bearer {
		e.flags |= flagBearer
	}
	ok := true
	for _, f := range []struct {
		dst *int64
		t   time.Time
	}{
		{&e.created, s.CreatedAt}, {&e.lastActivity, s.LastActivityAt}, {&e.expires, s.ExpiresAt},
		{&e.authenticated, s.AuthenticatedAt},
	} {
		var exact bool
		*f.dst, exact = packTime(f.t)
		ok = ok && exact
	}
	lastProvAt, exact := packTime(s.LastProviderAccessAt)
	ok = ok && exact
	ip, ipKind, packed := packAddr(s.IPAddress)
	lastIP, lastKind, packedLast := packAddr(s.LastIPAddress)
	zoned := !packed || !packedLast
	if !zoned {
		e.ip, e.lastIP, e.kinds = ip, lastIP, ipKind|lastKind<<4
	}
	e.aal = aalOther
	for i, a := range aalCodes {
		if s.AAL == a {
			e.aal = uint8(i)
		}
	}
	if pk.TokenHashPrefix {
		copy(e.tokenHash[:], pk.TokenHash[:storedHashBytes])
	}
	if !zoned && idleFits && pk.TokenHashPrefix && e.aal != aalOther && pk.Refresh == (backend.RefreshState{}) &&
		s.RefreshTokenID == "" && s.LastProviderAccessed == "" && lastProvAt == noTime && s.ImpersonatedBy == "" &&
		len(s.ProvidersAccessed) == 0 {
		return v, ok // a plain cookie session: nothing beside the entry
	}
	r := &cacheRare{
		refresh: pk.Refresh, refreshID: intern(s.RefreshTokenID), lastProvider: intern(s.LastProviderAccessed),
		lastProvAt: lastProvAt, impersonator: intern(s.ImpersonatedBy),
	}
	if e.aal == aalOther {
		r.aal = intern(s.AAL)
	}
	if zoned {
		e.flags |= flagZoned
		r.ip, r.lastIP = s.IPAddress, s.LastIPAddress
	}
	if !pk.TokenHashPrefix {
		e.flags |= flagWholeHash
		r.wholeHash = pk.TokenHash
	}
	if !idleFits {
		e.flags |= flagIdleRare
		r.idle = s.IdleTimeout
	}
	if len(s.ProvidersAccessed) > 0 {
		r.providers = make([]string, len(s.ProvidersAccessed))
		for i, p := range s.ProvidersAccessed {
			r.providers[i] = intern(p)
		}
	}
	e.flags |= flagRare
	v.rare = r
	return v, ok
}

// peek gives back the store's answer the entry was made from, with v
// itself as its Entry.
func (v *cachedSession) peek() backend.Peeked {
	pk := backend.Peeked{Entry: v, Indexed: v.e.flags&flagIndexed != 0}
	if v.e.flags&flagWholeHash != 0 {
		pk.TokenHash = v.rare.wholeHash
	} else {
		pk.TokenHashPrefix = true
		copy(pk.TokenHash[:], v.e.tokenHash[:])
	}
	if v.rare != nil {
		pk.Refresh = v.rare.refresh
	}
	return pk
}

// idle is the session's idle timeout.
func (v *cachedSession) idle() time.Duration {
	if v.e.flags&flagIdleRare != 0 {
		return v.rare.idle
	}
	return time.Duration(v.e.idleMs) * time.Millisecond
}

// Session unpacks v into a session whose slice is its own.
func (v *cachedSession) Session() sessionkit.Session {
	e, c := &v.e, v.client.Value()
	s := sessionkit.Session{
		ID: v.id, UserID: e.userID, Device: c.device, UserAgent: c.userAgent,
		IPAddress: unpackAddr(e.ip, e.kinds&0xf), LastIPAddress: unpackAddr(e.lastIP, e.kinds>>4), Location: c.location,
		CreatedAt: unpackTime(e.created), LastActivityAt: unpackTime(e.lastActivity),
		ExpiresAt: unpackTime(e.expires), IdleTimeout: v.idle(), IPChangeCount: int(e.ipChanges),
		Bearer: e.flags&flagBearer != 0, AuthenticatedAt: unpackTime(e.authenticated),
	}
	if e.aal != aalOther {
		s.AAL = aalCodes[e.aal]
	}
	if r := v.rare; r != nil {
		if e.flags&flagZoned != 0 {
			s.IPAddress, s.LastIPAddress = r.ip, r.lastIP
		}
		if e.aal == aalOther {
			s.AAL = r.aal
		}
		s.RefreshTokenID, s.ImpersonatedBy = r.refreshID, r.impersonator
		s.LastProviderAccessed, s.LastProviderAccessAt = r.lastProvider, unpackTime(r.lastProvAt)
		s.ProvidersAccessed = slices.Clone(r.providers) // the entry stays immutable
	}
	return s
}

var _ sessionkit.Store = (*Cache)(nil)

// NewCache returns a cache over r and starts its subscription to r's
// announcement channel, on r's client. It is off until that subscription is
// confirmed. Close it to stop the subscription; the caller still owns and
// closes the client.
func NewCache(r *Redis, opts CacheOptions) (*Cache, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: store: cache: Redis must not be nil", sessionkit.ErrInvalid)
	}
	if _, ok := r.c.(*redis.Ring); ok {
		// A Ring subscribes on one shard while each script publishes on its
		// user's shard: most revocations would never reach the cache.
		return nil, fmt.Errorf("%w: store: cache: a Ring client cannot carry revocations to every instance; use one Redis, Sentinel or Cluster for the cache", sessionkit.ErrInvalid)
	}
	ttl, maxEntries, health := opts.TTL, opts.MaxEntries, opts.HealthCheck
	switch {
	case ttl < 0 || ttl > MaxCacheTTL:
		return nil, fmt.Errorf("%w: store: cache: TTL must be within 0..%v", sessionkit.ErrInvalid, MaxCacheTTL)
	case maxEntries < 0:
		return nil, fmt.Errorf("%w: store: cache: MaxEntries must not be negative", sessionkit.ErrInvalid)
	case health < 0:
		return nil, fmt.Errorf("%w: store: cache: HealthCheck must not be negative", sessionkit.ErrInvalid)
	}
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if maxEntries == 0 {
		maxEntries = DefaultCacheEntries
	}
	if health == 0 {
		health = DefaultCacheHealthCheck
	}
	c := &Cache{r: r, ttl: ttl, health: health, clock: opts.Clock, maxEntries: int64(maxEntries), done: make(chan struct{})}
	c.log.Store(slog.Default())
	if c.clock == nil {
		c.clock = time.Now
	}
	c.base = c.clock()
	n := cacheShards // a power of two, so a mask picks the shard
	for n > 1 && n > maxEntries {
		n /= 2
	}
	c.mask = uint8(n - 1)
	for i := range n {
		c.shards[i].init()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c, nil
}

// Close stops the subscription and empties the cache; later calls go
// straight to Redis. It waits for the subscription to wind down.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
		c.uninstrument()
	})
	return nil
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	st := CacheStats{
		On: c.on.Load(), Invalidations: c.invalidations.Load(),
		Subscribed: c.subscribed.Load(), Dropped: c.dropped.Load(),
	}
	for i := 0; i <= int(c.mask); i++ {
		sh := &c.shards[i]
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
		sh.mu.RLock()
		st.Entries += len(sh.m)
		sh.mu.RUnlock()
	}
	return st
}

// Redis returns the store the cache decorates.
func (c *Cache) Redis() *Redis { return c.r }

func (c *Cache) now() int64 { return int64(c.clock().Sub(c.base)) }

func (c *Cache) shard(id uuid.UUID) *cacheShard {
	return &c.shards[id[15]&c.mask] // the last byte of a session id is random
}

// Attach implements sessionkit.Store: the cache logs its state changes to
// the Manager's logger from then on (slog.Default() before), and reports
// its counters to the Manager's MeterProvider (sessionkit.WithMeterProvider).
func (c *Cache) Attach(env backend.Env) {
	if env.Logger != nil {
		c.log.Store(env.Logger)
	}
	if env.MeterProvider != nil {
		if err := c.instrument(env.MeterProvider); err != nil {
			c.log.Load().Warn("sessionkit: cache metrics not registered", "error", err.Error())
		}
	}
	c.r.Attach(env)
}

// Peek implements sessionkit.Store, from memory when it can.
func (c *Cache) Peek(ctx context.Context, id uuid.UUID) (sessionkit.Session, backend.Peeked, error) {
	sh := c.shard(id)
	if e, ok := c.hit(sh, id); ok {
		sh.hits.Add(1)
		return e.Session(), e.peek(), nil
	}
	return c.read(ctx, sh, id)
}

// hit is the request's own copy of id's entry, which its context may hold,
// if the cache is on and the entry may answer now.
func (c *Cache) hit(sh *cacheShard, id uuid.UUID) (*cachedSession, bool) {
	if !c.on.Load() {
		return nil, false
	}
	sh.mu.RLock()
	v, ok := sh.view(id)
	sh.mu.RUnlock()
	if !ok || !c.serves(&v) {
		return nil, false
	}
	e := new(cachedSession)
	*e = v
	return e, true
}

// PeekFresh is Peek read from Redis whatever the cache holds; the session
// read replaces the entry. The Manager calls it when an entry's token hash
// does not match the presented secret: the secret may have been rotated on
// another instance (RenewSession, Reauthenticate) whose announcement has
// not arrived yet, and the new secret must not be refused meanwhile. A
// secret that is wrong costs the read it costs without the cache.
func (c *Cache) PeekFresh(ctx context.Context, id uuid.UUID) (sessionkit.Session, backend.Peeked, error) {
	return c.read(ctx, c.shard(id), id)
}

// read is Peek's miss: the session from Redis, kept when it may be.
func (c *Cache) read(ctx context.Context, sh *cacheShard, id uuid.UUID) (sessionkit.Session, backend.Peeked, error) {
	sh.misses.Add(1)
	// Read before the round trip: an invalidation or a subscription change
	// that happens while it is in flight keeps its answer out of the cache.
	epoch, gen := c.epoch.Load(), sh.gen.Load()
	s, pk, err := c.r.Peek(ctx, id)
	if err != nil {
		// Without bumping gen: a flood of unknown session ids must not keep
		// other sessions of the shard out of the cache.
		sh.mu.Lock()
		c.remove(sh, id)
		sh.mu.Unlock()
		return s, pk, err
	}
	if pk.Indexed && s.RevokedAt.IsZero() {
		c.store(sh, id, s, pk, epoch, gen, c.now()+int64(c.ttl))
		return s, pk, nil
	}
	// No longer active (revoked, its announcement still on the way, or
	// gone from the index): what the cache holds of it goes now, and reads
	// in flight, which may have found it active, keep out. Only when it
	// held something: requests for a revoked session, which anyone who
	// knows its id can send, must not keep the shard's other reads out.
	sh.mu.Lock()
	if c.remove(sh, id) {
		sh.gen.Add(1)
		c.invalidations.Add(1)
	}
	sh.mu.Unlock()
	return s, pk, nil
}

// serves reports whether v may answer a Peek now.
func (c *Cache) serves(v *cachedSession) bool {
	now := c.clock()
	if int64(now.Sub(c.base)) >= v.e.deadline {
		return false
	}
	// Another instance may have recorded activity since the read: near the
	// idle deadline the entry holds, only a fresh read tells whether the
	// session is idle (Redis's deadline can only be later). The margin
	// keeps the Manager, reading its clock a moment later, from finding
	// the entry's session idle.
	idle := v.idle()
	return idle <= 0 || now.Add(idleMargin).Before(unpackTime(v.e.lastActivity).Add(idle))
}

// store keeps a session Redis just read until deadline, unless the shard
// saw an invalidation or a write, or the cache changed state, since epoch
// and gen were read. It reports whether it did.
func (c *Cache) store(sh *cacheShard, id uuid.UUID, s sessionkit.Session, pk backend.Peeked, epoch, gen uint64, deadline int64) bool {
	if !c.on.Load() || c.epoch.Load() != epoch || sh.gen.Load() != gen {
		return false
	}
	v, ok := newCachedSession(&s, pk, deadline)
	if !ok || v.id != id {
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Checked again under the lock: turning off bumps the epoch before it
	// clears the shards, and an invalidation bumps gen under this lock.
	if !c.on.Load() || c.epoch.Load() != epoch || sh.gen.Load() != gen {
		return false
	}
	if _, ok := sh.m[id]; !ok && !c.reserve(sh) {
		return false
	}
	sh.put(&v)
	return true
}

// replace stores s, what Redis holds of a session after a write (or a
// read made to spare one, in TouchAll), in place of old, the entry read
// before it, keeping old's deadline, if the shard still holds that very
// entry and the cache has not changed state since epoch was read. Else
// whatever the shard holds of the session goes: an invalidation dropped
// old, or another replace or read stored an entry that may be older than
// s. Another session's invalidation or write is no reason to drop it.
// Either way the shard's generation moves on: a read in flight meanwhile
// may answer a session older than s, and must not store it after.
func (c *Cache) replace(sh *cacheShard, id uuid.UUID, old *cachedSession, s sessionkit.Session, pk backend.Peeked, epoch uint64) {
	v, ok := newCachedSession(&s, pk, old.e.deadline)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen.Add(1)
	cur, held := sh.m[id]
	if ok && v.id == id && held && cur.stamp == old.e.stamp && c.on.Load() && c.epoch.Load() == epoch {
		sh.put(&v)
		return
	}
	if c.remove(sh, id) {
		c.invalidations.Add(1)
	}
}

// reserve counts one more entry, making room in sh when the cache is full;
// false when it is full and sh has nothing to give. sh is locked.
func (c *Cache) reserve(sh *cacheShard) bool {
	for {
		n := c.entries.Load()
		if n < c.maxEntries {
			if c.entries.CompareAndSwap(n, n+1) {
				return true
			}
			continue
		}
		for k, e := range sh.m { // map order is random: an arbitrary entry goes
			sh.drop(k, e) // and its place is taken
			return true
		}
		return false
	}
}

// remove drops id from sh, which is locked, and reports whether it was held.
func (c *Cache) remove(sh *cacheShard, id uuid.UUID) bool {
	e, ok := sh.m[id]
	if !ok {
		return false
	}
	sh.drop(id, e)
	c.entries.Add(-1)
	return true
}

// Touch implements sessionkit.Store. The Manager calls it for a write it
// makes on the request path (an address change, a session near its idle
// deadline, every write with sessionkit.WithActivityEvents or
// sessionkit.WithActivityWriteDelay(0), and UpdateSessionActivity); the activity
// writes it queues go through TouchAll. The session the script answers, as
// it is in Redis after the write,
// replaces the entry read before the write, unless that entry went or was
// replaced meanwhile (an invalidation of the session, another write's
// answer, a read), and then whatever the cache holds of it goes (see
// replace); it keeps
// the entry's token and refresh state (a write of activity or address
// changes neither) and so the entry's deadline: no field is answered from
// a read older than the TTL. On an error the entry goes.
func (c *Cache) Touch(ctx context.Context, call backend.Call, use backend.Use, loc *sessionkit.Location) (sessionkit.Session, backend.Used, []sessionkit.Event, error) {
	id := use.SessionID
	sh := c.shard(id)
	// The entry as read before the write: the write's answer replaces it
	// only if nothing dropped or replaced it since (its stamp).
	epoch := c.epoch.Load()
	sh.mu.RLock()
	e, held := sh.view(id)
	sh.mu.RUnlock()
	s, out, events, err := c.r.Touch(ctx, call, use, loc)
	switch {
	case err != nil, out.Revoked:
		c.forget(id)
	case out.Held: // nothing written yet; the Manager calls again
	case held && s.ID == id:
		c.replace(sh, id, &e, s, e.peek(), epoch)
	default:
		c.forget(id)
	}
	return s, out, events, err
}

// TouchAll implements sessionkit.Store: the writes go to Redis together,
// and each entry is then replaced as Touch replaces it.
//
// An entry older than another instance's write of its session finds the
// throttle passed when Redis's copy does not: the script it would send
// writes nothing. So the sessions are read first, one pipeline of HGETs
// (about 1 µs of Redis CPU each, against some 15 for a script), and only
// those still due get a script; the others get a fresh entry. With several
// instances behind one load balancer, most of a session's instances find
// it so once per throttle period.
func (c *Cache) TouchAll(ctx context.Context, call backend.Call, ids []uuid.UUID) []error {
	type before struct {
		sh   *cacheShard
		e    cachedSession
		held bool
	}
	epoch := c.epoch.Load()
	read := make([]before, len(ids))
	for i, id := range ids {
		sh := c.shard(id)
		b := &read[i]
		b.sh = sh
		sh.mu.RLock()
		b.e, b.held = sh.view(id)
		sh.mu.RUnlock()
	}
	errs := make([]error, len(ids))
	var due []uuid.UUID
	var dueAt []int
	for i, v := range c.r.activeValues(ctx, ids) {
		var s sessionkit.Session
		pk := backend.Peeked{Indexed: true}
		if v != "" && decodePeek(ids[i], v, &s, &pk) && call.Now.Sub(s.LastActivityAt) < call.Policy.Throttle {
			if b := &read[i]; b.held {
				c.replace(b.sh, ids[i], &b.e, s, pk, epoch)
			}
			continue
		}
		// Due, gone, or unreadable: the script decides, as ever.
		due, dueAt = append(due, ids[i]), append(dueAt, i)
	}
	if len(due) == 0 {
		return errs
	}
	ss, dueErrs := c.r.touchAll(ctx, call, due)
	for j, id := range due {
		i := dueAt[j]
		errs[i] = dueErrs[j]
		if b := &read[i]; errs[i] == nil && b.held {
			c.replace(b.sh, id, &b.e, ss[j], b.e.peek(), epoch)
		} else {
			c.forget(id)
		}
	}
	return errs
}

// forget drops the given sessions from this instance at once.
func (c *Cache) forget(ids ...uuid.UUID) {
	for _, id := range ids {
		sh := c.shard(id)
		sh.mu.Lock()
		sh.gen.Add(1)
		if c.remove(sh, id) {
			c.invalidations.Add(1)
		}
		sh.mu.Unlock()
	}
}

// clearAll empties every shard and keeps in-flight answers out.
func (c *Cache) clearAll() {
	for i := 0; i <= int(c.mask); i++ {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen.Add(1)
		c.entries.Add(-int64(len(sh.m)))
		sh.empty()
		sh.mu.Unlock()
	}
}

// sweep drops aged-out entries, so memory follows the sessions in use.
func (c *Cache) sweep() {
	now := c.now()
	for i := 0; i <= int(c.mask); i++ {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if now >= e.deadline {
				c.remove(sh, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Create implements sessionkit.Store; evicted sessions are dropped at once.
func (c *Cache) Create(ctx context.Context, call backend.Call, s sessionkit.Session, cred backend.Credentials, limit backend.Limit) (backend.Created, []sessionkit.Event, error) {
	out, events, err := c.r.Create(ctx, call, s, cred, limit)
	c.forget(out.Evicted...)
	return out, events, err
}

// Refresh implements sessionkit.Store; the entry goes, as the session is
// about to change (or to be revoked, for a reused token).
func (c *Cache) Refresh(ctx context.Context, call backend.Call, in backend.Refresh) (sessionkit.Session, backend.Refreshed, []sessionkit.Event, error) {
	c.forget(in.SessionID)
	s, out, events, err := c.r.Refresh(ctx, call, in)
	c.forget(in.SessionID)
	return s, out, events, err
}

// Revoke implements sessionkit.Store; the session is dropped at once.
func (c *Cache) Revoke(ctx context.Context, call backend.Call, sessionID, userID uuid.UUID, reason, actor string) ([]sessionkit.Event, error) {
	events, err := c.r.Revoke(ctx, call, sessionID, userID, reason, actor)
	c.forget(sessionID)
	return events, err
}

// RevokeAll implements sessionkit.Store; revoked sessions are dropped at once.
func (c *Cache) RevokeAll(ctx context.Context, call backend.Call, userID, except uuid.UUID, reason, actor string) ([]sessionkit.Event, error) {
	events, err := c.r.RevokeAll(ctx, call, userID, except, reason, actor)
	for _, e := range events {
		c.forget(e.SessionID)
	}
	return events, err
}

// RecordProvider implements sessionkit.Store; this instance's entry is
// dropped so it reads its own write.
func (c *Cache) RecordProvider(ctx context.Context, call backend.Call, sessionID uuid.UUID, provider string) (backend.Recorded, []sessionkit.Event, error) {
	out, events, err := c.r.RecordProvider(ctx, call, sessionID, provider)
	c.forget(sessionID)
	return out, events, err
}

// LinkRefreshToken implements sessionkit.Store; this instance's entry is
// dropped so it reads its own write.
func (c *Cache) LinkRefreshToken(ctx context.Context, call backend.Call, sessionID uuid.UUID, refreshTokenID string) ([]sessionkit.Event, error) {
	events, err := c.r.LinkRefreshToken(ctx, call, sessionID, refreshTokenID)
	c.forget(sessionID)
	return events, err
}

// Rotate implements sessionkit.Store; the entry, with the old secret's
// hash, goes at once.
func (c *Cache) Rotate(ctx context.Context, call backend.Call, sessionID, userID uuid.UUID, cred backend.Credentials) (sessionkit.Session, uint32, error) {
	c.forget(sessionID)
	s, gen, err := c.r.Rotate(ctx, call, sessionID, userID, cred)
	c.forget(sessionID)
	return s, gen, err
}

// UpdateData implements sessionkit.Store; session data is never cached.
func (c *Cache) UpdateData(ctx context.Context, call backend.Call, sessionID uuid.UUID, key string, value *string, bounds backend.DataBounds) error {
	return c.r.UpdateData(ctx, call, sessionID, key, value, bounds)
}

// ReadData implements sessionkit.Store, always from Redis.
func (c *Cache) ReadData(ctx context.Context, sessionID uuid.UUID, key string, now time.Time) (string, bool, error) {
	return c.r.ReadData(ctx, sessionID, key, now)
}

// Get implements sessionkit.Store, always from Redis.
func (c *Cache) Get(ctx context.Context, id uuid.UUID, now time.Time) (sessionkit.Session, error) {
	return c.r.Get(ctx, id, now)
}

// List implements sessionkit.Store, always from Redis.
func (c *Cache) List(ctx context.Context, userID uuid.UUID, includeRevoked bool, now time.Time) ([]sessionkit.Session, error) {
	return c.r.List(ctx, userID, includeRevoked, now)
}

// Events implements sessionkit.Store, always from Redis.
func (c *Cache) Events(ctx context.Context, userID uuid.UUID, q sessionkit.EventQuery) ([]sessionkit.Event, error) {
	return c.r.Events(ctx, userID, q)
}

// SetLimit implements sessionkit.Store.
func (c *Cache) SetLimit(ctx context.Context, userID uuid.UUID, limit int, ttl time.Duration) error {
	return c.r.SetLimit(ctx, userID, limit, ttl)
}

// Limit implements sessionkit.Store.
func (c *Cache) Limit(ctx context.Context, userID uuid.UUID) (int, bool, error) {
	return c.r.Limit(ctx, userID)
}

// subscription is one Pub/Sub connection attempt. Once dead it can never
// turn the cache on again.
type subscription struct {
	ps        *redis.PubSub
	beat      *heartbeat    // on a Cluster only
	heard     atomic.Bool   // the announcements' channel is confirmed
	listening chan struct{} // with a beat: told once, when heard is set
	dead      bool          // guarded by Cache.stateMu
	confirmed bool          // guarded by Cache.stateMu: the cache turned on
	lastRecv  atomic.Int64
}

var (
	errResubscribed = errors.New("subscription confirmed again: the connection was replaced")
	errSilent       = errors.New("no reply to health-check pings")
)

// run keeps a subscription alive until ctx ends, backing off between attempts.
func (c *Cache) run(ctx context.Context) {
	defer close(c.done)
	sweep := time.NewTicker(c.ttl)
	defer sweep.Stop()
	wait := resubscribeMin
	// Attempts that never turn the cache on (an ACL that refuses its
	// channel, a bus or a master that stays down) are said at Warn once,
	// then once a minute while they go on, and to the Manager's logger
	// once it has one; the others at Debug.
	var warnedAt time.Time
	var warned *slog.Logger
	for {
		confirmed, err := c.subscribe(ctx, sweep.C)
		if ctx.Err() != nil {
			return
		}
		level, log := slog.LevelDebug, c.log.Load()
		switch {
		case confirmed:
			wait, warnedAt = resubscribeMin, time.Time{} // turnOff said why it went off
		case warnedAt.IsZero() || time.Since(warnedAt) >= time.Minute || log != warned:
			level, warnedAt, warned = slog.LevelWarn, time.Now(), log
		}
		log.LogAttrs(ctx, level, "sessionkit: cache subscription ended",
			slog.String("channel", c.r.Channel()), slog.String("error", err.Error()), slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, resubscribeMax)
	}
}

// subscribe runs one subscription until it fails. The cache is off again
// when it returns; confirmed tells whether it had turned on.
func (c *Cache) subscribe(ctx context.Context, sweep <-chan time.Time) (bool, error) {
	beat, err := newHeartbeat(c.r.Client(), c.r.Channel())
	if err != nil {
		return false, err
	}
	channels := []string{c.r.Channel()}
	if beat != nil {
		// The heartbeat's channel first: Redis confirms in order, so it
		// is subscribed by the time the announcements' confirmation sends
		// the first beat.
		channels = []string{beat.channel, c.r.Channel()}
	}
	// The connection's set-up (dial, HELLO, SUBSCRIBE) is I/O that a
	// cancelled ctx does not interrupt, only a deadline does: bound it as a
	// silent connection is bounded, so that Close never waits on it for the
	// client's read timeout (or forever, without one).
	sctx, scancel := context.WithTimeout(ctx, pingTimeoutMult*c.health)
	sub := &subscription{ps: c.r.Client().Subscribe(sctx, channels...), beat: beat, listening: make(chan struct{}, 1)}
	scancel()
	sub.lastRecv.Store(c.mono())
	failed := make(chan error, 1)
	received := make(chan struct{})
	go func() {
		defer close(received)
		c.receive(ctx, sub, failed)
	}()

	ping := time.NewTicker(c.health)
	defer ping.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		case err = <-failed:
			break loop
		case <-sweep:
			c.sweep()
		case <-sub.listening:
			// On a Cluster the cache turns on only once a beat sent from
			// now on is back from every master (see heartbeat).
			if err = c.beat(ctx, sub); err != nil {
				break loop
			}
		case <-ping.C:
			if time.Duration(c.mono()-sub.lastRecv.Load()) > pingTimeoutMult*c.health {
				err = errSilent
				break loop
			}
			pctx, cancel := context.WithTimeout(ctx, c.health)
			err = sub.ps.Ping(pctx)
			cancel()
			if err == nil && sub.heard.Load() {
				err = c.beat(ctx, sub)
			}
			if err != nil {
				break loop
			}
		}
	}
	confirmed := c.turnOff(sub, err)
	_ = sub.ps.Close() // unblocks the receiver
	<-received
	return confirmed, err
}

// receive reads the subscription until it fails.
func (c *Cache) receive(ctx context.Context, sub *subscription, failed chan<- error) {
	// Each Receive has a deadline: on a dropped connection go-redis
	// reconnects inside Receive, holding the PubSub's lock through I/O that
	// only a deadline interrupts, and Close (sub.ps.Close) needs that lock.
	// A healthy connection answers the health-check pings well within it.
	limit := (pingTimeoutMult + 1) * c.health
	for {
		rctx, cancel := context.WithTimeout(ctx, limit)
		msg, err := sub.ps.Receive(rctx)
		cancel()
		if err != nil {
			// Off at once: the subscribe loop may be busy a while (a
			// health check, a beat), and the cache must not serve, nor a
			// beat turn it on, past a gap it has seen.
			c.turnOff(sub, err)
			failed <- err
			return
		}
		sub.lastRecv.Store(c.mono())
		switch msg := msg.(type) {
		case *redis.Message:
			if sub.beat != nil && msg.Channel == sub.beat.channel {
				if sub.beat.back(msg.Payload) {
					c.turnOn(sub) // false once on: nothing to do
				}
				continue
			}
			c.announced(msg.Payload)
		case *redis.Subscription:
			if msg.Kind != "subscribe" || msg.Channel != c.r.Channel() {
				continue
			}
			if sub.heard.Swap(true) {
				// go-redis reconnected underneath: announcements may have
				// been missed in between, so start over from off.
				c.turnOff(sub, errResubscribed)
				failed <- errResubscribed
				return
			}
			if sub.beat != nil {
				sub.listening <- struct{}{} // the first beat, at once
			} else {
				c.turnOn(sub)
			}
		}
	}
}

// announced drops the sessions an announcement names.
func (c *Cache) announced(payload string) {
	ids := announce.Parse(payload)
	if len(ids) == 0 {
		// Not in the format the scripts publish: whatever it meant, no entry
		// may outlive it.
		c.log.Load().LogAttrs(context.Background(), slog.LevelWarn, "sessionkit: cache emptied on an unreadable announcement",
			slog.String("channel", c.r.Channel()), slog.Int("bytes", len(payload)))
		c.clearAll()
		return
	}
	c.forget(ids...)
}

// turnOn starts serving from memory on sub's confirmation. It reports false
// when sub had already been confirmed once, or is dead.
func (c *Cache) turnOn(sub *subscription) bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if sub.dead || sub.confirmed {
		return false
	}
	sub.confirmed = true
	c.clearAll()
	c.epoch.Add(1)
	c.on.Store(true)
	c.subscribed.Add(1)
	c.log.Load().LogAttrs(context.Background(), slog.LevelInfo, "sessionkit: session cache on", slog.String("channel", c.r.Channel()))
	return true
}

// beat checks sub's heartbeat and sends the next one (see heartbeat),
// within one health interval of its own; a beat already back from every
// master turns the cache on.
func (c *Cache) beat(ctx context.Context, sub *subscription) error {
	if sub.beat == nil {
		return nil
	}
	bctx, cancel := context.WithTimeout(ctx, c.health)
	defer cancel()
	back, err := sub.beat.beat(bctx, c.mono(), pingTimeoutMult*c.health)
	if back {
		c.turnOn(sub)
	}
	return err
}

// turnOff stops serving from memory and empties the cache, for good as far
// as sub is concerned. It reports whether sub had been confirmed.
func (c *Cache) turnOff(sub *subscription, cause error) bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	sub.dead = true
	wasOn := c.on.Load()
	c.on.Store(false)
	c.epoch.Add(1)
	c.clearAll()
	switch {
	case !wasOn:
	case errors.Is(cause, context.Canceled):
		c.log.Load().LogAttrs(context.Background(), slog.LevelInfo, "sessionkit: session cache closed", slog.String("channel", c.r.Channel()))
	default:
		c.dropped.Add(1)
		c.log.Load().LogAttrs(context.Background(), slog.LevelWarn, "sessionkit: session cache off until Pub/Sub is back",
			slog.String("channel", c.r.Channel()), slog.String("error", cause.Error()))
	}
	return sub.confirmed
}

// mono is a monotonic reading for the health check, independent of Clock.
func (c *Cache) mono() int64 { return int64(time.Since(monoBase)) }

var monoBase = time.Now()
