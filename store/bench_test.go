package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// Benchmarks of the store's hot paths against the standalone test server.
// The scale benchmark loads a million sessions into its own server and runs
// only with SESSIONKIT_SCALE=1.

// benchManager returns a fixture on the standalone backend, on the real
// time, over the cache when cached, with a prefix of its own.
func benchManager(b *testing.B, cached bool, opts ...sessionkit.Option) *sessiontest.Fixture {
	b.Helper()
	o := sessiontest.Options{Client: backends[0].Client, RealTime: true}
	if cached {
		o.Cache = &store.CacheOptions{}
	}
	return sessiontest.New(b, o, opts...)
}

// BenchmarkAuthenticate is the middleware's round trip on the throttled
// path: token check, state check, no write. "serial" is one caller at a
// time (latency); "parallel" is 64 concurrent callers (throughput), where
// the autopipeliner writes concurrent reads together. Each runs with the
// autopipeliner (the default) and without it (NoAutoPipeline).
func BenchmarkAuthenticate(b *testing.B) {
	for _, mode := range readModes {
		f := managerWith(b, backends[0].Client, mode.opts)
		m := f.M
		tokens := make([]string, 64)
		for i := range tokens {
			tokens[i] = f.Login(b, uuid.New()).Token
		}
		ctx := context.Background()
		b.Run(mode.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Authenticate(ctx, tokens[0], loginIP); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/parallel", func(b *testing.B) {
			var next atomic.Uint32
			b.ReportAllocs()
			b.SetParallelism(32) // 64 goroutines on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				tok := tokens[int(next.Add(1))%len(tokens)]
				for pb.Next() {
					if _, err := m.Authenticate(ctx, tok, loginIP); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAuthenticateCached is the same over the verified-session cache
// (default TTL): most calls are answered from memory.
func BenchmarkAuthenticateCached(b *testing.B) {
	f := benchManager(b, true)
	m, cache := f.M, f.Cache
	v := f.Login(b, uuid.New())
	ctx := context.Background()
	before := cache.Stats()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Authenticate(ctx, v.Token, loginIP); err != nil {
			b.Fatal(err)
		}
	}
	after := cache.Stats()
	if n := after.Hits + after.Misses - before.Hits - before.Misses; n > 0 {
		b.ReportMetric(float64(after.Hits-before.Hits)/float64(n), "hit-ratio")
	}
}

// BenchmarkActivityWrite is the common activity write: each call finds
// the throttle passed (the fixture's clock moves 61 s between calls) at an
// unchanged address. It reports the Redis CPU of the script
// (commandstats), without an idle timeout (the default: the deadline
// stays) and with one (the deadline, the index and the keys' expiry move).
func BenchmarkActivityWrite(b *testing.B) {
	for _, idle := range []time.Duration{0, time.Hour} {
		b.Run("idle="+idle.String(), func(b *testing.B) {
			// On the request path, one script a call: what a queued write
			// costs is BenchmarkTouchAll's.
			opts := []sessionkit.Option{sessionkit.WithActivityWriteDelay(0)}
			if idle > 0 {
				opts = append(opts, sessionkit.WithIdleTimeout(idle))
			}
			f := sessiontest.New(b, sessiontest.Options{Client: backends[0].Client}, opts...)
			tok := f.Login(b, uuid.New()).Token
			ctx := context.Background()
			touch := func() {
				f.Clock.Advance(61 * time.Second)
				res, err := f.M.Authenticate(ctx, tok, loginIP)
				if err != nil || !res.Written {
					b.Fatalf("Authenticate: written %v, %v", res.Written, err)
				}
			}
			touch() // the script is loaded
			cpu := redistest.ScriptMicros(b, backends[0].Client)
			b.ReportAllocs()
			for b.Loop() {
				touch()
			}
			b.ReportMetric((redistest.ScriptMicros(b, backends[0].Client)-cpu)/float64(b.N), "redis-cpu-µs/op")
		})
	}
}

// BenchmarkTouchAll is the queued activity writes as the Manager sends
// them (Store.TouchAll: one pipeline of activity scripts), in batches of
// 1, 12 (about what the default 5 ms gathers at 2,400 writes a second, the
// realistic mode's rate) and 100, each write due: Redis CPU per write, all
// of it (INFO cpu: the scripts and the system calls of the round trips),
// and the scripts' share (commandstats).
func BenchmarkTouchAll(b *testing.B) {
	for _, batch := range []int{1, 12, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := sessiontest.New(b, sessiontest.Options{Client: backends[0].Client})
			ids := make([]uuid.UUID, batch)
			for i := range ids {
				ids[i] = f.Login(b, uuid.New()).Session.ID
			}
			c := backends[0].Client.(*redis.Client)
			ctx := context.Background()
			cpu, err := redistest.ServerCPU(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			script := redistest.ScriptMicros(b, c)
			for b.Loop() {
				f.Clock.Advance(2 * time.Minute) // every write due
				for i, err := range f.Store.TouchAll(ctx, touchCall(f.M.Now()), ids) {
					if err != nil {
						b.Fatalf("session %d: %v", i, err)
					}
				}
			}
			after, err := redistest.ServerCPU(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			writes := float64(b.N * batch)
			b.ReportMetric((after-cpu)*1e6/writes, "redis-cpu-µs/write")
			b.ReportMetric((redistest.ScriptMicros(b, c)-script)/writes, "script-µs/write")
		})
	}
}

// BenchmarkCreateSession is a login with the default enricher (User-Agent
// parsing, no GeoIP): one Redis round trip plus enrichment. Users have a
// handful of sessions each, so some logins evict.
func BenchmarkCreateSession(b *testing.B) {
	m := benchManager(b, false).M
	users := make([]uuid.UUID, 1000)
	for i := range users {
		users[i] = uuid.New()
	}
	ctx := context.Background()
	var lat []time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := time.Now()
		if _, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: users[i%len(users)], IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		i++
	}
	reportPercentiles(b, lat, "µs", time.Microsecond, 50, 99)
}

// reportPercentiles reports the given percentiles of d in unit.
func reportPercentiles(b *testing.B, d []time.Duration, unit string, scale time.Duration, ps ...int) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	for _, p := range ps {
		b.ReportMetric(float64(percentile(d, p))/float64(scale), fmt.Sprintf("p%d-%s", p, unit))
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// BenchmarkListUserSessions lists a user's 20 active sessions.
func BenchmarkListUserSessions(b *testing.B) {
	f := benchManager(b, false, sessionkit.WithLimit(sessionkit.FixedLimit(20)))
	user := uuid.New()
	for range 20 {
		f.Login(b, user)
	}
	benchList(b, f.M, user)
}

func benchList(b *testing.B, m *sessionkit.Manager, user uuid.UUID) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		list, err := m.ListUserSessions(ctx, user, sessionkit.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != 20 {
			b.Fatalf("sessions listed: got %d, want 20", len(list))
		}
	}
}

// BenchmarkRevokeAll revokes a user's 20 sessions at once. Signing the
// sessions in, and deleting them afterwards, is not timed.
func BenchmarkRevokeAll(b *testing.B) {
	f := benchManager(b, false, sessionkit.WithLimit(sessionkit.FixedLimit(20)))
	benchRevokeAll(b, f.M, backends[0].Client, f.Prefix)
}

func benchRevokeAll(b *testing.B, m *sessionkit.Manager, c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	keys, err := rediskey.New(prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		user := uuid.New()
		loginMany(b, m, user, 20)
		b.StartTimer()
		res, err := m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: sessionkit.ReasonLogoutAll})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if res.Revoked != 20 {
			b.Fatalf("revoked: got %d, want 20", res.Revoked)
		}
		dropUser(b, c, keys, user)
		b.StartTimer()
	}
}

