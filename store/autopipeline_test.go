package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// readModes are the two ways the store sends its hot-path read.
var readModes = []struct {
	name string
	opts store.Options
}{
	{"autopipeline", store.Options{}},
	{"direct", store.Options{NoAutoPipeline: true}},
}

// managerWith returns a Manager on the real time, with the options mopts,
// over a store on c with opts, on a prefix of the caller's own.
func managerWith(tb testing.TB, c redis.UniversalClient, opts store.Options, mopts ...sessionkit.Option) *sessiontest.Fixture {
	tb.Helper()
	return sessiontest.New(tb, sessiontest.Options{Client: c, Store: opts, RealTime: true}, mopts...)
}

// readCounter is a go-redis hook counting the hot-path reads (HGETs of a
// user's active sessions) a client sent alone and inside pipelines (the
// autopipeliner sends its batches as pipelines).
type readCounter struct{ direct, batched atomic.Int64 }

func (c *readCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *readCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if hotRead(cmd) {
			c.direct.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *readCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if hotRead(cmd) {
				c.batched.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

func hotRead(cmd redis.Cmder) bool {
	args := cmd.Args()
	if cmd.Name() != "hget" || len(args) < 2 {
		return false
	}
	key, _ := args[1].(string)
	return strings.HasSuffix(key, ":act")
}

// issued is a session a test signed in, and what authenticating it must give.
type issued struct {
	token   string
	id      uuid.UUID
	user    uuid.UUID
	revoked bool
}

// signInMany signs in users × perUser sessions through m and revokes every
// third one.
func signInMany(t *testing.T, m *sessionkit.Manager, users, perUser int) []issued {
	t.Helper()
	ctx := context.Background()
	var out []issued
	for range users {
		user := uuid.New()
		for range perUser {
			res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, issued{token: res.Token, id: res.Session.ID, user: user})
		}
	}
	for i := range out {
		if i%3 != 0 {
			continue
		}
		if _, err := m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: out[i].id, UserID: out[i].user, Reason: sessionkit.ReasonLogout}); err != nil {
			t.Fatal(err)
		}
		out[i].revoked = true
	}
	return out
}

// checkAuth authenticates s and reports any answer other than its own.
func checkAuth(ctx context.Context, m *sessionkit.Manager, s issued) error {
	got, err := m.Authenticate(ctx, s.token, loginIP)
	switch {
	case s.revoked && !errors.Is(err, sessionkit.ErrRevoked):
		return fmt.Errorf("revoked session %s: got %v, want ErrRevoked", s.id, err)
	case s.revoked:
		return nil
	case err != nil:
		return fmt.Errorf("session %s: %v", s.id, err)
	case got.Session.ID != s.id || got.Session.UserID != s.user:
		return fmt.Errorf("session %s of %s: got session %s of %s", s.id, s.user, got.Session.ID, got.Session.UserID)
	}
	return nil
}

// TestConcurrentReadsGetTheirOwnSession authenticates many sessions of many
// users from 64 goroutines at once, in both read modes, on one node and on
// a Cluster: each call must get its own session (or its own revocation),
// whatever other reads its own was written to Redis with.
func TestConcurrentReadsGetTheirOwnSession(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		for _, mode := range readModes {
			t.Run(mode.name, func(t *testing.T) {
				c := b.NewClient(t)
				reads := &readCounter{}
				c.AddHook(reads)
				m := managerWith(t, c, mode.opts).M
				sessions := signInMany(t, m, 40, 3)

				ctx := context.Background()
				errs := make(chan error, 64)
				var wg sync.WaitGroup
				for g := range 64 {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(g), 7))
						for range 150 {
							if err := checkAuth(ctx, m, sessions[rng.IntN(len(sessions))]); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
				direct, batched := reads.direct.Load(), reads.batched.Load()
				t.Logf("%d reads sent alone, %d in batches", direct, batched)
				if mode.opts.NoAutoPipeline && batched > 0 {
					t.Errorf("%d reads were batched with NoAutoPipeline", batched)
				}
				if !mode.opts.NoAutoPipeline && batched == 0 {
					t.Error("no read rode the autopipeliner with 64 concurrent callers")
				}
			})
		}
	})
}

