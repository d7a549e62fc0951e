// Command bench is sessionkit's load harness (make bench). It starts its
// own redis-server, serves one small protected route on loopback behind
// each of seven configurations, loads them in turn with wrk (a second
// process) over many keep-alive connections for several alternating
// rounds, and prints requests per second, p50 and p99 latency, each row's
// ratio to a handler doing one plain Redis GET and to no session layer at
// all, and the Redis commands each request cost, counted by the server
// (INFO commandstats). It then measures how long a revocation takes to
// be refused by a second instance that had the session cached. Last comes
// the realistic mode (realistic.go): 100,000 sessions, picked under
// Zipf's law and then uniformly, with the cache's hit ratio and the heap
// one cached session costs.
//
// The table and the raw figures go to stdout and to bench/results/.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

type config struct {
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	threads     int
	conns       int
	sessions    int
	pool        int
	revocations int
	out         string
	rows        string
	cpuprofile  string

	scaleSessions int           // the realistic mode's sessions; 0 skips it
	scaleMixes    string        // its request mixes, comma-separated
	scaleRounds   int           // its rounds per mix
	scaleWarmup   time.Duration // its unrecorded load per row and mix
	scaleOnly     bool          // the realistic mode alone
	throttle      time.Duration // the sessionkit rows' activity throttle
	writeDelay    time.Duration // and their activity write delay

	costN    int  // sessions per row of the cost table; 0 skips it
	costOnly bool // the cost table alone
}