// dropUser deletes every key of user, so that a benchmark that signs users
// in and revokes them keeps the number of sessions in Redis where it was.
func dropUser(b *testing.B, c redis.UniversalClient, keys rediskey.Keys, user uuid.UUID) {
	u := keys.ForUser(user)
	if err := c.Del(context.Background(), u.Active, u.Index, u.Retained, u.All, u.Revoked, u.Owners, u.Events, u.Limit, u.Seen).Err(); err != nil {
		b.Fatal(err)
	}
}

// loginMany signs user in n times, concurrently.
func loginMany(tb testing.TB, m *sessionkit.Manager, user uuid.UUID, n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range n {
		wg.Go(func() {
			res, err := m.CreateSession(context.Background(), sessionkit.CreateSession{UserID: user, IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac})
			if err != nil {
				failed.Store(err)
				return
			}
			ids[i] = res.Session.ID
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// BenchmarkRevocationPropagation measures how long a revocation made on
// one instance is still accepted by a second one that had the session in
// its cache: from the start of RevokeSession on A to B's first refusal.
// Run it with -benchtime=1000x for the figure over 1,000 revocations.
func BenchmarkRevocationPropagation(b *testing.B) {
	prefix := redistest.Prefix(b)
	mk := func() *sessiontest.Fixture {
		return sessiontest.New(b, sessiontest.Options{
			Client: backends[0].Client, OwnClient: true, Prefix: prefix, RealTime: true,
			Cache: &store.CacheOptions{TTL: store.MaxCacheTTL},
		}, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
	}
	fa, fb := mk(), mk()
	a, bb := fa.M, fb.M
	user := uuid.New()
	ctx := context.Background()
	var fromStart, fromReturn []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		v := fa.Login(b, user)
		if _, err := bb.Authenticate(ctx, v.Token, loginIP); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := a.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
			b.Fatal(err)
		}
		returned := time.Now()
		for {
			_, err := bb.Authenticate(ctx, v.Token, loginIP)
			if errors.Is(err, sessionkit.ErrRevoked) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if time.Since(start) > 10*time.Second {
				b.Fatal("the second instance still accepts the session after 10s")
			}
			// Poll the way requests arrive: a goroutine that never blocks
			// would starve the network poller, and the measure with it.
			time.Sleep(20 * time.Microsecond)
		}
		end := time.Now()
		fromStart = append(fromStart, end.Sub(start))
		fromReturn = append(fromReturn, end.Sub(returned))
	}
	b.StopTimer()
	reportPercentiles(b, fromStart, "µs", time.Microsecond, 50, 99)
	slices.Sort(fromReturn)
	b.ReportMetric(float64(percentile(fromReturn, 50))/float64(time.Microsecond), "p50-after-return-µs")
	b.ReportMetric(float64(percentile(fromReturn, 99))/float64(time.Microsecond), "p99-after-return-µs")
}

// BenchmarkScale compares listing and revoking a 20-session user on a
// server holding about 1,000 sessions and on one holding about 1,000,000
// (10,000 users of 100 sessions), one call on each in turn, over five
// rounds, and measures Redis memory per session. An iteration is one call
// on each server. It needs SESSIONKIT_SCALE=1 and a fixed iteration
// count, as each revoke-all signs 20 sessions in first (not timed):
//
//	SESSIONKIT_SCALE=1 go test -run '^$' -bench Scale -benchtime=2000x ./store/
//
// Loading takes about two minutes on two cores. The figures are printed
// as "scale:" lines.
func BenchmarkScale(b *testing.B) {
	if os.Getenv("SESSIONKIT_SCALE") != "1" {
		b.Skip("set SESSIONKIT_SCALE=1 to load 1,000,000 sessions")
	}
	const prefix = "sk:"
	type deployment struct {
		c        *redis.Client
		m        *sessionkit.Manager
		target   uuid.UUID
		sessions int
		memory   int64 // used_memory growth while loading
	}
	setup := func(users int) *deployment {
		srv, err := redistest.StartServer(redistest.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.Stop() })
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, PoolSize: 64})
		b.Cleanup(func() { c.Close() })
		m := sessiontest.New(b, sessiontest.Options{Client: c, Prefix: prefix, RealTime: true},
			sessionkit.WithLimit(sessionkit.FixedLimit(100))).M
		d := &deployment{c: c, m: m, target: uuid.New()}
		before := usedMemory(b, c)
		start := time.Now()
		loginMany(b, m, d.target, 20)
		load(b, m, users, 100)
		d.sessions = 20 + users*100
		d.memory = usedMemory(b, c) - before
		fmt.Printf("scale: loaded %d sessions in %v\n", d.sessions, time.Since(start).Round(time.Second))
		return d
	}
	small, large := setup(10), setup(10_000)

	ctx := context.Background()
	keys, err := rediskey.New(prefix)
	if err != nil {
		b.Fatal(err)
	}
	// Each op times one call on a deployment; what it needs first (the
	// revoke-all's 20 sign-ins) and after is not timed.
	ops := []struct {
		name string
		once func(b *testing.B, d *deployment) time.Duration
	}{
		{"ListUserSessions", func(b *testing.B, d *deployment) time.Duration {
			start := time.Now()
			list, err := d.m.ListUserSessions(ctx, d.target, sessionkit.ListOptions{})
			spent := time.Since(start)
			if err != nil || len(list) != 20 {
				b.Fatalf("list: got %d sessions, %v; want 20", len(list), err)
			}
			return spent
		}},
		{"RevokeAllUserSessions", func(b *testing.B, d *deployment) time.Duration {
			user := uuid.New()
			loginMany(b, d.m, user, 20)
			start := time.Now()
			res, err := d.m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: sessionkit.ReasonLogoutAll})
			spent := time.Since(start)
			if err != nil || res.Revoked != 20 {
				b.Fatalf("revoke-all: revoked %d, %v; want 20", res.Revoked, err)
			}
			dropUser(b, d.c, keys, user)
			return spent
		}},
	}
	// Each round times every op call by call on both deployments in turn,
	// each call's pair in the other order from the last, so that neither
	// deployment is always the one that runs first, and a busy moment of
	// the machine falls on both alike. Round 0 is a warm-up, not recorded:
	// it follows a million logins, while the large server is still settling
	// (rehashing its keyspace, allocator).
	const rounds = 5
	deps := [2]*deployment{small, large}
	ratios := map[string][]float64{}
	// Redis's own CPU per list, on each deployment: listing sends nothing
	// untimed, so it is all the list's (revoking signs sessions in first).
	var listCPU, listCmd [2][]float64
	for round := range rounds + 1 {
		for _, op := range ops {
			name := fmt.Sprintf("sessions=%d-vs-%d/%s", large.sessions, small.sessions, op.name)
			if round == 0 {
				name = "warmup/" + name
			}
			var spent [2]time.Duration
			var cpu, cmd [2]float64
			b.Run(name, func(b *testing.B) {
				// the last, longest run wins
				spent = [2]time.Duration{}
				var before, beforeCmd [2]float64
				for i, d := range deps {
					before[i], beforeCmd[i] = serverCPU(b, d.c), hgetallMicros(b, d.c)
				}
				for n := range b.N {
					first := n % 2
					for _, i := range []int{first, 1 - first} {
						spent[i] += op.once(b, deps[i])
					}
				}
				for i, d := range deps {
					cpu[i] = (serverCPU(b, d.c) - before[i]) / float64(b.N) * 1e6
					cmd[i] = (hgetallMicros(b, d.c) - beforeCmd[i]) / float64(b.N)
				}
				b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "ns-small/op")
				b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "ns-large/op")
				b.ReportMetric(float64(spent[1])/float64(spent[0]), "ratio")
			})
			if round == 0 || spent[0] == 0 {
				continue
			}
			ratios[op.name] = append(ratios[op.name], float64(spent[1])/float64(spent[0]))
			if op.name == "ListUserSessions" {
				for i := range deps {
					listCPU[i] = append(listCPU[i], cpu[i])
					listCmd[i] = append(listCmd[i], cmd[i])
				}
			}
		}
	}
	for _, op := range ops {
		r := ratios[op.name]
		slices.Sort(r)
		if len(r) > 0 {
			fmt.Printf("scale: %s at %d vs %d sessions: cost ratio median %.3f over %d rounds (min %.3f, max %.3f; target < 1.2)\n",
				op.name, large.sessions, small.sessions, r[len(r)/2], len(r), r[0], r[len(r)-1])
		}
	}
	for _, m := range []struct {
		what string
		v    *[2][]float64
	}{{"Redis CPU per ListUserSessions, all of it (INFO cpu)", &listCPU}, {"its HGETALL's own time (INFO commandstats)", &listCmd}} {
		at1k, at1m := m.v[0], m.v[1]
		slices.Sort(at1k)
		slices.Sort(at1m)
		if n := len(at1k); n > 0 {
			fmt.Printf("scale: %s: median %.1f µs at %d sessions (%.1f–%.1f), %.1f µs at %d (%.1f–%.1f)\n",
				m.what, at1m[n/2], large.sessions, at1m[0], at1m[n-1], at1k[n/2], small.sessions, at1k[0], at1k[n-1])
		}
	}
	fmt.Printf("scale: used_memory grew by %d bytes while loading %d sessions: %.0f bytes per session, per-user keys and audit trail included (target < 1024)\n",
		large.memory, large.sessions, float64(large.memory)/float64(large.sessions))
	sessionBytes, userBytes := memoryOfUser(b, large.c, prefix, large.target)
	fmt.Printf("scale: MEMORY USAGE of the 20-session user's session keys (act, idx with the recent sign-ins, ret, all, rev, own): %d bytes, %d per session; audit trail: %d bytes\n",
		sessionBytes, sessionBytes/20, userBytes)
}

