package main

// The realistic mode (-scale-sessions, on by default): many more sessions
// than the main rows' 1,000, asked for the way real traffic asks for them.
// Five rows (no session layer, one Redis GET, sessionkit, and sessionkit
// over a warm and over a cold cache, both with their default options)
// share -scale-sessions sessions, one per user, and wrk picks each
// request's session at random (session.lua): under Zipf's law with s = 1 (a
// few sessions are busy, most are seldom seen) and then uniformly (every
// session alike: the cache's worst case, its whole population in play).
// Each mix gets its own warm-up and rounds, and each cache row a new cache
// at its start (see scaleCache); the cache rows' hit ratios are counted
// over the rounds only. Before the load, the heap one cached session costs
// is measured on a cache of its own, filled with every session.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

const scalePrefix = "bench:scale:"

// defaultThrottle is sessionkit's default activity throttle
// (sessionkit.WithActivityThrottle), which the rows keep unless -throttle
// says otherwise.
const defaultThrottle = time.Minute

// scaleRows is the realistic mode's rows and the sessions' tokens.
type scaleRows struct {
	rows   []*row
	tokens []string
}

// buildScaleRows creates n sessions and the five rows over them.
func buildScaleRows(ctx context.Context, e *env, n int) (*scaleRows, error) {
	skTrips := &redistest.Counter{}
	m, err := e.manager(skTrips, scalePrefix)
	if err != nil {
		return nil, err
	}

	// Sessions in use last wrote their activity at moments spread over the
	// activity throttle, so that each second about one in 60 of them (at
	// the default throttle of a minute) writes
	// again. Created together, they would all pass the throttle together a
	// minute later: a burst of writes that real traffic meets only after a
	// mass sign-in, and that would land on whichever row ran then. So each
	// session is created as if at a random moment of the last minute, by
	// one creating Manager per worker whose clock runs that far behind.
	tokens := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		var behind atomic.Int64 // ns
		creator, err := e.manager(skTrips, scalePrefix, sessionkit.WithClock(func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }))
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(uint64(w), 1))
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if e.throttle > 0 {
					behind.Store(rng.Int64N(int64(e.throttle)))
				}
				res, err := creator.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: "127.0.0.1", UserAgent: benchUA})
				if err != nil {
					errs <- err
					return
				}
				tokens[i] = res.Token
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	cookies := make([]string, n)
	for i, t := range tokens {
		cookies[i] = middleware.DefaultCookieName + "=" + t
	}

	body := uuid.NewString() // as long as the user id the session rows answer
	none := &row{key: "none", name: "no session layer", cookies: cookies, trips: &redistest.Counter{},
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reply(w, body) })}
	getTrips := &redistest.Counter{}
	plain := e.client(getTrips)
	if err := plain.Set(ctx, "bench:plain", uuid.NewString(), 0).Err(); err != nil {
		return nil, err
	}
	get := &row{key: "get", name: "one Redis GET", cookies: cookies, trips: getTrips,
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, err := plain.Get(r.Context(), "bench:plain").Result()
			if err != nil {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
			reply(w, v)
		})}
	mw, err := middleware.New(m, middleware.Options{})
	if err != nil {
		return nil, err
	}
	sk := &row{key: "sessionkit", name: "sessionkit middleware", cookies: cookies, handler: mw(sessionHandler()), trips: skTrips}

	rows := []*row{none, get, sk}
	caches := []struct {
		key, name string
		warm      bool
		opts      []sessionkit.Option
	}{
		{"cached", "sessionkit + cache", true, nil},
		// The same with every activity write on its request's path, as
		// sessionkit wrote them before it queued them: what queuing is worth.
		{"cached-sync", "sk + cache, writes inline", true, []sessionkit.Option{sessionkit.WithActivityWriteDelay(0)}},
		{"cached-cold", "sessionkit + cache, cold", false, nil},
	}
	for _, cr := range caches {
		if cr.key == "cached-sync" && e.writeDelay == 0 {
			continue // the cached row is this one already
		}
		r := &row{key: cr.key, name: cr.name, cookies: cookies, trips: &redistest.Counter{}}
		var current atomic.Pointer[http.Handler]
		r.handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { (*current.Load()).ServeHTTP(w, req) })
		r.mix = func(ctx context.Context) error {
			h, cache, err := scaleCache(ctx, e, r.trips, tokens, cr.warm, cr.opts...)
			if err != nil {
				return err
			}
			current.Store(&h)
			if r.cache != nil {
				r.cache.Close() // the last mix's: its memory goes before the load
			}
			r.cache = cache
			return nil
		}
		rows = append(rows, r)
	}
	return &scaleRows{rows: rows, tokens: tokens}, nil
}

