package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// touchPolicy is what the tests' own TouchAll calls carry, as a Manager
// with the default throttle of a minute would.
var touchPolicy = backend.Policy{Throttle: time.Minute, Retention: time.Hour, SeenWindow: time.Hour, LimitTTL: time.Hour, StreamMax: 10, MaxProviders: 4}

// touchCall is a TouchAll call at now under touchPolicy.
func touchCall(now time.Time) backend.Call { return backend.Call{Now: now, Policy: &touchPolicy} }

// TestTouchAll: the queued activity writes, sent together. Each session
// gets its own answer, in order: written when the throttle has passed,
// left alone while it holds, refused when revoked or unknown. A flushed
// script cache is loaded again. Over the cache, each written session's
// entry is replaced.
func TestTouchAll(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		for _, cached := range []bool{false, true} {
			name := "redis"
			o := sessiontest.Options{Client: b.Client}
			if cached {
				name = "cache"
				o.Cache = &store.CacheOptions{TTL: store.MaxCacheTTL}
			}
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				f := sessiontest.New(t, o)
				var st sessionkit.Store = f.Store
				if cached {
					st = f.Cache
				}
				// Each read once while new (no write due), so that the cache holds it.
				read := func(v sessionkit.CreateSessionResult) {
					if _, err := f.M.Authenticate(ctx, v.Token, loginIP); err != nil {
						t.Fatal(err)
					}
				}
				user := uuid.New()
				due, revoked := f.Login(t, user), f.Login(t, user)
				read(due)
				read(revoked)
				f.Clock.Advance(2 * time.Minute)
				recent := f.Login(t, uuid.New())
				read(recent)
				// Revoked by another instance, and announced before the writes
				// are sent: an announcement arriving while they are in flight
				// would keep entries of its shard from being replaced (they
				// are dropped then; TestWriteReplacesOrDropsTheEntry).
				var invalidations uint64
				if cached {
					invalidations = f.Cache.Stats().Invalidations
				}
				other := sessiontest.New(t, sessiontest.Options{Client: b.Client, Prefix: f.Prefix, Clock: f.Clock})
				if _, err := other.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: revoked.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
					t.Fatal(err)
				}
				if cached {
					if err := redistest.WaitFor(5*time.Second, func() error {
						if f.Cache.Stats().Invalidations == invalidations {
							return errors.New("the revocation's announcement has not reached the cache")
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				}
				f.Clock.Advance(time.Second)
				call := touchCall(f.M.Now())
				unknown := uuid.New()
				errs := st.TouchAll(ctx, call, []uuid.UUID{due.Session.ID, recent.Session.ID, revoked.Session.ID, unknown})
				if len(errs) != 4 {
					t.Fatalf("got %d errors, want 4", len(errs))
				}
				if errs[0] != nil || errs[1] != nil {
					t.Errorf("due, recent: %v, %v; want nil, nil", errs[0], errs[1])
				}
				if !errors.As(errs[2], new(*sessionkit.RevokedError)) {
					t.Errorf("revoked: got %v, want a *RevokedError", errs[2])
				}
				if !errors.Is(errs[3], sessionkit.ErrNotFound) {
					t.Errorf("unknown: got %v, want ErrNotFound", errs[3])
				}
				if got := f.Session(t, due.Session.ID).LastActivityAt; !got.Equal(call.Now) {
					t.Errorf("due: last activity %v, want %v", got, call.Now)
				}
				if got := f.Session(t, recent.Session.ID).LastActivityAt; !got.Equal(recent.Session.LastActivityAt) {
					t.Errorf("recent: last activity %v, want %v (the throttle holds)", got, recent.Session.LastActivityAt)
				}
				if cached {
					s, _, err := f.Cache.Peek(ctx, due.Session.ID)
					hits := f.Cache.Stats().Hits
					if _, _, err := f.Cache.Peek(ctx, due.Session.ID); err != nil || f.Cache.Stats().Hits != hits+1 {
						t.Errorf("due: the entry was dropped, not replaced (%v)", err)
					}
					if err != nil || !s.LastActivityAt.Equal(call.Now) {
						t.Errorf("due, cached: last activity %v, %v; want %v", s.LastActivityAt, err, call.Now)
					}
				}

				if err := sessiontest.ForEachMaster(ctx, b.Client, func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }); err != nil {
					t.Fatal(err)
				}
				f.Clock.Advance(2 * time.Minute)
				call.Now = f.M.Now()
				errs = st.TouchAll(ctx, call, []uuid.UUID{due.Session.ID, recent.Session.ID})
				if errs[0] != nil || errs[1] != nil {
					t.Errorf("after SCRIPT FLUSH: %v", errs)
				}
				for _, id := range []uuid.UUID{due.Session.ID, recent.Session.ID} {
					if got := f.Session(t, id).LastActivityAt; !got.Equal(call.Now) {
						t.Errorf("after SCRIPT FLUSH: last activity %v, want %v", got, call.Now)
					}
				}
				f.CheckTTLs(t)
			})
		}
	})
}

