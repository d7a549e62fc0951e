package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

// The device every Login signs in from.
const (
	// ChromeMac is the User-Agent of Login: Chrome on macOS.
	ChromeMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	// LoginIP is the address of Login.
	LoginIP = "203.0.113.7"
)

// closeTimeout bounds Manager.Close at the end of a test: hooks a test left
// blocked must not hang it.
const closeTimeout = 5 * time.Second

// Options say where a fixture's Redis is and how its store and Manager are
// built. The zero value is not usable: set Addr or Client.
type Options struct {
	// Addr is a standalone server: the fixture opens a client of its own to
	// it, with deadlines short enough that tests which stop the server fail
	// fast (one retry, 1 s to dial, 2 s to read or write), and closes it.
	Addr string
	// Client is used when Addr is empty: as given (the fixture neither
	// hooks nor closes it, so a client shared by many tests can serve), or,
	// with OwnClient, as the deployment to open a new client to.
	Client    redis.UniversalClient
	OwnClient bool

	// Prefix is the key prefix. Default (New): redistest.Prefix of the
	// test; two fixtures given one prefix share their sessions.
	Prefix string
	// Store configures the store; its Prefix is replaced by Prefix.
	// Default: the store's defaults.
	Store store.Options
	// Cache, when set, puts a store.Cache with these options between the
	// store and the Manager; the fixture waits until it is on. Default: no
	// cache.
	Cache *store.CacheOptions
	// Wrap, when set, wraps what the Manager runs over (the store, or the
	// cache), as a test that fails or counts one method does. Default: none.
	Wrap func(sessionkit.Store) sessionkit.Store

	// Clock is the Manager's clock. Default: a new redistest.Clock; give
	// one to share it between fixtures, or to the cache.
	Clock *redistest.Clock
	// RealTime runs the Manager on the real time instead, and Clock is
	// ignored: Fixture.Clock is nil (an option WithClock of the caller
	// still applies). Default: false.
	RealTime bool
}

// Fixture is a Manager over a Redis store on a key prefix of its own.
type Fixture struct {
	Client redis.UniversalClient
	// Calls counts what Client sends, when the fixture opened it (Addr or
	// OwnClient); nil for a client used as given.
	Calls *redistest.Counter
	Store *store.Redis
	Cache *store.Cache // nil without Options.Cache
	M     *sessionkit.Manager
	Clock *redistest.Clock // nil with Options.RealTime
	// Prefix is the key prefix of the store.
	Prefix string

	closers []func()
}