// TestReadWaitIsBoundedByContext makes Redis answer later than the
// caller's deadline: in both read modes Authenticate returns ErrUnavailable
// near the deadline, not when Redis answers. Once Redis is fast again, the
// late replies to the abandoned reads must not be handed to anyone: every
// session authenticates as itself.
func TestReadWaitIsBoundedByContext(t *testing.T) {
	const (
		deadline = 300 * time.Millisecond
		delay    = 2 * time.Second
		margin   = time.Second // a shared, noisy machine
	)
	srv := redistest.Start(t, redistest.Options{})
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			proxy := redistest.NewProxy(t, srv.Addr())
			c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			m := managerWith(t, c, mode.opts).M
			sessions := signInMany(t, m, 8, 2)

			proxy.SetDelay(delay)
			var wg sync.WaitGroup
			for _, s := range sessions {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					defer cancel()
					start := time.Now()
					_, err := m.Authenticate(ctx, s.token, loginIP)
					elapsed := time.Since(start)
					if !errors.Is(err, sessionkit.ErrUnavailable) {
						t.Errorf("session %s with Redis slower than the deadline: got %v, want ErrUnavailable", s.id, err)
					}
					if elapsed > deadline+margin {
						t.Errorf("answered after %v, want within %v of the %v deadline", elapsed, margin, deadline)
					}
				})
			}
			wg.Wait()

			proxy.SetDelay(0)
			err := redistest.WaitFor(15*time.Second, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				return checkAuth(ctx, m, sessions[1])
			})
			if err != nil {
				t.Fatalf("after Redis is fast again: %v", err)
			}
			ctx := context.Background()
			for round := range 3 {
				for _, s := range sessions {
					if err := checkAuth(ctx, m, s); err != nil {
						t.Errorf("round %d: %v", round, err)
					}
				}
			}
		})
	}
}

// TestClientWithoutAutoPipeline: a client that cannot autopipeline (a
// Ring) is accepted, and the store reads through it directly.
func TestClientWithoutAutoPipeline(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": srv.Addr()}})
	t.Cleanup(func() { ring.Close() })
	if _, err := ring.AsyncAutoPipeline(); err == nil {
		t.Fatal("a Ring autopipelines: this test needs a client that cannot")
	}
	m := managerWith(t, ring, store.Options{}).M
	ctx := context.Background()
	for _, s := range signInMany(t, m, 2, 3) {
		if err := checkAuth(ctx, m, s); err != nil {
			t.Error(err)
		}
	}
}

// TestAnotherSessionsReplyIsRefused stands for a reply handed to the wrong
// request: session A's field holds session B's value. Authenticating A's
// token must be refused (its hash is not B's), and B is still served: a
// misrouted read can refuse a request but never serve another session.
func TestAnotherSessionsReplyIsRefused(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		f := managerWith(t, b.Client, store.Options{})
		m := f.M
		keys := f.KeyNames(t)
		ctx := context.Background()
		user := uuid.New()
		var two [2]sessionkit.CreateSessionResult
		for i := range two {
			var err error
			if two[i], err = m.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac}); err != nil {
				t.Fatal(err)
			}
		}
		storeRecordOf(t, b.Client, keys, two[0].Session.ID, two[1].Session.ID)
		if got, err := m.Authenticate(ctx, two[0].Token, loginIP); err == nil {
			t.Fatalf("A's token with B's record: served session %s, want a refusal", got.Session.ID)
		} else if errors.Is(err, sessionkit.ErrUnavailable) || errors.Is(err, sessionkit.ErrInvalid) {
			t.Fatalf("A's token with B's record: got %v, want a refusal of the session", err)
		}
		if err := checkAuth(ctx, m, issued{token: two[1].Token, id: two[1].Session.ID, user: user}); err != nil {
			t.Fatal(err)
		}
	})
}

