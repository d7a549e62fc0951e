package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

// The cost section sizes Redis the way an operator would: sessions created
// through the public API for users holding 1, 3 and 20 sessions each, on a
// fresh server per row, measured by the server itself (INFO memory and
// commandstats). Logins come from 64 concurrent clients, as a mass
// re-login after a deploy or an incident would.

// costUAs are the devices the logins come from, in turn: what a consumer
// app's users sign in with.
var costUAs = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
}

// costRow is one row of the cost table.
type costRow struct {
	perUser   int
	returning bool // each user signed in and out once before the row

	sessions     int
	bytes        float64 // used_memory growth per session
	scriptMicros float64 // Redis CPU in the login script, per login
	cpuMicros    float64 // Redis process CPU (user + sys) per login
	loginsPerSec float64
}

// scsRow is scs creating (committing) a new session, for comparison.
type scsRow struct {
	sessions     int
	bytes        float64
	cmdMicros    float64
	cpuMicros    float64
	loginsPerSec float64
}

const costClients = 64

// cost measures each row on its own fresh server.
func cost(ctx context.Context, sessions int, quiet *slog.Logger) ([]costRow, scsRow, error) {
	var rows []costRow
	for _, row := range []costRow{{perUser: 1}, {perUser: 1, returning: true}, {perUser: 3}, {perUser: 20}} {
		r, err := costOf(ctx, sessions, row.perUser, row.returning, quiet)
		if err != nil {
			return nil, scsRow{}, fmt.Errorf("cost, %d sessions per user: %w", row.perUser, err)
		}
		rows = append(rows, r)
	}
	s, err := scsCost(ctx, sessions)
	if err != nil {
		return nil, scsRow{}, fmt.Errorf("cost, scs: %w", err)
	}
	return rows, s, nil
}

// parallel calls fn(i) for i in [0, n) from costClients goroutines and
// returns the first error.
func parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	errs := make(chan error, costClients)
	var wg sync.WaitGroup
	for range costClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
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

// costServer starts a fresh redis-server for one row and returns a client
// of it; stop closes both.
func costServer() (c *redis.Client, stop func(), err error) {
	srv, err := redistest.StartServer(redistest.Options{MaxMemoryPolicy: "noeviction"})
	if err != nil {
		return nil, nil, err
	}
	c = redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: costClients, ContextTimeoutEnabled: true})
	return c, func() { c.Close(); srv.Stop() }, nil
}

func costOf(ctx context.Context, sessions, perUser int, returning bool, quiet *slog.Logger) (costRow, error) {
	c, stop, err := costServer()
	if err != nil {
		return costRow{}, err
	}
	defer stop()
	st, err := store.NewRedis(c, store.Options{})
	if err != nil {
		return costRow{}, err
	}
	m, err := sessionkit.New(st, sessionkit.WithLogger(quiet),
		sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
	if err != nil {
		return costRow{}, err
	}
	defer m.Close(context.Background())
	// One login first, so the scripts are loaded and the counters start
	// from a warm server; then reset the counters and take the baseline.
	if _, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: "198.51.100.1", UserAgent: costUAs[0]}); err != nil {
		return costRow{}, err
	}
	if err := c.FlushAll(ctx).Err(); err != nil {
		return costRow{}, err
	}
	users := sessions / perUser
	userID := func(u int) (id uuid.UUID) {
		copy(id[:], fmt.Sprintf("user%012d", u))
		return id
	}
	if returning { // a session each, signed out: a trail, a device history, a retained session
		if err := parallel(users, func(u int) error {
			_, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: userID(u), IPAddress: "198.51.100.1", UserAgent: costUAs[u%len(costUAs)]})
			if err == nil {
				_, err = m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: userID(u), Reason: "logout_everywhere"})
			}
			return err
		}); err != nil {
			return costRow{}, err
		}
	}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		return costRow{}, err
	}
	before, err := serverFigures(ctx, c)
	if err != nil {
		return costRow{}, err
	}
	start := time.Now()
	err = parallel(users*perUser, func(i int) error {
		// Login i is user i%users's (i/users)th: every user's first
		// session comes before anyone's second.
		u := i % users
		_, err := m.CreateSession(ctx, sessionkit.CreateSession{
			UserID:    userID(u),
			IPAddress: fmt.Sprintf("198.51.%d.%d", u/250%250, u%250+1),
			UserAgent: costUAs[(u+i/users)%len(costUAs)],
		})
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return costRow{}, err
	}
	after, err := serverFigures(ctx, c)
	if err != nil {
		return costRow{}, err
	}
	n := float64(users * perUser)
	return costRow{
		perUser:      perUser,
		returning:    returning,
		sessions:     users * perUser,
		bytes:        float64(after.memory-before.memory) / n,
		scriptMicros: after.scriptMicros / float64(max(1, after.scriptCalls)),
		cpuMicros:    (after.cpu - before.cpu) * 1e6 / n,
		loginsPerSec: n / elapsed.Seconds(),
	}, nil
}

