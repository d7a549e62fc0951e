package main

// The realistic mode (-scale-sessions, on by default): many more sessions
// than the main rows' 1,000, asked for the way real traffic asks for them.
// Five rows (no session layer, one Redis GET, sessionkit, and sessionkit
// over a warm and over a cold cache, both with their default options)
// share -scale-sessions sessions, one per user, and wrk picks each
// request's session at random (session.lua): under Zipf's law with s = 1 (a
// few sessions are busy, most are seldom seen) and then uniformly (every
// session alike: the cache's worst case, its whole population in play).
// Each mix gets its own warm-up and rounds. A cache row is served by a
// process of its own (remote.go), started anew for each mix, with a new
// cache (see scaleCache); the cache rows' hit ratios are counted over the
// rounds only. Each run starts after a collection, so that no row pays
// for the garbage of the one before. Before the load, the heap one cached
// session costs is measured on a cache of its own, filled with every
// session.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
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
		key, name  string
		warm       bool
		writeDelay time.Duration
	}{
		{"cached", "sessionkit + cache", true, e.writeDelay},
		// The same with every activity write on its request's path, as
		// sessionkit wrote them before it queued them: what queuing is worth.
		{"cached-sync", "sk + cache, writes inline", true, 0},
		{"cached-cold", "sessionkit + cache, cold", false, e.writeDelay},
	}
	for _, cr := range caches {
		if cr.key == "cached-sync" && e.writeDelay == 0 {
			continue // the cached row is this one already
		}
		r := &row{key: cr.key, name: cr.name, cookies: cookies}
		spec := rowSpec{Addr: e.addr, Pool: e.poolSize, Throttle: e.throttle, WriteDelay: cr.writeDelay, Warm: cr.warm}
		if e.cpuprofile != "" {
			spec.CPUProfile = e.cpuprofile + "." + cr.key
		}
		r.mix = func(ctx context.Context) error {
			if r.remote != nil {
				if err := r.remote.close(); err != nil {
					return fmt.Errorf("row %s: %w", r.key, err)
				}
				r.remote = nil
			}
			rr, err := startRemote(ctx, e.dir, spec, tokens)
			if err != nil {
				return fmt.Errorf("row %s: %w", r.key, err)
			}
			r.remote, r.url = rr, rr.base+"/"
			return nil
		}
		rows = append(rows, r)
	}
	return &scaleRows{rows: rows, tokens: tokens}, nil
}

