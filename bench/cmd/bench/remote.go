package main

// The realistic mode's cache rows are each served by a process of their
// own: this program, run with -serve-cache-row. A cache of 100,000
// sessions is a heap of some 25 MB that the garbage collector marks on
// every cycle, and in one process every row would pay that work for every
// cache row's heap: beside the three caches, the no-session-layer row
// served 79,000–85,000 requests a second against 87,000–91,000 without
// them, so the cache rows' ratios to it read several per cent high. In a
// process of its own, each row pays for its own heap only, as its server
// would, and a cache row's cache still lives through the whole mix, as a
// server's does.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

// rowSpec is what a cache row's process is started with, written as JSON
// to the file -serve-cache-row names.
type rowSpec struct {
	Addr       string        // Redis
	Pool       int           // its client's pool size
	Throttle   time.Duration // the Manager's activity throttle
	WriteDelay time.Duration // and activity write delay
	Warm       bool          // fill the cache first (see scaleCache)
	Tokens     string        // file of the sessions' tokens, one a line
	CPUProfile string        // where to write a CPU profile of the serving, if anywhere
}

// rowStats is what a cache row's process reports at statsPath: its
// counters so far.
type rowStats struct {
	Cache      store.CacheStats
	RoundTrips int64         // of its Redis client
	CPU        time.Duration // of the process, user and system
}

// statsPath is the path at which a cache row's process answers its stats;
// every other path is the row. Its query's load, when set, is loadStart
// (the stats before a run: the cache's clock starts first) or loadEnd
// (after it: the clock stops after).
const statsPath = "/_bench/stats"

const (
	loadStart = "start"
	loadEnd   = "end"
)

// serveCacheRow is the process of a cache row: it builds the row on a
// cache of its own, prints "LISTEN <address>", serves it and exits when
// its standard input closes (the harness ended or moved on).
func serveCacheRow(specFile string) error {
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var spec rowSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", specFile, err)
	}
	b, err = os.ReadFile(spec.Tokens)
	if err != nil {
		return err
	}
	tokens := strings.Fields(string(b))
	e := &env{addr: spec.Addr, poolSize: spec.Pool, throttle: spec.Throttle, writeDelay: spec.WriteDelay, quiet: slog.New(slog.DiscardHandler)}
	defer e.close()
	ctx := context.Background()
	trips := &redistest.Counter{}
	h, cache, clock, stop, err := scaleCache(ctx, e, trips, tokens, spec.Warm)
	if err != nil {
		return err
	}
	defer stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != statsPath {
				h.ServeHTTP(w, r)
				return
			}
			// Around each run: its cache's clock runs only while it is
			// loaded (see rowClock).
			load := r.URL.Query().Get("load")
			if load == loadStart {
				clock.start()
			}
			json.NewEncoder(w).Encode(rowStats{Cache: cache.Stats(), RoundTrips: trips.RoundTrips(), CPU: processCPU()})
			if load == loadEnd {
				clock.stop()
			}
		})}
	go srv.Serve(l)
	defer srv.Close()
	if spec.CPUProfile != "" {
		stopProfile, err := startCPUProfile(spec.CPUProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	fmt.Printf("LISTEN %s\n", l.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// remoteRow is a cache row's process, seen from the harness.
type remoteRow struct {
	cmd   *exec.Cmd
	stdin io.Closer
	base  string // http://host:port
}

// startRemote starts a process serving a cache row over spec, with the
// tokens in dir/tokens, and waits until it listens.
func startRemote(ctx context.Context, dir string, spec rowSpec, tokens []string) (*remoteRow, error) {
	spec.Tokens = filepath.Join(dir, "tokens")
	if _, err := os.Stat(spec.Tokens); err != nil {
		if err := os.WriteFile(spec.Tokens, []byte(strings.Join(tokens, "\n")), 0o600); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "row-*.json")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-serve-cache-row", f.Name())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rr := &remoteRow{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !ok {
		rr.close()
		return nil, fmt.Errorf("cache row process: no address (%q): %v", line, err)
	}
	rr.base = "http://" + addr
	return rr, nil
}

// stats reads the process's counters, at the start of a run or its end
// (load: loadStart or loadEnd).
func (rr *remoteRow) stats(load string) (rowStats, error) {
	resp, err := http.Get(rr.base + statsPath + "?load=" + load)
	if err != nil {
		return rowStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rowStats{}, fmt.Errorf("cache row process: %s", resp.Status)
	}
	var st rowStats
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// close ends the process: its standard input closes, and it closes its
// Manager (sending its queued writes), its cache and its client.
func (rr *remoteRow) close() error {
	rr.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- rr.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		rr.cmd.Process.Kill()
		return errors.Join(errors.New("cache row process: did not exit; killed"), <-done)
	}
}

// usage is the counters of the process serving r, at the start of a run
// or its end (load: loadStart or loadEnd): those of a cache row's own
// process, or this one's.
func (r *row) usage(load string) (rowStats, error) {
	if r.remote != nil {
		return r.remote.stats(load)
	}
	return rowStats{RoundTrips: r.trips.RoundTrips(), CPU: processCPU()}, nil
}
