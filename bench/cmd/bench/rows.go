package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// row is one configuration under load: a protected route on its own
// loopback port, and the credential header values of its sessions.
type row struct {
	key, name string
	handler   http.Handler
	cookies   []string // values of header
	header    string   // default "Cookie"
	url       string
	srv       *http.Server
	cache     *store.Cache // the main rows' cache rows only
	// The realistic mode's cache rows: the process serving the row, which
	// mix starts anew before each mix.
	remote *remoteRow
	mix    func(ctx context.Context) error
	trips  *redistest.Counter // round trips of the row's Redis clients
}

const userKey = "user_id"

// env is what the rows share: the Redis address and how to make clients.
type env struct {
	addr     string
	poolSize int
	sessions int
	throttle time.Duration // the sessionkit rows' activity throttle
	// writeDelay is their activity write delay.
	writeDelay time.Duration
	quiet      *slog.Logger
	dir        string // the harness's files (the realistic mode's cache rows' specs and tokens)
	// cpuprofile, in the realistic mode alone, is where its profile goes:
	// each cache row's process writes its own beside it, named with the
	// row's key after a dot.
	cpuprofile string
	closers    []func()
}

// client returns a new client closed with e, counting its round trips in
// trips when set.
func (e *env) client(trips *redistest.Counter) *redis.Client {
	c := e.newClient(trips)
	e.closers = append(e.closers, func() { c.Close() })
	return c
}

// newClient is client, for the caller to close.
func (e *env) newClient(trips *redistest.Counter) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, PoolSize: e.poolSize, ContextTimeoutEnabled: true})
	if trips != nil {
		c.AddHook(trips)
	}
	return c
}