// scaleCache returns the middleware over a new cache for a run of a cache
// row of the realistic mode, and what closes them.
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
//
// The cache's clock (rowClock) then stands still until the row's first
// run, and between its runs: see rowClock.
func scaleCache(ctx context.Context, e *env, trips *redistest.Counter, tokens []string, warm bool) (_ http.Handler, _ *store.Cache, _ *rowClock, stop func(), err error) {
	clock := &rowClock{}
	m, cache, stop, err := cachedManager(e, trips, store.CacheOptions{Clock: clock.now})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	mw, err := middleware.New(m, middleware.Options{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := waitCacheOn(ctx, cache); err != nil {
		return nil, nil, nil, nil, err
	}
	if warm {
		// The fill reads each session once, as a server's traffic would
		// have, through a Manager of its own on the same cache that writes
		// no activity: the row's writes, due or not, are the load's.
		filler, err := sessionkit.New(cache, append(e.options(), sessionkit.WithActivityThrottle(time.Hour))...)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		defer filler.Close(context.Background())
		const batches = 100
		for b := range batches {
			clock.age.Store(int64(store.DefaultCacheTTL) * int64(batches-1-b) / batches)
			var batch []string
			for i := b; i < len(tokens); i += batches {
				batch = append(batch, tokens[i])
			}
			if err := authenticateAll(ctx, filler, batch); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		clock.age.Store(0)
	}
	clock.stop()
	return mw(sessionHandler()), cache, clock, stop, nil
}

// rowClock is a cache row's clock: the wall clock less age, standing still
// while stopped. The harness loads one row at a time, so a row's process
// stands idle through the other rows' runs, some five-sixths of the mix;
// a server under steady load never does. On the wall clock, its cache's
// entries reached their TTL through those pauses too, and missed on the
// row's next run: under Zipf, 18,755 to 19,473 misses in three rounds of
// 5 s (2.0% to 2.3% of requests), against 3,343 to 3,548 (0.35%) with the
// clock stopped between runs; a steady server's expiries are 1/TTL of its
// sessions a second. So the clock stops between the row's runs (the stats
// calls around each run stop and start it), and the cache ages only under
// load. The Manager keeps the wall clock: the rows share their sessions,
// and their activity writes must agree on when a session was last seen.
// The rows' sessions have no idle timeout, the one thing for which a cache
// reads its clock against the Manager's.
type rowClock struct {
	age     atomic.Int64              // ns behind the wall clock
	mu      sync.Mutex                // serializes stop and start
	frozen  atomic.Pointer[time.Time] // the reading while stopped; nil while running
	stopped time.Time                 // the wall clock when it stopped
}

// now is the clock's reading.
func (c *rowClock) now() time.Time {
	if f := c.frozen.Load(); f != nil {
		return *f
	}
	return time.Now().Add(-time.Duration(c.age.Load()))
}

// stop stops the clock, unless it is stopped.
func (c *rowClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen.Load() != nil {
		return
	}
	c.stopped = time.Now()
	t := c.stopped.Add(-time.Duration(c.age.Load()))
	c.frozen.Store(&t)
}

// start starts the clock again from the reading it stopped at, unless it
// is running.
func (c *rowClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen.Load() == nil {
		return
	}
	c.age.Add(int64(time.Since(c.stopped))) // before the reading goes: never backwards
	c.frozen.Store(nil)
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

// cachedManager is a Manager over a cache of its own, on a client of its
// own, and what closes the three (the Manager first: its queued activity
// writes are sent).
func cachedManager(e *env, trips *redistest.Counter, opts store.CacheOptions) (*sessionkit.Manager, *store.Cache, func(), error) {
	c := e.newClient(trips)
	st, err := store.NewRedis(c, store.Options{Prefix: scalePrefix})
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	cache, err := store.NewCache(st, opts)
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	m, err := sessionkit.New(cache, e.options()...)
	if err != nil {
		cache.Close()
		c.Close()
		return nil, nil, nil, err
	}
	stop := func() {
		m.Close(context.Background())
		cache.Close()
		c.Close()
	}
	return m, cache, stop, nil
}

// cacheBytes fills a cache of its own with every session (authenticating
// each once) and returns the live heap it grew by, per entry added after
// the first sessions primed it, and the number of entries.
func cacheBytes(ctx context.Context, e *env, tokens []string) (float64, int, error) {
	m, cache, stop, err := cachedManager(e, nil, store.CacheOptions{MaxEntries: len(tokens)})
	if err != nil {
		return 0, 0, err
	}
	defer stop() // its memory goes before the load
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
		if r.mix != nil { // served by a process of its own
			defer func() {
				if r.remote != nil {
					r.remote.close()
				}
			}()
			continue
		}
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
		// stats is each cache row's hits and misses summed over its rounds,
		// and its entries at the end of the last.
		stats []store.CacheStats
		// prop is the revocations timed while the warm cache row served
		// the mix (propagationUnderLoad).
		prop *loadedPropagation
	}
	// run is one run of r, after a collection.
	run := func(r *row, d time.Duration, mix, seed string) (loadResult, error) {
		runtime.GC()
		return l.runPicked(ctx, admin, r, d, mix, seed)
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
				if _, err := run(r, c.scaleWarmup, mix, seed(99, i)); err != nil {
					return err
				}
			}
		}
		stats := make([]store.CacheStats, len(sr.rows))
		results := make([][]loadResult, len(sr.rows))
		for round := range c.scaleRounds {
			for j := range sr.rows {
				i := (j + round) % len(sr.rows)
				r := sr.rows[i]
				res, err := run(r, c.duration, mix, seed(round, i))
				if err != nil {
					return err
				}
				stats[i].Hits += res.cache.Hits
				stats[i].Misses += res.cache.Misses
				stats[i].Invalidations += res.cache.Invalidations
				stats[i].Dropped += res.cache.Dropped
				stats[i].Entries = res.cache.Entries
				if res.statusErrors > 0 {
					return fmt.Errorf("%s mix, row %s, round %d: %d of %d responses were not 2xx or 3xx",
						mix, r.key, round+1, res.statusErrors, res.requests)
				}
				fmt.Printf("%s round %d  %-24s %9.0f req/s  p50 %-9v p99 %-9v  %.3f round trips, %.4f writes per request\n",
					mix, round+1, r.name, res.rps(), res.p50, res.p99, res.roundTrips, res.writes)
				results[i] = append(results[i], res)
			}
		}
		mr := mixResult{mix: mix, results: results, stats: stats}
		if c.revocations > 0 {
			if mr.prop, err = propagationUnderLoad(ctx, e, sr.rows, c, func(r *row) (loadResult, error) {
				return run(r, c.duration, mix, seed(98, slices.Index(sr.rows, r)))
			}); err != nil {
				return fmt.Errorf("%s mix: %w", mix, err)
			}
		}
		out = append(out, mr)
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
			if r.mix == nil {
				continue
			}
			var vsNone, cpuVsNone, serverVsNone, vsGet, p99 []float64
			for round, res := range mr.results[i] {
				vsNone = append(vsNone, res.rps()/none[round].rps())
				cpuVsNone = append(cpuVsNone, none[round].cpu()/res.cpu())
				serverVsNone = append(serverVsNone, none[round].serverCPU()/res.serverCPU())
				vsGet = append(vsGet, res.rps()/get[round].rps())
				p99 = append(p99, float64(res.p99)/float64(get[round].p99))
			}
			st := mr.stats[i]
			fmt.Fprintf(w, "%s, %s: × none %s (by CPU per request, none's ÷ this row's: %s; the server's and Redis's alone, without wrk's: %s), × one GET %s, p99 × one GET's p99 %s; cache hit ratio %.3f (%d hits, %d misses, %d entries at the end of the last round; %d invalidations, the subscription lost %d times)\n",
				mr.mix, r.name, spread(vsNone), spread(cpuVsNone), spread(serverVsNone), spread(vsGet), spread(p99),
				float64(st.Hits)/float64(max(1, st.Hits+st.Misses)), st.Hits, st.Misses, st.Entries, st.Invalidations, st.Dropped)
		}
		if p := mr.prop; p != nil {
			fmt.Fprintf(w, "%s, revocation reaching a second instance while %s serves the mix (%.0f req/s; cache on, %d revocations, from the start of RevokeSession to the first refusal): p50 %v, p99 %v, max %v\n",
				mr.mix, p.row, p.load.rps(), len(p.times), pct(p.times, 50).Round(time.Microsecond), pct(p.times, 99).Round(time.Microsecond), p.times[len(p.times)-1].Round(time.Microsecond))
		}
	}
	return nil
}