func main() {
	var c config
	flag.IntVar(&c.rounds, "rounds", 5, "rounds over all rows")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "load per row and round (whole seconds)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unrecorded load per row before the first round")
	flag.IntVar(&c.threads, "threads", 1, "wrk threads")
	flag.IntVar(&c.conns, "conns", 64, "concurrent keep-alive connections")
	flag.IntVar(&c.sessions, "sessions", 1000, "sessions per row, one per user, used in turn")
	flag.IntVar(&c.pool, "pool", 64, "Redis connection pool size of every row")
	flag.IntVar(&c.revocations, "revocations", 1000, "revocations timed for propagation to a second instance (0: skip the timing)")
	flag.StringVar(&c.out, "out", "results", "directory for the results")
	flag.StringVar(&c.rows, "rows", "", "comma-separated rows to run besides none and get: get-ap, read, scs, scs-write, sessionkit, cached, bearer, bearer-cached (default: all)")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the rounds (with -scale-only, of the realistic mode) to this file; samples carry a row label (go tool pprof -tagfocus row=sessionkit); the realistic mode's cache rows, each served by a process of its own, write theirs to this name with .<row> added")
	flag.IntVar(&c.scaleSessions, "scale-sessions", 100_000, "sessions of the realistic mode (0: skip it)")
	flag.StringVar(&c.scaleMixes, "scale-mixes", "zipf,uniform", "request mixes of the realistic mode: zipf (Zipf's law, s = 1), uniform")
	flag.IntVar(&c.scaleRounds, "scale-rounds", 5, "rounds per mix of the realistic mode, of -duration each")
	flag.DurationVar(&c.scaleWarmup, "scale-warmup", 3*time.Second, "unrecorded load per row and mix of the realistic mode")
	flag.DurationVar(&c.throttle, "throttle", defaultThrottle, "activity throttle of the sessionkit rows (sessionkit.WithActivityThrottle; the default is sessionkit's): a longer one shows what the activity writes cost")
	flag.DurationVar(&c.writeDelay, "write-delay", sessionkit.DefaultActivityWriteDelay, "how long the sessionkit rows' activity writes wait to be sent together (sessionkit.WithActivityWriteDelay; 0: on the request path)")
	flag.BoolVar(&c.scaleOnly, "scale-only", false, "run the realistic mode alone, without the main rows or the propagation timing")
	flag.IntVar(&c.costN, "cost-sessions", 20000, "sessions per row of the cost table (0: no cost table)")
	flag.BoolVar(&c.costOnly, "cost-only", false, "print only the cost table")
	serveRow := flag.String("serve-cache-row", "", "serve a cache row of the realistic mode from this spec file (the harness starts such processes itself)")
	flag.Parse()
	if *serveRow != "" {
		if err := serveCacheRow(*serveRow); err != nil {
			fmt.Fprintln(os.Stderr, "bench -serve-cache-row:", err)
			os.Exit(1)
		}
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.costOnly {
		rows, s, err := cost(ctx, c.costN, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		writeCost(os.Stdout, rows, s)
		return nil
	}
	// The same starter the tests use: a free loopback port, no persistence.
	srv, err := redistest.StartServer(redistest.Options{MaxMemoryPolicy: "noeviction"})
	if err != nil {
		return err
	}
	defer srv.Stop()
	dir, err := os.MkdirTemp("", "sessionkit-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{addr: srv.Addr(), poolSize: c.pool, sessions: c.sessions, throttle: c.throttle, writeDelay: c.writeDelay, quiet: slog.New(slog.DiscardHandler), dir: dir}
	if c.scaleOnly {
		e.cpuprofile = c.cpuprofile
	}
	defer e.close()
	admin := e.client(nil)

	m := machine(ctx, admin, c)
	fmt.Print(m)
	var tables bytes.Buffer // the report, printed and saved at the end
	if !c.scaleOnly {
		if err := mainRows(ctx, e, admin, c, &tables); err != nil {
			return err
		}
	}
	if c.scaleSessions > 0 {
		if err := realistic(ctx, e, admin, c, &tables); err != nil {
			return err
		}
	}
	if c.costN > 0 && !c.scaleOnly {
		fmt.Printf("measuring the cost table (%d sessions per row)\n", c.costN)
		rows, s, err := cost(ctx, c.costN, e.quiet)
		if err != nil {
			return err
		}
		writeCost(&tables, rows, s)
	}

	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	name := filepath.Join(c.out, time.Now().UTC().Format("20060102-150405")+".txt")
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Println()
	fmt.Fprint(f, m)
	if _, err := io.MultiWriter(os.Stdout, f).Write(tables.Bytes()); err != nil {
		return err
	}
	fmt.Printf("\nresults written to %s\n", name)
	return os.WriteFile(filepath.Join(c.out, "latest.txt"), mustRead(name), 0o644)
}

// mainRows loads the main rows, times the revocations' propagation and
// writes the table and the figures to report.
func mainRows(ctx context.Context, e *env, admin *redis.Client, c config, report io.Writer) error {
	rows, err := buildRows(ctx, e)
	if err != nil {
		return err
	}
	if c.rows != "" { // the two reference rows always stay
		keep := map[string]bool{"none": true, "get": true}
		for k := range strings.SplitSeq(c.rows, ",") {
			keep[strings.TrimSpace(k)] = true
		}
		rows = slices.DeleteFunc(rows, func(r *row) bool { return !keep[r.key] })
	}
	for _, r := range rows {
		if err := r.serve(); err != nil {
			return err
		}
		defer r.srv.Close()
	}
	l, err := newLoader(c.threads, c.conns)
	if err != nil {
		return err
	}
	defer l.close()

	if c.warmup > 0 {
		fmt.Printf("warming up each row for %v\n", c.warmup)
		for _, r := range rows {
			if _, err := l.run(ctx, admin, r, c.warmup); err != nil {
				return err
			}
		}
	}
	if c.cpuprofile != "" {
		stopProfile, err := startCPUProfile(c.cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	results := make([][]loadResult, len(rows)) // [row][round]
	for round := range c.rounds {
		for k := range rows {
			i := (k + round) % len(rows) // each round starts one row later
			res, err := l.run(ctx, admin, rows[i], c.duration)
			if err != nil {
				return err
			}
			if res.statusErrors > 0 {
				// Every row answers 200 to a valid session: anything else is a bug.
				return fmt.Errorf("row %s, round %d: %d of %d responses were not 2xx or 3xx",
					rows[i].key, round+1, res.statusErrors, res.requests)
			}
			if res.socketErrors > 0 { // counted in the table; a loaded machine can time out
				fmt.Printf("round %d  %-28s socket errors: %s\n", round+1, rows[i].name, res.socketDetail)
			}
			fmt.Printf("round %d  %-28s %9.0f req/s  p50 %-9v p99 %-9v  %.3f round trips, %.3f commands, %.4f writes, %.1f µs of Redis CPU per request\n",
				round+1, rows[i].name, res.rps(), res.p50, res.p99, res.roundTrips, res.commands, res.writes, res.redisCPU)
			results[i] = append(results[i], res)
		}
	}

	var prop, propBearer []time.Duration
	if c.revocations > 0 {
		fmt.Printf("timing %d revocations seen by a second instance\n", c.revocations)
		var err error
		if prop, err = propagation(ctx, e, c.revocations, false, nil); err != nil {
			return err
		}
		fmt.Printf("timing %d revocations of bearer sessions seen by a second instance\n", c.revocations)
		if propBearer, err = propagation(ctx, e, c.revocations, true, nil); err != nil {
			return err
		}
	}
	var cached store.CacheStats
	for _, r := range rows {
		if r.key == "cached" {
			cached = r.cache.Stats()
		}
	}

	writeTable(report, rows, results, c)
	if len(prop) > 0 && len(propBearer) > 0 {
		fmt.Fprintf(report, "\nrevocation reaching a second instance (cache on, %d revocations, from the start of RevokeSession to the first refusal): p50 %v, p99 %v, max %v\n",
			len(prop), pct(prop, 50).Round(time.Microsecond), pct(prop, 99).Round(time.Microsecond), prop[len(prop)-1].Round(time.Microsecond))
		fmt.Fprintf(report, "the same for bearer sessions' access tokens (%d revocations): p50 %v, p99 %v, max %v\n",
			len(propBearer), pct(propBearer, 50).Round(time.Microsecond), pct(propBearer, 99).Round(time.Microsecond), propBearer[len(propBearer)-1].Round(time.Microsecond))
	}
	fmt.Fprintf(report, "cache row: %d hits, %d misses (hit ratio %.3f)\n", cached.Hits, cached.Misses,
		float64(cached.Hits)/float64(max(1, cached.Hits+cached.Misses)))
	writeAgainstPipelined(report, rows, results)
	return nil
}

// writeAgainstPipelined gives the uncached sessionkit rows against the
// autopipelined GET, the same reads batched the same way: what the session
// check costs beyond its read. Then the same rows and the session's read
// alone against each other, splitting that cost between reading a session
// rather than one hot key, and the Go work of the check. Ratios are taken
// within each round.
func writeAgainstPipelined(w io.Writer, rows []*row, results [][]loadResult) {
	index := func(key string) int { return slices.IndexFunc(rows, func(r *row) bool { return r.key == key }) }
	against := func(i, base int) {
		if i < 0 || base < 0 {
			return
		}
		var ratio []float64
		for round, res := range results[i] {
			ratio = append(ratio, res.rps()/results[base][round].rps())
		}
		fmt.Fprintf(w, "%s against the %s: %s\n", rows[i].name, baseName[rows[base].key], spread(ratio))
	}
	ap, read := index("get-ap"), index("read")
	for _, key := range []string{"read", "sessionkit", "bearer"} {
		against(index(key), ap)
	}
	against(index("sessionkit"), read)
}

var baseName = map[string]string{"get-ap": "autopipelined GET", "read": "session's HGET alone"}

func mustRead(name string) []byte {
	b, _ := os.ReadFile(name)
	return b
}

// machine describes where and how the run happened.
func machine(ctx context.Context, admin *redis.Client, c config) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range splitLines(string(b)) {
			if k, v, ok := cut(line, ":"); ok && k == "model name" {
				cpu = v
				break
			}
		}
	}
	version := "?"
	if info, err := admin.Info(ctx, "server").Result(); err == nil {
		for _, line := range splitLines(info) {
			if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
				version = v
			}
		}
	}
	return fmt.Sprintf("machine: %s, %d CPUs (shared by redis-server, this server and wrk), %s/%s, %s, redis %s\n"+
		"load: wrk -t%d -c%d, %v per row per round, %d rounds; %d sessions per row; Redis pool %d per row%s\n",
		cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), version, c.threads, c.conns, c.duration, c.rounds, c.sessions, c.pool, activityNote(c))
}

// activityNote names the rows' activity throttle and write delay where
// they are not sessionkit's defaults.
func activityNote(c config) string {
	var note string
	if c.throttle != defaultThrottle {
		note += fmt.Sprintf("; activity throttle %v (sessionkit's default: %v)", c.throttle, defaultThrottle)
	}
	if c.writeDelay != sessionkit.DefaultActivityWriteDelay {
		note += fmt.Sprintf("; activity write delay %v (sessionkit's default: %v)", c.writeDelay, sessionkit.DefaultActivityWriteDelay)
	}
	return note
}

// startCPUProfile profiles this process (the rows' servers and their Redis
// clients, not wrk or Redis) until the returned function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