// scaleCache returns the middleware over a new cache for a cache row of the
// realistic mode, which gets one at the start of each mix.
//
// A cold cache starts empty: the first seconds of a server. A warm one is
// filled first the way a server that has run a while under the mix holds
// it. At these rates every session is asked for far more often than the
// TTL (under Zipf the rarest, 1 in about 1.2 million requests, every 20 s
// or so at 60,000 requests a second), so such a cache holds every session,
// each stored at a moment spread over the last TTL, and so about 1/TTL of
// them expire each second and miss once. The warm cache is filled so: by
// its clock, in 100 batches (every 100th session, so each batch holds busy
// and idle sessions alike), each batch a hundredth of the TTL older than
// the next.
func scaleCache(ctx context.Context, e *env, trips *redistest.Counter, tokens []string, warm bool, opts ...sessionkit.Option) (http.Handler, *store.Cache, error) {
	var age atomic.Int64 // ns
	clock := func() time.Time { return time.Now().Add(-time.Duration(age.Load())) }
	m, cache, err := cachedManager(e, trips, store.CacheOptions{Clock: clock}, opts...)
	if err != nil {
		return nil, nil, err
	}
	mw, err := middleware.New(m, middleware.Options{})
	if err != nil {
		return nil, nil, err
	}
	if err := waitCacheOn(ctx, cache); err != nil {
		return nil, nil, err
	}
	if warm {
		const batches = 100
		for b := range batches {
			age.Store(int64(store.DefaultCacheTTL) * int64(batches-1-b) / batches)
			var batch []string
			for i := b; i < len(tokens); i += batches {
				batch = append(batch, tokens[i])
			}
			if err := authenticateAll(ctx, m, batch); err != nil {
				return nil, nil, err
			}
		}
		age.Store(0)
	}
	return mw(sessionHandler()), cache, nil
}

