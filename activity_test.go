package sessionkit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// The activity writer (WithActivityWriteDelay): Authenticate queues the
// common activity write and answers at once; the writes go to Redis
// together.

var loginAddr = netip.MustParseAddr(sessiontest.LoginIP)

// landed waits until the stored last activity of id is want and the
// writer's round is over. Redis holds the write before the round ends (a
// cache replaces its entry once the script has answered), so the stored
// activity alone does not tell that the entry is replaced.
func landed(t *testing.T, f *sessiontest.Fixture, id uuid.UUID, want time.Time) {
	t.Helper()
	err := redistest.WaitFor(5*time.Second, func() error {
		if got := f.Session(t, id).LastActivityAt; !got.Equal(want) {
			return fmt.Errorf("stored last activity %v, want %v", got, want)
		}
		if n := sessionkit.ActivityQueued(f.M); n != 0 {
			return fmt.Errorf("the write landed; %d sessions still in the writer's round", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQueuedActivityWrite: past the throttle, Authenticate answers with the
// session as read and Written false, and the write lands after it: the
// last activity, and with an idle timeout the deadline and the keys'
// expiry; over the cache, the entry is replaced, so the next request is a
// hit that finds the throttle holding.
func TestQueuedActivityWrite(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		for _, cached := range []bool{false, true} {
			for _, idle := range []time.Duration{0, time.Hour} {
				t.Run(fmt.Sprintf("cache=%v/idle=%v", cached, idle), func(t *testing.T) {
					ctx := t.Context()
					o := sessiontest.Options{Client: b.Client, OwnClient: true}
					if cached {
						o.Clock = redistest.NewClock()
						o.Cache = &store.CacheOptions{Clock: o.Clock.Now}
					}
					var opts []sessionkit.Option
					if idle > 0 {
						opts = append(opts, sessionkit.WithIdleTimeout(idle))
					}
					f := sessiontest.New(t, o, opts...)
					v := f.Login(t, uuid.New())
					f.Clock.Advance(2 * time.Minute)
					res, err := f.M.Authenticate(ctx, v.Token, loginAddr)
					if err != nil {
						t.Fatal(err)
					}
					if res.Written || !res.Session.LastActivityAt.Equal(v.Session.LastActivityAt) {
						t.Errorf("the request's result: written %v, last activity %v; want false and the session as read (%v)",
							res.Written, res.Session.LastActivityAt, v.Session.LastActivityAt)
					}
					now := f.M.Now()
					landed(t, f, v.Session.ID, now)
					act := f.KeyNames(t).ForSession(v.Session.ID).Active
					expiry := time.UnixMilli(b.Client.PExpireTime(ctx, act).Val().Milliseconds())
					if idle > 0 && expiry.Before(now.Add(idle)) {
						t.Errorf("the keys expire at %v, before the new idle deadline %v", expiry, now.Add(idle))
					}
					if idle == 0 && !expiry.Equal(v.Session.ExpiresAt) {
						t.Errorf("without an idle timeout the keys expire at %v, want the session's expiry %v", expiry, v.Session.ExpiresAt)
					}
					f.CheckTTLs(t)
					if cached {
						before := f.Calls.RoundTrips()
						res, err := f.M.Authenticate(ctx, v.Token, loginAddr)
						if err != nil || !res.Session.LastActivityAt.Equal(now) {
							t.Errorf("next request: last activity %v, %v; want %v from the replaced entry", res.Session.LastActivityAt, err, now)
						}
						if n := f.Calls.RoundTrips() - before; n != 0 {
							t.Errorf("next request: %d round trips, want 0 (a hit, throttled)", n)
						}
					}
				})
			}
		}
	})
}

// TestQueuedWritesGoTogether: the writes that fall due within the delay
// reach Redis in one pipeline (one round trip per node), each session's
// once however many of its requests found it due.
func TestQueuedWritesGoTogether(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		var mu sync.Mutex
		var sent [][]uuid.UUID
		wrap := func(st sessionkit.Store) sessionkit.Store {
			return &touchAllSpy{Store: st, sent: func(ids []uuid.UUID) { mu.Lock(); sent = append(sent, ids); mu.Unlock() }}
		}
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client, OwnClient: true, Wrap: wrap}, sessionkit.WithActivityWriteDelay(time.Second))
		// The writes are held until Close: with a delay of a second, a
		// loaded machine's requests below can outlast it, and the round
		// sent among them splits the batch.
		sessionkit.SetActivityWriteDelay(f.M, time.Hour)
		const n = 40
		tokens := make([]string, n)
		ids := make([]uuid.UUID, n)
		for i := range tokens {
			v := f.Login(t, uuid.New())
			tokens[i], ids[i] = v.Token, v.Session.ID
		}
		f.Clock.Advance(2 * time.Minute)
		// A first write (through the store, as the writer sends it) loads
		// the script on every node, which would cost the measured writes
		// round trips of their own otherwise.
		warm := f.Login(t, uuid.New())
		f.Clock.Advance(2 * time.Minute)
		for _, err := range f.Store.TouchAll(ctx, sessionkit.ActivityCall(f.M), []uuid.UUID{warm.Session.ID}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		before := f.Calls.RoundTrips()
		for range 3 {
			for _, tok := range tokens {
				if _, err := f.M.Authenticate(ctx, tok, loginAddr); err != nil {
					t.Fatal(err)
				}
			}
		}
		reads := f.Calls.RoundTrips() - before
		if err := f.M.Close(ctx); err != nil { // sends what is queued at once
			t.Fatal(err)
		}
		if trips := f.Calls.RoundTrips() - before - reads; trips < 1 || trips > int64(len(b.Addrs)) {
			t.Errorf("round trips of the writes: %d, want 1 per node at most (%d nodes)", trips, len(b.Addrs))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(sent) != 1 || !slices.Equal(sent[0], ids) {
			t.Errorf("sent %v, want every session once, in one batch: %v", sent, ids)
		}
		for _, id := range ids {
			if got := f.Session(t, id).LastActivityAt; !got.Equal(f.M.Now()) {
				t.Fatalf("session %s: last activity %v, want %v", id, got, f.M.Now())
			}
		}
	})
}

// touchAllSpy tells sent the sessions of each TouchAll it passes on.
type touchAllSpy struct {
	sessionkit.Store
	sent func([]uuid.UUID)
}

func (s *touchAllSpy) TouchAll(ctx context.Context, c backend.Call, ids []uuid.UUID) []error {
	s.sent(slices.Clone(ids))
	return s.Store.TouchAll(ctx, c, ids)
}

// TestQueuedWriteRevivesNothing: a session revoked, or signed out, between
// its request and the write stays as it was left.
func TestQueuedWriteRevivesNothing(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithActivityWriteDelay(time.Second))
		// Held until Close: on a loaded machine the second's delay could
		// end before the dump below, which would then hold the write.
		sessionkit.SetActivityWriteDelay(f.M, time.Hour)
		user := uuid.New()
		revoked, other := f.Login(t, user), f.Login(t, user)
		f.Clock.Advance(2 * time.Minute)
		for _, v := range []sessionkit.CreateSessionResult{revoked, other} {
			if _, err := f.M.Authenticate(ctx, v.Token, loginAddr); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: revoked.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
			t.Fatal(err)
		}
		before := f.Dump(t)
		if err := f.M.Close(ctx); err != nil {
			t.Fatal(err)
		}
		after := f.Dump(t)
		// Only the other session's record (in the user's hash of active
		// sessions) changed: its last activity.
		diff := sessiontest.Diff(before, after)
		if len(diff) != 1 {
			t.Errorf("the writes changed %v, want only the active hash", diff)
		}
		if s := f.Session(t, revoked.Session.ID); s.RevokedAt.IsZero() || s.LastActivityAt.Equal(f.M.Now()) {
			t.Errorf("revoked session after the write: revoked at %v, last activity %v", s.RevokedAt, s.LastActivityAt)
		}
		if _, err := f.M.Authenticate(ctx, revoked.Token, loginAddr); !errors.As(err, new(*sessionkit.RevokedError)) {
			t.Errorf("the revoked session authenticates: %v", err)
		}
		f.CheckTTLs(t)
	})
}