// hgetallMicros is the time Redis has spent serving HGETALL, in µs.
func hgetallMicros(b *testing.B, c *redis.Client) float64 {
	b.Helper()
	st, err := redistest.CommandStats(context.Background(), c)
	if err != nil {
		b.Fatal(err)
	}
	return st["hgetall"].Usec
}

// serverCPU is the CPU time redis-server has used, in seconds.
func serverCPU(b *testing.B, c *redis.Client) float64 {
	b.Helper()
	cpu, err := redistest.ServerCPU(context.Background(), c)
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}

// load signs in users new users with perUser sessions each, from many goroutines.
func load(b *testing.B, m *sessionkit.Manager, users, perUser int) {
	if users <= 0 {
		return
	}
	work := make(chan uuid.UUID)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Go(func() {
			for user := range work {
				for range perUser {
					if _, err := m.CreateSession(context.Background(), sessionkit.CreateSession{
						UserID: user, IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac}); err != nil {
						failed.Store(err)
						return
					}
				}
			}
		})
	}
	for range users {
		work <- uuid.New()
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func usedMemory(b *testing.B, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// memoryOfUser returns MEMORY USAGE of the user's session-holding keys
// (active and retained sessions, index, retained set, revocation and owner
// hashes; the index also holds the recent sign-ins), and of the audit
// trail (with the device history of earlier releases, if any is left).
func memoryOfUser(b *testing.B, c *redis.Client, prefix string, user uuid.UUID) (sessions, rest int64) {
	ctx := context.Background()
	keys, err := rediskey.New(prefix)
	if err != nil {
		b.Fatal(err)
	}
	u := keys.ForUser(user)
	count := func(ks []string) (n int64) {
		for _, k := range ks {
			m, err := c.MemoryUsage(ctx, k, 0).Result() // 0: every field, not a sample
			if err != nil && !errors.Is(err, redis.Nil) {
				b.Fatal(err)
			}
			n += m
		}
		return n
	}
	return count([]string{u.Active, u.Index, u.Retained, u.All, u.Revoked, u.Owners}), count([]string{u.Events, u.Seen})
}