// manager returns a Manager over a store on a new client under prefix,
// closed with e, counting its round trips in trips.
func (e *env) manager(trips *redistest.Counter, prefix string, opts ...sessionkit.Option) (*sessionkit.Manager, error) {
	st, err := store.NewRedis(e.client(trips), store.Options{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	m, err := sessionkit.New(st, append(e.options(), opts...)...)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { m.Close(context.Background()) })
	return m, nil
}

// options are the options every Manager of the rows starts with.
func (e *env) options() []sessionkit.Option {
	return []sessionkit.Option{sessionkit.WithLogger(e.quiet), sessionkit.WithActivityThrottle(e.throttle), sessionkit.WithActivityWriteDelay(e.writeDelay)}
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// buildRows makes the seven rows, in the order the table shows them.
func buildRows(ctx context.Context, e *env) ([]*row, error) {
	users := make([]uuid.UUID, e.sessions)
	for i := range users {
		users[i] = uuid.New()
	}
	var rows []*row

	// (a) No session layer: the ceiling.
	none := &row{key: "none", name: "no session layer", trips: &redistest.Counter{},
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reply(w, users[0].String()) })}
	rows = append(rows, none)

	// (b) One plain GET per request: the floor for anything that asks Redis.
	getTrips := &redistest.Counter{}
	plain := e.client(getTrips)
	if err := plain.Set(ctx, "bench:plain", users[0].String(), 0).Err(); err != nil {
		return nil, err
	}
	get := &row{key: "get", name: "one Redis GET", trips: getTrips,
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, err := plain.Get(r.Context(), "bench:plain").Result()
			if err != nil {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
			reply(w, v)
		})}
	rows = append(rows, get)

	// (b') The same GET through go-redis's autopipeliner, the way
	// sessionkit's store sends its read: not a budget, but the honest
	// comparison for what batching concurrent reads is worth by itself.
	apTrips := &redistest.Counter{}
	ap, err := e.client(apTrips).AsyncAutoPipeline()
	if err != nil {
		return nil, err
	}
	getAP := &row{key: "get-ap", name: "one Redis GET, autopipelined", trips: apTrips,
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cmd := redis.NewStringCmd(r.Context(), "get", "bench:plain")
			if err := ap.Submit(r.Context(), cmd).WaitContext(r.Context()); err != nil {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
			reply(w, cmd.Val())
		})}
	rows = append(rows, getAP)

	// (c), (d) scs with its go-redis store, reading the session, then also
	// writing a last-activity value on every request.
	for _, write := range []bool{false, true} {
		trips := &redistest.Counter{}
		sm := scs.New()
		sm.Store = goredisstore.NewWithPrefix(e.client(trips), "bench:scs:")
		sm.Lifetime = 24 * time.Hour
		sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
			// wrk closing its connections at the end of a run cancels
			// requests in flight: not worth a log line.
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		}
		cookies := make([]string, len(users))
		for i, u := range users {
			c, err := sm.Load(ctx, "")
			if err != nil {
				return nil, err
			}
			sm.Put(c, userKey, u.String())
			tok, _, err := sm.Commit(c)
			if err != nil {
				return nil, fmt.Errorf("scs commit: %w", err)
			}
			cookies[i] = sm.Cookie.Name + "=" + tok
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := sm.GetString(r.Context(), userKey)
			if u == "" {
				http.Error(w, "no session", http.StatusUnauthorized)
				return
			}
			if write {
				sm.Put(r.Context(), "last_activity", time.Now().UnixMilli())
			}
			reply(w, u)
		})
		r := &row{key: "scs", name: "scs, read", cookies: cookies, handler: sm.LoadAndSave(h), trips: trips}
		if write {
			r.key, r.name = "scs-write", "scs, read + write activity"
		}
		rows = append(rows, r)
	}

	// (e), (f) sessionkit's middleware (validate + activity + IP check),
	// then the same over the verified-session cache. Both share the sessions.
	skTrips := &redistest.Counter{}
	m, err := e.manager(skTrips, "bench:sk:")
	if err != nil {
		return nil, err
	}
	cookies := make([]string, len(users))
	ids := make([]uuid.UUID, len(users))
	for i, u := range users {
		res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: u, IPAddress: "127.0.0.1", UserAgent: benchUA})
		if err != nil {
			return nil, err
		}
		cookies[i] = middleware.DefaultCookieName + "=" + res.Token
		ids[i] = res.Session.ID
	}
	if read, err := readRow(e, "bench:sk:", cookies, ids); err != nil {
		return nil, err
	} else {
		rows = append(rows, read)
	}
	mw, err := middleware.New(m, middleware.Options{})
	if err != nil {
		return nil, err
	}
	rows = append(rows, &row{key: "sessionkit", name: "sessionkit middleware", cookies: cookies, handler: mw(sessionHandler()), trips: skTrips})
	// The two reference rows get the very same requests as sessionkit's
	// rows (they ignore the cookie), so every compared row parses the same
	// bytes.
	none.cookies, get.cookies, getAP.cookies = cookies, cookies, cookies

	cachedTrips := &redistest.Counter{}
	cst, err := store.NewRedis(e.client(cachedTrips), store.Options{Prefix: "bench:sk:"})
	if err != nil {
		return nil, err
	}
	cache, err := store.NewCache(cst, store.CacheOptions{})
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { cache.Close() })
	cm, err := sessionkit.New(cache, e.options()...)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { cm.Close(context.Background()) })
	cmw, err := middleware.New(cm, middleware.Options{})
	if err != nil {
		return nil, err
	}
	rows = append(rows, &row{key: "cached", name: "sessionkit + cache", cookies: cookies, handler: cmw(sessionHandler()), cache: cache, trips: cachedTrips})
	if err := waitCacheOn(ctx, cache); err != nil {
		return nil, err
	}

	// (g), (h) the same two with bearer sessions: each request carries an
	// access token (a JWT checked locally, then the session's standing).
	bearerRows, err := bearerRows(ctx, e, users)
	if err != nil {
		return nil, err
	}
	return append(rows, bearerRows...), nil
}