// storeRecordOf makes session a's stored record session b's, as a reply
// delivered to the wrong caller would.
func storeRecordOf(t *testing.T, c redis.UniversalClient, keys rediskey.Keys, a, b uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	keyA, memberA := keys.Active(a)
	keyB, memberB := keys.Active(b)
	valueB, err := c.HGet(ctx, keyB, memberB).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, keyA, memberA, valueB).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestAnotherBearerSessionsReplyIsRefused is TestAnotherSessionsReplyIsRefused
// for bearer sessions, whose access token carries no secret that the
// record holds the hash of: session A's field holds session B's value.
// A's access token must be refused, never served with B's record, and B is
// still served. Between two sessions of one user only the refresh family
// the token was minted under (its sk_fam claim) tells the records apart;
// between two users' sessions the user check does too.
func TestAnotherBearerSessionsReplyIsRefused(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		cases := []struct {
			name     string
			sameUser bool
		}{
			{"one user", true},
			{"two users", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := managerWith(t, b.Client, store.Options{}, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}))
				m := f.M
				keys := f.KeyNames(t)
				ctx := context.Background()
				users := [2]uuid.UUID{uuid.New(), uuid.New()}
				if tc.sameUser {
					users[1] = users[0]
				}
				var two [2]sessionkit.CreateSessionResult
				for i := range two {
					var err error
					two[i], err = m.CreateSession(ctx, sessionkit.CreateSession{UserID: users[i], IPAddress: loginIP.String(), UserAgent: sessiontest.ChromeMac, Bearer: true})
					if err != nil {
						t.Fatal(err)
					}
					// Each token is good before the swap: a refusal below is the swap's.
					if err := checkAuth(ctx, m, issued{token: two[i].Tokens.AccessToken, id: two[i].Session.ID, user: users[i]}); err != nil {
						t.Fatal(err)
					}
				}
				storeRecordOf(t, b.Client, keys, two[0].Session.ID, two[1].Session.ID)
				if got, err := m.Authenticate(ctx, two[0].Tokens.AccessToken, loginIP); err == nil {
					t.Fatalf("A's access token with B's record: served session %s of %s, want a refusal", got.Session.ID, got.Session.UserID)
				} else if errors.Is(err, sessionkit.ErrUnavailable) || errors.Is(err, sessionkit.ErrInvalid) {
					t.Fatalf("A's access token with B's record: got %v, want a refusal of the session", err)
				}
				if err := checkAuth(ctx, m, issued{token: two[1].Tokens.AccessToken, id: two[1].Session.ID, user: users[1]}); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// TestLoneCallerReadsDirectly checks that a lone caller on a fresh store
// reads without the autopipeliner (see also TestDirectReadsNeedQuiet),
// and that a burst of concurrent reads rides it.
func TestLoneCallerReadsDirectly(t *testing.T) {
	c := backends[0].NewClient(t)
	reads := &readCounter{}
	c.AddHook(reads)
	m := managerWith(t, c, store.Options{}).M
	sessions := signInMany(t, m, 8, 1)
	ctx := context.Background()
	for i := range 20 {
		if err := checkAuth(ctx, m, sessions[i%len(sessions)]); err != nil {
			t.Fatal(err)
		}
	}
	if d, b := reads.direct.Load(), reads.batched.Load(); d != 20 || b != 0 {
		t.Fatalf("a lone caller on a fresh store: %d reads direct, %d batched; want all 20 direct", d, b)
	}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				if err := checkAuth(ctx, m, sessions[(g+i)%len(sessions)]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d, b := reads.direct.Load()-20, reads.batched.Load()
	t.Logf("64 concurrent callers: %d reads direct, %d batched", d, b)
	if b == 0 {
		t.Error("no read rode the autopipeliner with 64 concurrent callers")
	}
}