// TestTouchAllUnavailable: a store that cannot be reached answers every
// session with an error wrapping ErrUnavailable.
func TestTouchAllUnavailable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	st, err := store.NewRedis(c, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := st.TouchAll(context.Background(), touchCall(time.Now()), []uuid.UUID{uuid.New(), uuid.New()})
	if len(errs) != 2 || !errors.Is(errs[0], sessionkit.ErrUnavailable) || !errors.Is(errs[1], sessionkit.ErrUnavailable) {
		t.Errorf("got %v, want two errors wrapping ErrUnavailable", errs)
	}
}

// TestTouchAllReadsBeforeWriting: a cache whose entry is older than another
// instance's write of the session finds the throttle passed where Redis's
// copy does not. It reads the session first and sends no script for it,
// only for the sessions still due, and the stale entry is replaced with
// what Redis holds.
func TestTouchAllReadsBeforeWriting(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		clock := redistest.NewClock()
		prefix := redistest.Prefix(t)
		a := sessiontest.New(t, sessiontest.Options{Client: b.Client, OwnClient: true, Prefix: prefix, Clock: clock,
			Cache: &store.CacheOptions{TTL: store.MaxCacheTTL}})
		other := sessiontest.New(t, sessiontest.Options{Client: b.Client, Prefix: prefix, Clock: clock})
		written, due := a.Login(t, uuid.New()), a.Login(t, uuid.New())
		for _, v := range []sessionkit.CreateSessionResult{written, due} {
			if _, err := a.M.Authenticate(ctx, v.Token, loginIP); err != nil { // cached, nothing due
				t.Fatal(err)
			}
		}
		clock.Advance(2 * time.Minute)
		// Another instance records written's activity; a's entry is now stale.
		if _, err := other.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: written.Session.ID}); err != nil {
			t.Fatal(err)
		}
		at := clock.Now().Truncate(time.Millisecond)
		clock.Advance(time.Second)
		call := touchCall(a.M.Now())
		var ran scriptsRun
		a.Client.AddHook(&ran)
		errs := a.Cache.TouchAll(ctx, call, []uuid.UUID{written.Session.ID, due.Session.ID})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("TouchAll: %v", errs)
		}
		if n := ran.n.Load(); n != 1 {
			t.Errorf("scripts run: %d, want 1 (for the session still due only)", n)
		}
		for _, c := range []struct {
			id   uuid.UUID
			want time.Time
		}{{written.Session.ID, at}, {due.Session.ID, call.Now}} {
			hits := a.Cache.Stats().Hits
			s, _, err := a.Cache.Peek(ctx, c.id)
			if err != nil || !s.LastActivityAt.Equal(c.want) || a.Cache.Stats().Hits != hits+1 {
				t.Errorf("entry of %s: last activity %v, %v, hit %v; want %v from a hit", c.id, s.LastActivityAt, err, a.Cache.Stats().Hits == hits+1, c.want)
			}
		}
	})
}

// scriptsRun counts the scripts Redis ran for a client: a NOSCRIPT answer
// (the script then loaded and sent again) is not one.
type scriptsRun struct{ n atomic.Int64 }

func (h *scriptsRun) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptsRun) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(cmd)
		return err
	}
}

func (h *scriptsRun) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return err
	}
}

func (h *scriptsRun) count(cmd redis.Cmder) {
	if name := cmd.Name(); (name == "evalsha" || name == "eval") && !redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		h.n.Add(1)
	}
}