// TestActivityWrittenOnTheRequestPath: what is not queued. An address
// change, a session near its idle deadline, activity events, a closed
// Manager, and a delay of zero write before Authenticate returns.
func TestActivityWrittenOnTheRequestPath(t *testing.T) {
	ctx := t.Context()
	b := backends[0]
	due := func(t *testing.T, f *sessiontest.Fixture, tok string, ip netip.Addr) {
		t.Helper()
		res, err := f.M.Authenticate(ctx, tok, ip)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Written || !res.Session.LastActivityAt.Equal(f.M.Now()) {
			t.Errorf("written %v, last activity %v; want true, %v", res.Written, res.Session.LastActivityAt, f.M.Now())
		}
		if got := f.Session(t, res.Session.ID).LastActivityAt; !got.Equal(f.M.Now()) {
			t.Errorf("stored last activity %v, want %v", got, f.M.Now())
		}
	}
	t.Run("address change", func(t *testing.T) {
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		v := f.Login(t, uuid.New())
		f.Clock.Advance(2 * time.Minute)
		due(t, f, v.Token, netip.MustParseAddr("198.51.100.23"))
	})
	t.Run("near the idle deadline", func(t *testing.T) {
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithIdleTimeout(time.Minute), sessionkit.WithActivityThrottle(10*time.Second))
		v := f.Login(t, uuid.New())
		f.Clock.Advance(30 * time.Second)
		if res, err := f.M.Authenticate(ctx, v.Token, loginAddr); err != nil || res.Written {
			t.Fatalf("30 s before the idle deadline: written %v, %v; want a queued write", res.Written, err)
		}
		landed(t, f, v.Session.ID, f.M.Now())
		f.Clock.Advance(51 * time.Second) // 9 s left
		due(t, f, v.Token, loginAddr)
	})
	t.Run("activity events", func(t *testing.T) {
		var mu sync.Mutex
		var types []sessionkit.EventType
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithActivityEvents(true),
			sessionkit.WithHook(func(_ context.Context, e sessionkit.Event) { mu.Lock(); types = append(types, e.Type); mu.Unlock() }))
		v := f.Login(t, uuid.New())
		f.Clock.Advance(2 * time.Minute)
		due(t, f, v.Token, loginAddr)
		if err := f.M.Close(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(types) != 2 || types[1] != sessionkit.EventActivity {
			t.Errorf("hook events %v, want the creation and the activity", types)
		}
	})
	t.Run("closed", func(t *testing.T) {
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		v := f.Login(t, uuid.New())
		if err := f.M.Close(ctx); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(2 * time.Minute)
		due(t, f, v.Token, loginAddr)
	})
	t.Run("queue full", func(t *testing.T) {
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithActivityWriteDelay(time.Second))
		sessionkit.SetActivityQueueLimit(f.M, 1)
		// Held until Close, however slow the requests below: a round sent
		// among them would empty the queue and land the write early.
		sessionkit.SetActivityWriteDelay(f.M, time.Hour)
		queued, full := f.Login(t, uuid.New()), f.Login(t, uuid.New())
		f.Clock.Advance(2 * time.Minute)
		if res, err := f.M.Authenticate(ctx, queued.Token, loginAddr); err != nil || res.Written {
			t.Fatalf("the first write: written %v, %v; want it queued", res.Written, err)
		}
		due(t, f, full.Token, loginAddr) // the queue holds one session
		if got := f.Session(t, queued.Session.ID).LastActivityAt; !got.Equal(queued.Session.LastActivityAt) {
			t.Errorf("the queued write landed before its delay: last activity %v", got)
		}
		if err := f.M.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.Session(t, queued.Session.ID).LastActivityAt; !got.Equal(f.M.Now()) {
			t.Errorf("after Close: the queued session's last activity %v, want %v", got, f.M.Now())
		}
	})
	t.Run("delay zero", func(t *testing.T) {
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithActivityWriteDelay(0))
		v := f.Login(t, uuid.New())
		f.Clock.Advance(2 * time.Minute)
		due(t, f, v.Token, loginAddr)
	})
}