// authenticateAll authenticates every token once through m, 16 at a time.
func authenticateAll(ctx context.Context, m *sessionkit.Manager, tokens []string) error {
	ip := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(tokens); i += 16 {
				if _, err := m.Authenticate(ctx, tokens[i], ip); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// cachedManager is a Manager over a cache of its own, on a client of its own.
func cachedManager(e *env, trips *redistest.Counter, opts store.CacheOptions, mopts ...sessionkit.Option) (*sessionkit.Manager, *store.Cache, error) {
	st, err := store.NewRedis(e.client(trips), store.Options{Prefix: scalePrefix})
	if err != nil {
		return nil, nil, err
	}
	cache, err := store.NewCache(st, opts)
	if err != nil {
		return nil, nil, err
	}
	e.closers = append(e.closers, func() { cache.Close() })
	m, err := sessionkit.New(cache, append(e.options(), mopts...)...)
	if err != nil {
		return nil, nil, err
	}
	e.closers = append(e.closers, func() { m.Close(context.Background()) })
	return m, cache, nil
}

// cacheBytes fills a cache of its own with every session (authenticating
// each once) and returns the live heap it grew by, per entry added after
// the first sessions primed it, and the number of entries.
func cacheBytes(ctx context.Context, e *env, tokens []string) (float64, int, error) {
	m, cache, err := cachedManager(e, nil, store.CacheOptions{MaxEntries: len(tokens)})
	if err != nil {
		return 0, 0, err
	}
	if err := waitCacheOn(ctx, cache); err != nil {
		return 0, 0, err
	}
	// The first of the sessions fill the client's pool of connections and
	// their buffers, and the cache's shards, before the heap is read: the
	// figure is what the rest add.
	const primed = 2000
	fill := func(from, to int) error { return authenticateAll(ctx, m, tokens[from:to]) }
	if err := fill(0, min(primed, len(tokens))); err != nil {
		return 0, 0, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	entriesBefore := cache.Stats().Entries
	if err := fill(min(primed, len(tokens)), len(tokens)); err != nil {
		return 0, 0, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	entries := cache.Stats().Entries
	grown := float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
	runtime.KeepAlive(m)
	cache.Close() // its memory goes before the load
	return grown / float64(max(1, entries-entriesBefore)), entries, nil
}

// realistic runs the realistic mode and writes its report to w.
func realistic(ctx context.Context, e *env, admin *redis.Client, c config, w io.Writer) error {
	fmt.Printf("realistic mode: creating %d sessions\n", c.scaleSessions)
	start := time.Now()
	sr, err := buildScaleRows(ctx, e, c.scaleSessions)
	if err != nil {
		return err
	}
	fmt.Printf("created in %v\n", time.Since(start).Round(time.Millisecond))
	for _, r := range sr.rows {
		if err := r.serve(); err != nil {
			return err
		}
		defer r.srv.Close()
	}
	perEntry, entries, err := cacheBytes(ctx, e, sr.tokens)
	if err != nil {
		return err
	}
	l, err := newLoader(c.threads, c.conns)
	if err != nil {
		return err
	}
	defer l.close()

	if c.cpuprofile != "" && c.scaleOnly { // else the main rows' rounds are profiled
		stopProfile, err := startCPUProfile(c.cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	type mixResult struct {
		mix     string
		results [][]loadResult
		stats   []store.CacheStats // of each row, its counters over the rounds
	}
	stats := func() []store.CacheStats {
		out := make([]store.CacheStats, len(sr.rows))
		for i, r := range sr.rows {
			if r.cache != nil {
				out[i] = r.cache.Stats()
			}
		}
		return out
	}
	var out []mixResult
	for k, mix := range strings.Split(c.scaleMixes, ",") {
		mix = strings.TrimSpace(mix)
		if mix != "zipf" && mix != "uniform" {
			return fmt.Errorf("-scale-mixes: unknown mix %q (zipf, uniform)", mix)
		}
		seed := func(round, row int) string { return fmt.Sprint(1 + 1000*k + 10*round + row) }
		for _, r := range sr.rows {
			if r.mix != nil {
				if err := r.mix(ctx); err != nil {
					return err
				}
			}
		}
		if c.scaleWarmup > 0 {
			fmt.Printf("%s mix: warming up each row for %v\n", mix, c.scaleWarmup)
			for i, r := range sr.rows {
				if _, err := l.runPicked(ctx, admin, r, c.scaleWarmup, mix, seed(99, i)); err != nil {
					return err
				}
			}
		}
		before := stats()
		results := make([][]loadResult, len(sr.rows))
		for round := range c.scaleRounds {
			for j := range sr.rows {
				i := (j + round) % len(sr.rows)
				r := sr.rows[i]
				res, err := l.runPicked(ctx, admin, r, c.duration, mix, seed(round, i))
				if err != nil {
					return err
				}
				if res.statusErrors > 0 {
					return fmt.Errorf("%s mix, row %s, round %d: %d of %d responses were not 2xx or 3xx",
						mix, r.key, round+1, res.statusErrors, res.requests)
				}
				fmt.Printf("%s round %d  %-24s %9.0f req/s  p50 %-9v p99 %-9v  %.3f round trips, %.4f writes per request\n",
					mix, round+1, r.name, res.rps(), res.p50, res.p99, res.roundTrips, res.writes)
				results[i] = append(results[i], res)
			}
		}
		after := stats()
		for i := range after {
			after[i].Hits -= before[i].Hits
			after[i].Misses -= before[i].Misses
		}
		out = append(out, mixResult{mix: mix, results: results, stats: after})
	}

	fmt.Fprintf(w, "\nrealistic mode: %d sessions, one per user, each request's session picked at random; %d rounds of %v per row and mix after %v of warm-up%s\n",
		c.scaleSessions, c.scaleRounds, c.duration, c.scaleWarmup, activityNote(c))
	fmt.Fprintf(w, "heap per cached session: %.0f bytes (a cache of %d entries; live heap after GC, runtime.MemStats.HeapAlloc, grown by all but the first 2,000)\n", perEntry, entries)
	for _, mr := range out {
		what := "Zipf's law, s = 1: the k-th session asked for with weight 1/k"
		if mr.mix == "uniform" {
			what = "uniform: every session alike"
		}
		fmt.Fprintf(w, "\n%s mix (%s)\n", mr.mix, what)
		writeTable(w, sr.rows, mr.results, c)
		none, get := mr.results[0], mr.results[1]
		for i, r := range sr.rows {
			if r.cache == nil {
				continue
			}
			var vsNone, vsGet, p99 []float64
			for round, res := range mr.results[i] {
				vsNone = append(vsNone, res.rps()/none[round].rps())
				vsGet = append(vsGet, res.rps()/get[round].rps())
				p99 = append(p99, float64(res.p99)/float64(get[round].p99))
			}
			st := mr.stats[i]
			fmt.Fprintf(w, "%s, %s: × none %s, × one GET %s, p99 × one GET's p99 %s; cache hit ratio %.3f (%d hits, %d misses, %d entries at the end)\n",
				mr.mix, r.name, spread(vsNone), spread(vsGet), spread(p99),
				float64(st.Hits)/float64(max(1, st.Hits+st.Misses)), st.Hits, st.Misses, st.Entries)
		}
	}
	return nil
}