// scsCost commits one new scs session per login: a SET with an expiry.
func scsCost(ctx context.Context, sessions int) (scsRow, error) {
	c, stop, err := costServer()
	if err != nil {
		return scsRow{}, err
	}
	defer stop()
	sm := scs.New()
	sm.Store = goredisstore.New(c)
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		return scsRow{}, err
	}
	before, err := serverFigures(ctx, c)
	if err != nil {
		return scsRow{}, err
	}
	start := time.Now()
	err = parallel(sessions, func(int) error {
		sctx, err := sm.Load(ctx, "")
		if err == nil {
			sm.Put(sctx, userKey, uuid.NewString())
			_, _, err = sm.Commit(sctx)
		}
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return scsRow{}, err
	}
	after, err := serverFigures(ctx, c)
	if err != nil {
		return scsRow{}, err
	}
	n := float64(sessions)
	return scsRow{
		sessions:     sessions,
		bytes:        float64(after.memory-before.memory) / n,
		cmdMicros:    after.setMicros / float64(max(1, after.setCalls)),
		cpuMicros:    (after.cpu - before.cpu) * 1e6 / n,
		loginsPerSec: n / elapsed.Seconds(),
	}, nil
}

type figures struct {
	memory                  int64
	cpu                     float64 // seconds, user + sys
	scriptCalls, setCalls   int64
	scriptMicros, setMicros float64 // total µs
}

// serverFigures reads used_memory less the clients' buffers, the process
// CPU and the time spent in EVALSHA/EVAL (sessionkit's scripts) and SET
// (scs).
func serverFigures(ctx context.Context, c *redis.Client) (figures, error) {
	var f figures
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return figures{}, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "used_memory" && k != "mem_clients_normal") {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return figures{}, fmt.Errorf("INFO line %q: %w", line, err)
		}
		if k == "used_memory" {
			f.memory += n
		} else {
			// What the connections hold (query and reply buffers) belongs
			// to them, not to the sessions: 64 clients' buffers, which
			// grow as the pool opens, would add up to 200 bytes a session.
			f.memory -= n
		}
	}
	if f.cpu, err = redistest.ServerCPU(ctx, c); err != nil {
		return figures{}, err
	}
	st, err := redistest.CommandStats(ctx, c)
	if err != nil {
		return figures{}, err
	}
	f.scriptCalls = st["evalsha"].Calls + st["eval"].Calls
	f.scriptMicros = st["evalsha"].Usec + st["eval"].Usec
	f.setCalls, f.setMicros = st["set"].Calls, st["set"].Usec
	return f, nil
}

func writeCost(w io.Writer, rows []costRow, s scsRow) {
	fmt.Fprintf(w, "\ncost at scale: sessions created through CreateSession by %d concurrent clients on a fresh Redis per row (no GeoIP database; User-Agents of iPhone Safari, Mac Chrome, Android Chrome, Windows Edge in turn; audit trail kept, default 1,000 events per user)\n", costClients)
	fmt.Fprintf(w, "%-18s %9s %14s %16s %14s %10s\n", "sessions per user", "sessions", "bytes/session", "script µs/login", "CPU µs/login", "logins/s")
	for _, r := range rows {
		if r.returning { // its memory growth is not a session's cost: the trail and history were there
			fmt.Fprintf(w, "%-18s %9d %14s %16.1f %14.1f %10.0f\n", "1, returning", r.sessions, "-", r.scriptMicros, r.cpuMicros, r.loginsPerSec)
			continue
		}
		fmt.Fprintf(w, "%-18d %9d %14.0f %16.1f %14.1f %10.0f\n", r.perUser, r.sessions, r.bytes, r.scriptMicros, r.cpuMicros, r.loginsPerSec)
	}
	fmt.Fprintf(w, "%-18s %9d %14.0f %16.1f %14.1f %10.0f\n", "scs (SET)", s.sessions, s.bytes, s.cmdMicros, s.cpuMicros, s.loginsPerSec)
	if len(rows) > 0 && s.loginsPerSec > 0 {
		fmt.Fprintf(w, "logins/s, one session per user, to scs creating a session: %.2f×\n", rows[0].loginsPerSec/s.loginsPerSec)
	}
	fmt.Fprintln(w, "1, returning: users who signed in and out once before, so each login finds a trail, a device history and a retained session (the general path, as in a mass re-login).")
	fmt.Fprintln(w, "bytes/session: growth of INFO used_memory over the row, less the connections' buffers (mem_clients_normal). script µs: INFO commandstats (EVALSHA and EVAL) per login. CPU µs: redis-server's user + sys CPU per login, all work included.")
}