// TestCloseSendsQueuedWrites: Close does not wait out the delay: what is
// queued is written when it returns.
func TestCloseSendsQueuedWrites(t *testing.T) {
	ctx := t.Context()
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client}, sessionkit.WithActivityWriteDelay(time.Second))
	v := f.Login(t, uuid.New())
	f.Clock.Advance(2 * time.Minute)
	if _, err := f.M.Authenticate(ctx, v.Token, loginAddr); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := f.M.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited >= time.Second {
		t.Errorf("Close waited %v, the whole delay", waited)
	}
	if got := f.Session(t, v.Session.ID).LastActivityAt; !got.Equal(f.M.Now()) {
		t.Errorf("after Close: last activity %v, want %v", got, f.M.Now())
	}
}

func TestActivityWriteDelayOption(t *testing.T) {
	st, err := store.NewRedis(backends[0].Client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{-time.Millisecond, time.Second + time.Nanosecond} {
		if _, err := sessionkit.New(st, sessionkit.WithActivityWriteDelay(d)); !errors.Is(err, sessionkit.ErrInvalid) {
			t.Errorf("delay %v: got %v, want ErrInvalid", d, err)
		}
	}
	for _, d := range []time.Duration{0, time.Millisecond, time.Second} {
		m, err := sessionkit.New(st, sessionkit.WithActivityWriteDelay(d))
		if err != nil {
			t.Errorf("delay %v: %v", d, err)
			continue
		}
		m.Close(context.Background())
	}
}

// TestQueuedWriteFailure: a write that cannot reach Redis fails after its
// request was served; it is counted among the store's failures (operation
// "touch") and logged once, and the last activity is as it was.
func TestQueuedWriteFailure(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	reader := sdkmetric.NewManualReader()
	var logs logtest.Buffer
	f := sessiontest.New(t, sessiontest.Options{Addr: srv.Addr()}, sessionkit.WithActivityWriteDelay(200*time.Millisecond),
		sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		sessionkit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	// Held until Close, which sends it once Redis is down: with the delay
	// alone, a machine slow to kill the server let it land first.
	sessionkit.SetActivityWriteDelay(f.M, time.Hour)
	v := f.Login(t, uuid.New())
	f.Clock.Advance(2 * time.Minute)
	if res, err := f.M.Authenticate(ctx, v.Token, loginAddr); err != nil || res.Written {
		t.Fatalf("Authenticate: written %v, %v; want a queued write", res.Written, err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := f.M.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := logs.Count("activity writes failed"); n != 1 {
		t.Errorf("warnings: got %d, want 1\n%s", n, logs.String())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n, _ := point(rm, "sessionkit.store.errors", attribute.NewSet(attribute.String("sessionkit.operation", "touch"))); n != 1 {
		t.Errorf("sessionkit.store.errors{touch}: got %d, want 1", n)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	err := redistest.WaitFor(5*time.Second, func() error {
		s, err := f.M.Session(ctx, v.Session.ID)
		if err == nil && !s.LastActivityAt.Equal(v.Session.LastActivityAt) {
			t.Errorf("last activity %v, want %v as before", s.LastActivityAt, v.Session.LastActivityAt)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