// bearerRows are sessionkit's two rows again for API clients: sessions
// signed in with CreateSession.Bearer, requests with "Authorization:
// Bearer <access token>". Both Managers share one signing key, as the
// instances of an app do.
func bearerRows(ctx context.Context, e *env, users []uuid.UUID) ([]*row, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	tokens := sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
		SigningKeys: []crypto.Signer{key}, Issuer: "https://bench.sessionkit.test", TTL: time.Hour, // outlives the run
	})
	manager := func(trips *redistest.Counter, cached bool) (*sessionkit.Manager, *store.Cache, error) {
		st, err := store.NewRedis(e.client(trips), store.Options{Prefix: "bench:skb:"})
		if err != nil {
			return nil, nil, err
		}
		var s sessionkit.Store = st
		var cache *store.Cache
		if cached {
			if cache, err = store.NewCache(st, store.CacheOptions{}); err != nil {
				return nil, nil, err
			}
			e.closers = append(e.closers, func() { cache.Close() })
			s = cache
		}
		m, err := sessionkit.New(s, append(e.options(), tokens)...)
		if err != nil {
			return nil, nil, err
		}
		e.closers = append(e.closers, func() { m.Close(context.Background()) })
		return m, cache, nil
	}
	var rows []*row
	var values []string
	for _, cached := range []bool{false, true} {
		trips := &redistest.Counter{}
		m, cache, err := manager(trips, cached)
		if err != nil {
			return nil, err
		}
		if values == nil {
			for _, u := range users {
				res, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: u, IPAddress: "127.0.0.1", UserAgent: benchUA, Bearer: true})
				if err != nil {
					return nil, err
				}
				values = append(values, "Bearer "+res.Tokens.AccessToken)
			}
		}
		mw, err := middleware.New(m, middleware.Options{AllowBearer: true})
		if err != nil {
			return nil, err
		}
		r := &row{key: "bearer", name: "sessionkit, bearer token", cookies: values, header: "Authorization", handler: mw(sessionHandler()), trips: trips}
		if cached {
			r.key, r.name, r.cache = "bearer-cached", "sessionkit + cache, bearer", cache
			if err := waitCacheOn(ctx, cache); err != nil {
				return nil, err
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// readRow reads each request's session as sessionkit's store does, one
// autopipelined HGET of its stored value, and nothing else: no token
// parse, no decoding, no check. What sessionkit's uncached row costs
// beyond it is the Go work of the check; what it costs beyond the one-GET
// row is the read of a session rather than of one short hot key.
func readRow(e *env, prefix string, cookies []string, ids []uuid.UUID) (*row, error) {
	keys, err := rediskey.New(prefix)
	if err != nil {
		return nil, err
	}
	type field struct{ key, member string }
	where := make(map[string]field, len(cookies))
	for i, c := range cookies {
		k, m := keys.Active(ids[i])
		where[c] = field{k, m}
	}
	trips := &redistest.Counter{}
	ap, err := e.client(trips).AsyncAutoPipeline()
	if err != nil {
		return nil, err
	}
	return &row{key: "read", name: "session's HGET, autopipelined", cookies: cookies, trips: trips,
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The request carries exactly one cookie, the session's: its
			// value is found without parsing, so the row's Go work is the
			// read's alone.
			f, ok := where[r.Header.Get("Cookie")]
			if !ok {
				http.Error(w, "no session", http.StatusUnauthorized)
				return
			}
			cmd := redis.NewStringCmd(r.Context(), "hget", f.key, f.member)
			if err := ap.Submit(r.Context(), cmd).WaitContext(r.Context()); err != nil {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
			v := cmd.Val()
			reply(w, v[:min(len(v), 36)])
		})}, nil
}

const benchUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func sessionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessionkit.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		reply(w, s.UserID.String())
	})
}

func reply(w http.ResponseWriter, user string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(user))
}

func waitCacheOn(ctx context.Context, c *store.Cache) error {
	deadline := time.Now().Add(10 * time.Second)
	for !c.Stats().On {
		if time.Now().After(deadline) {
			return fmt.Errorf("the session cache did not turn on")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// serve starts r's server on a free loopback port.
func (r *row) serve() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.url = "http://" + l.Addr().String() + "/"
	r.srv = &http.Server{Handler: r.handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: nil}
	// Connection goroutines inherit the label, so a CPU profile can be
	// split by row.
	go pprof.Do(context.Background(), pprof.Labels("row", r.key), func(context.Context) { r.srv.Serve(l) })
	return nil
}