// New builds a fixture for tb, with the Manager options opts after the
// clock, and closes it when tb ends.
func New(tb testing.TB, o Options, opts ...sessionkit.Option) *Fixture {
	tb.Helper()
	if o.Prefix == "" {
		o.Prefix = redistest.Prefix(tb)
	}
	f, err := Build(o, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return f
}

// Build builds a fixture that outlives any one test (a fuzzing process's):
// Options.Prefix is required, and the caller calls Close.
func Build(o Options, opts ...sessionkit.Option) (*Fixture, error) {
	if o.Prefix == "" {
		return nil, errors.New("sessiontest: Build needs a key prefix")
	}
	f := &Fixture{Prefix: o.Prefix}
	if !o.RealTime {
		f.Clock = o.Clock
	}
	if err := f.build(o, opts); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// build opens the client, the store, the cache and the Manager in turn,
// each with its closer, and stops at the first error.
func (f *Fixture) build(o Options, opts []sessionkit.Option) error {
	if err := f.openClient(o); err != nil {
		return err
	}
	so := o.Store
	so.Prefix = o.Prefix
	var err error
	if f.Store, err = store.NewRedis(f.Client, so); err != nil {
		return err
	}
	var over sessionkit.Store = f.Store
	if o.Cache != nil {
		if f.Cache, err = store.NewCache(f.Store, *o.Cache); err != nil {
			return err
		}
		f.closers = append(f.closers, func() { f.Cache.Close() })
		if err := waitCache(f.Cache, func(s store.CacheStats) bool { return s.On }); err != nil {
			return fmt.Errorf("sessiontest: the cache never turned on: %w", err)
		}
		over = f.Cache
	}
	if o.Wrap != nil {
		over = o.Wrap(over)
	}
	if !o.RealTime {
		if f.Clock == nil {
			f.Clock = redistest.NewClock()
		}
		opts = append([]sessionkit.Option{sessionkit.WithClock(f.Clock.Now)}, opts...)
	}
	if f.M, err = sessionkit.New(over, opts...); err != nil {
		return err
	}
	f.closers = append(f.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		f.M.Close(ctx)
	})
	return nil
}

func (f *Fixture) openClient(o Options) error {
	switch {
	case o.Addr != "":
		c := redis.NewClient(&redis.Options{
			Addr: o.Addr, ContextTimeoutEnabled: true,
			MaxRetries: 1, DialTimeout: time.Second, DialerRetries: 1, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		})
		f.own(c)
	case o.Client != nil && o.OwnClient:
		c, err := cloneClient(o.Client)
		if err != nil {
			return err
		}
		f.own(c)
	case o.Client != nil:
		f.Client = o.Client
	default:
		return errors.New("sessiontest: Options need Addr or Client")
	}
	return nil
}

// own makes c the fixture's client, counted and closed with it.
func (f *Fixture) own(c redis.UniversalClient) {
	f.Client = c
	f.Calls = &redistest.Counter{}
	c.AddHook(f.Calls)
	f.closers = append(f.closers, func() { c.Close() })
}

// Close closes the Manager, the cache and the client the fixture opened,
// in that order. New's fixtures are closed when their test ends.
func (f *Fixture) Close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
	f.closers = nil
}

// Login signs user in from LoginIP with ChromeMac, failing the test on error.
func (f *Fixture) Login(tb testing.TB, user uuid.UUID) sessionkit.CreateSessionResult {
	tb.Helper()
	return f.LoginFrom(tb, user, LoginIP)
}

// LoginFrom signs user in from ip with ChromeMac, failing the test on error.
func (f *Fixture) LoginFrom(tb testing.TB, user uuid.UUID, ip string) sessionkit.CreateSessionResult {
	tb.Helper()
	res, err := f.M.CreateSession(context.Background(), sessionkit.CreateSession{UserID: user, IPAddress: ip, UserAgent: ChromeMac})
	if err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return res
}

// Session reads a session back, failing the test on error.
func (f *Fixture) Session(tb testing.TB, id uuid.UUID) sessionkit.Session {
	tb.Helper()
	s, err := f.M.Session(context.Background(), id)
	if err != nil {
		tb.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

// KeyNames names the keys under the fixture's prefix.
func (f *Fixture) KeyNames(tb testing.TB) rediskey.Keys {
	tb.Helper()
	k, err := rediskey.New(f.Prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Keys returns every key under the fixture's prefix, sorted.
func (f *Fixture) Keys(tb testing.TB) []string {
	tb.Helper()
	return Keys(tb, f.Client, f.Prefix)
}

// CheckTTLs fails the test for every key under the fixture's prefix
// without an expiry, and returns the keys.
func (f *Fixture) CheckTTLs(tb testing.TB) []string {
	tb.Helper()
	return CheckTTLs(tb, f.Client, f.Prefix)
}

// Dump returns every key under the fixture's prefix with its value; see
// the function Dump.
func (f *Fixture) Dump(tb testing.TB) map[string]string {
	tb.Helper()
	return Dump(tb, f.Client, f.Prefix)
}

// WaitCache polls c's stats until cond holds and returns them, failing the
// test after a generous deadline; what names the awaited state.
func WaitCache(tb testing.TB, c *store.Cache, what string, cond func(store.CacheStats) bool) store.CacheStats {
	tb.Helper()
	if err := waitCache(c, cond); err != nil {
		tb.Fatalf("cache never %s: %v", what, err)
	}
	return c.Stats()
}

func waitCache(c *store.Cache, cond func(store.CacheStats) bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := c.Stats()
		if cond(s) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stats %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
