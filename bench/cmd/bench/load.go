package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

//go:embed session.lua
var wrkScript string

// loadResult is one wrk run against one row.
type loadResult struct {
	requests     int64
	duration     time.Duration
	p50, p99     time.Duration
	statusErrors int64
	socketErrors int64
	socketDetail string           // which socket errors, as wrk counts them
	roundTrips   float64          // Redis round trips per request, counted by the row's clients
	commands     float64          // Redis commands per request, inside scripts too, counted by the server
	writes       float64          // Redis write commands per request, inside scripts too, counted by the server
	redisCPU     float64          // Redis CPU time per request (user + system), µs
	goCPU        float64          // this process's CPU time per request (the row's server and clients, and the garbage collector), µs
	wrkCPU       float64          // wrk's CPU time per request, µs
	cache        store.CacheStats // a cache row's: hits and misses over the run, entries at its end
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.duration.Seconds() }

// loader runs wrk from its own process against a row.
type loader struct {
	wrk     string
	dir     string // script and cookie files
	threads int
	conns   int
}

func newLoader(threads, conns int) (*loader, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, errors.New("wrk not found: install it (apt-get install wrk; make bench does) and run again")
	}
	dir, err := os.MkdirTemp("", "sessionkit-bench-wrk-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "session.lua"), []byte(wrkScript), 0o600); err != nil {
		return nil, err
	}
	return &loader{wrk: bin, dir: dir, threads: threads, conns: conns}, nil
}

func (l *loader) close() { os.RemoveAll(l.dir) }

func (l *loader) cookieFile(r *row) (string, error) {
	path := filepath.Join(l.dir, r.key+".cookies")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	name := r.header
	if name == "" {
		name = "Cookie"
	}
	var b strings.Builder
	for _, v := range r.cookies {
		b.WriteString(name + ": " + v + "\n")
	}
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// run loads r for d, its sessions in turn, and counts the Redis commands
// it caused.
func (l *loader) run(ctx context.Context, admin *redis.Client, r *row, d time.Duration) (loadResult, error) {
	return l.runPicked(ctx, admin, r, d, "turn", "1")
}

// runPicked is run with each request's session picked by mode (see
// session.lua: turn, uniform or zipf), seeded by seed.
func (l *loader) runPicked(ctx context.Context, admin *redis.Client, r *row, d time.Duration, mode, seed string) (loadResult, error) {
	cookies, err := l.cookieFile(r)
	if err != nil {
		return loadResult{}, err
	}
	before, err := commandStats(ctx, admin)
	if err != nil {
		return loadResult{}, err
	}
	usage, err := r.usage(loadStart)
	if err != nil {
		return loadResult{}, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	argv := []string{"-t", strconv.Itoa(l.threads), "-c", strconv.Itoa(l.conns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s", "-s", filepath.Join(l.dir, "session.lua"), r.url, "--", cookies, mode, seed}
	cmd := exec.CommandContext(ctx, l.wrk, argv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk on %s: %w\n%s", r.key, err, out)
	}
	used, err := r.usage(loadEnd)
	if err != nil {
		return loadResult{}, err
	}
	after, err := commandStats(ctx, admin)
	if err != nil {
		return loadResult{}, err
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk on %s: %w\n%s", r.key, err, out)
	}
	if res.requests > 0 {
		res.roundTrips = float64(used.RoundTrips-usage.RoundTrips) / float64(res.requests)
		res.commands = float64(after.commands-before.commands) / float64(res.requests)
		res.writes = float64(after.writes-before.writes) / float64(res.requests)
		res.redisCPU = (after.cpu - before.cpu) * 1e6 / float64(res.requests)
		res.goCPU = (used.CPU - usage.CPU).Seconds() * 1e6 / float64(res.requests)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.wrkCPU = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3 / float64(res.requests)
		}
	}
	res.cache = store.CacheStats{Hits: used.Cache.Hits - usage.Cache.Hits, Misses: used.Cache.Misses - usage.Cache.Misses,
		Invalidations: used.Cache.Invalidations - usage.Cache.Invalidations, Dropped: used.Cache.Dropped - usage.Cache.Dropped,
		Entries: used.Cache.Entries}
	return res, nil
}

func parseWrk(out string) (loadResult, error) {
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(line, "RESULT ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for f := range strings.FieldsSeq(rest) {
			k, s, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return loadResult{}, fmt.Errorf("field %q: %w", f, err)
			}
			v[k] = n
		}
		if v["duration_us"] <= 0 {
			return loadResult{}, errors.New("no duration")
		}
		return loadResult{
			requests: v["requests"], duration: time.Duration(v["duration_us"]) * time.Microsecond,
			p50: time.Duration(v["p50_us"]) * time.Microsecond, p99: time.Duration(v["p99_us"]) * time.Microsecond,
			statusErrors: v["status_errors"],
			socketErrors: v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["timeouts"],
			socketDetail: fmt.Sprintf("connect %d, read %d, write %d, timeout %d",
				v["connect_errors"], v["read_errors"], v["write_errors"], v["timeouts"]),
		}, nil
	}
	return loadResult{}, errors.New("no RESULT line")
}

// cmdCounts sums INFO commandstats: every command the rows cause, the ones
// Lua scripts run included, and the write commands among them.
// cpu is Redis's CPU time so far (INFO cpu, user + system), in seconds.
type cmdCounts struct {
	commands, writes int64
	cpu              float64
}

// notRequests are the harness's own commands (INFO), the cache's Pub/Sub
// health checks and connection handshakes: no request causes them.
var notRequests = []string{"info", "ping", "hello", "subscribe", "unsubscribe", "client|", "config|", "command|"}

func commandStats(ctx context.Context, c *redis.Client) (cmdCounts, error) {
	st, err := redistest.CommandStats(ctx, c)
	if err != nil {
		return cmdCounts{}, err
	}
	var n cmdCounts
	if n.cpu, err = redistest.ServerCPU(ctx, c); err != nil {
		return cmdCounts{}, err
	}
	for name, s := range st {
		if !slices.ContainsFunc(notRequests, func(p string) bool { return name == p || strings.HasSuffix(p, "|") && strings.HasPrefix(name, p) }) {
			n.commands += s.Calls
		}
		if redistest.IsWrite(name) {
			n.writes += s.Calls
		}
	}
	return n, nil
}

// processCPU is this process's CPU time so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpu is all the CPU time per request the run cost the machine, µs: the
// harness's (the row's server), Redis's and wrk's.
func (r loadResult) cpu() float64 { return r.goCPU + r.redisCPU + r.wrkCPU }

// serverCPU is the CPU time per request of what serves it, µs: the row's
// server and Redis, without the load generator's.
func (r loadResult) serverCPU() float64 { return r.goCPU + r.redisCPU }
