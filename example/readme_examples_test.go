package main

// The README's Go code lives here, in Example functions that `go test`
// compiles and runs; readme_test.go checks that every Go block of the
// README appears verbatim in a test file, so the two cannot drift apart.

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// startRedis starts a redis-server for one example and returns its address.
func startRedis() (addr string, stop func()) {
	srv, err := redistest.StartServer(redistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return srv.Addr(), func() { srv.Stop() }
}

// exampleUsers stands in for the app's user store.
var exampleUsers = map[string]uuid.UUID{"alice": uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")}

// lookUpUser stands in for the app's own password check (a real one
// compares a password hash such as argon2id or bcrypt).
func lookUpUser(_ context.Context, username, password string) (uuid.UUID, bool) {
	id, ok := exampleUsers[username]
	return id, ok && password == "password"
}

// checkPassword is the app's credential check, called by POST /sessions.
func checkPassword(r *http.Request) (uuid.UUID, error) {
	username, password, err := handlers.Credentials(r)
	if err != nil {
		return uuid.Nil, err
	}
	id, ok := lookUpUser(r.Context(), username, password) // your user store and password hash
	if !ok {
		return uuid.Nil, handlers.ErrBadCredentials
	}
	return id, nil
}

// portfolio is one of the app's handlers: behind the middleware, the session is in the context.
func portfolio(w http.ResponseWriter, r *http.Request) {
	s, _ := sessionkit.FromContext(r.Context())
	fmt.Fprintf(w, "portfolio of user %s, signed in on %s\n", s.UserID, s.Device.Label)
}

// fidelityPositions records provider access with one call.
func fidelityPositions(w http.ResponseWriter, r *http.Request) {
	if err := sessionkit.RecordProvider(r.Context(), "fidelity"); err != nil {
		// Refuse rather than serve provider data unrecorded: the session
		// may have been revoked meanwhile, or Redis may be down.
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "fidelity positions")
}

// schwabRoutes is a group of routes that all reach Schwab.
func schwabRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /schwab/accounts", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "schwab accounts")
	})
	return mux
}

// Wrap an existing http.ServeMux with the session middleware, mount the
// /sessions API next to it, and record provider access.
func Example_quickStart() {
	redisAddr, stop := startRedis()
	defer stop()

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())

	// Your app's routes, unchanged.
	app := http.NewServeMux()
	app.HandleFunc("GET /portfolio", portfolio)
	app.HandleFunc("GET /fidelity/positions", fidelityPositions)
	// Record provider access for every request of a route group.
	app.Handle("GET /schwab/", middleware.RecordProvider("schwab", middleware.ProviderOptions{})(schwabRoutes()))

	// One Authenticator, the secure defaults, for the middleware and the API.
	auth, err := middleware.NewAuthenticator(m, middleware.Options{})
	if err != nil {
		log.Fatal(err)
	}
	api, err := handlers.New(auth, handlers.Options{Login: checkPassword})
	if err != nil {
		log.Fatal(err)
	}
	root := http.NewServeMux()
	api.Mount(root)                        // POST /sessions (login), GET /sessions, DELETE /sessions/{id}, ...
	root.Handle("/", auth.Middleware(app)) // everything else needs a valid session
	// log.Fatal(http.ListenAndServeTLS(":443", "cert.pem", "key.pem", root))

	// Try it like a browser would: the __Host- cookie needs HTTPS.
	srv := httptest.NewTLSServer(root)
	defer srv.Close()
	browser := srv.Client()
	browser.Jar, _ = cookiejar.New(nil)
	call := func(method, path string, body url.Values) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body.Encode()))
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(method, path, resp.Status)
	}
	call("GET", "/portfolio", nil)
	call("POST", "/sessions", url.Values{"username": {"alice"}, "password": {"password"}})
	call("GET", "/portfolio", nil)
	call("GET", "/schwab/accounts", nil)
	call("GET", "/fidelity/positions", nil)
	sessions, err := m.ListUserSessions(context.Background(), exampleUsers["alice"], sessionkit.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("providers:", sessions[0].ProvidersAccessed)
	call("DELETE", "/sessions/current", nil)
	call("GET", "/portfolio", nil)
	// Output:
	// GET /portfolio 401 Unauthorized
	// POST /sessions 201 Created
	// GET /portfolio 200 OK
	// GET /schwab/accounts 200 OK
	// GET /fidelity/positions 200 OK
	// providers: [schwab fidelity]
	// DELETE /sessions/current 204 No Content
	// GET /portfolio 401 Unauthorized
}

// tierOf stands in for the app's lookup of a user's plan.
func tierOf(context.Context, uuid.UUID) (string, error) { return "free", nil }

// The commands on the Manager: sign in on two devices, list them, sign one out.
func Example_commands() {
	redisAddr, stop := startRedis()
	defer stop()
	ctx := context.Background()
	userID := uuid.New()
	laptopIP, phoneIP := "203.0.113.7", "198.51.100.23"
	phoneUA := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st,
		sessionkit.WithLimit(sessionkit.Tiers{"free": 1, "plus": 10}.Limit(tierOf)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)

	laptop, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: userID, IPAddress: laptopIP, UserAgent: "curl/8.5.0"})
	if err != nil {
		log.Fatal(err)
	}
	// laptop.Token goes into the cookie, once; laptop.Session.ID is public.
	phone, err := m.CreateSession(ctx, sessionkit.CreateSession{UserID: userID, IPAddress: phoneIP, UserAgent: phoneUA})
	if err != nil {
		log.Fatal(err)
	}
	// A "free" user may hold one session: the laptop's was evicted.
	fmt.Println("evicted laptop:", len(phone.Evicted) == 1 && phone.Evicted[0] == laptop.Session.ID)
	_, err = m.Authenticate(ctx, laptop.Token, netip.MustParseAddr(laptopIP))
	fmt.Println(err)

	sessions, err := m.ListUserSessions(ctx, userID, sessionkit.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(sessions), "session:", sessions[0].Device.Label, sessions[0].IPAddress)

	_, err = m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: phone.Session.ID, UserID: userID, Reason: sessionkit.ReasonUserRevoked})
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.Authenticate(ctx, phone.Token, netip.MustParseAddr(phoneIP))
	fmt.Println(err)
	// Output:
	// evicted laptop: true
	// sessionkit: session revoked (session_limit_exceeded)
	// 1 session: Safari on iPhone 198.51.100.23
	// sessionkit: session revoked (revoked_by_user)
}

// Options of the Manager, the enrichment and the middleware.
func Example_options() {
	redisAddr, stop := startRedis()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}

	enricher, err := sessionkit.NewEnricher(sessionkit.EnricherOptions{GeoIPPath: os.Getenv("GEOIP_DB")})
	if err != nil {
		log.Fatal(err) // a GeoIP file that cannot be opened fails at start-up
	}
	defer enricher.Close()
	m, err := sessionkit.New(st,
		sessionkit.WithLifetime(14*24*time.Hour),
		sessionkit.WithIdleTimeout(30*time.Minute),
		sessionkit.WithLimit(sessionkit.Tiers{"free": 1, "plus": 10, "": 3}.Limit(tierOf)),
		sessionkit.WithEnricher(enricher),
		sessionkit.WithHook(func(ctx context.Context, e sessionkit.Event) {
			if e.Type == sessionkit.EventCreated && e.NewCountry {
				slog.WarnContext(ctx, "sign-in from a new country", "user_id", e.UserID, "country", e.Country)
			}
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	mw, err := middleware.New(m, middleware.Options{
		TrustedProxies: []string{"10.0.0.0/8"}, // your load balancers; none by default
		IPPolicy:       middleware.IPFlag,      // record and flag address changes (the default)
		StoreTimeout:   2 * time.Second,        // 503 when Redis is slower than that
	})
	if err != nil {
		log.Fatal(err)
	}

	limit, err := m.UserLimit(context.Background(), uuid.New())
	fmt.Println(limit, err, mw != nil)
	// Output:
	// 1 <nil> true
}

// One Redis node, a Cluster, or Sentinel: the store takes any redis.UniversalClient.
func Example_redisClients() {
	// One node:
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	// Redis Cluster: all keys of a user share one hash tag, so every script stays in one slot.
	cluster := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"redis-1:7000", "redis-2:7001", "redis-3:7002"},
		ContextTimeoutEnabled: true,
	})
	// Sentinel: the failover client follows the current master.
	sentinel := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "sessions",
		SentinelAddrs:         []string{"sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"},
		ContextTimeoutEnabled: true,
	})
	for _, c := range []redis.UniversalClient{rdb, cluster, sentinel} {
		st, err := store.NewRedis(c, store.Options{Prefix: "myapp:sk:"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(st.Prefix())
		c.Close()
	}
	// Output:
	// myapp:sk:
	// myapp:sk:
	// myapp:sk:
}

// The opt-in local cache of verified sessions, invalidated through Redis Pub/Sub.
func Example_cache() {
	redisAddr, stop := startRedis()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()

	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	cache, err := store.NewCache(st, store.CacheOptions{}) // 1 s TTL, at most 5 s
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	m, err := sessionkit.New(cache)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())

	res, err := m.CreateSession(context.Background(), sessionkit.CreateSession{UserID: uuid.New(), IPAddress: "203.0.113.7"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.Authenticate(context.Background(), res.Token, netip.MustParseAddr("203.0.113.7"))
	fmt.Println(err)
	// Output:
	// <nil>
}

// schwabBaseURL is where the Schwab API is; the example points it at a fake.
var schwabBaseURL = "https://api.schwabapi.com"

// schwabAPI is the app's client for Schwab: each request it sends with a
// session-bearing context first records provider access for that session.
var schwabAPI = &http.Client{Transport: middleware.ProviderTransport{Provider: "schwab"}}

func schwabAccounts(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), "GET", schwabBaseURL+"/trader/v1/accounts", nil)
	if err != nil {
		http.Error(w, "bad request", http.StatusInternalServerError)
		return
	}
	resp, err := schwabAPI.Do(req) // refused, unsent, if the session was revoked meanwhile
	if err != nil {
		http.Error(w, "schwab unavailable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	io.Copy(w, resp.Body)
}

// Record provider access for outbound requests of an API client.
func Example_providerTransport() {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"accounts":[]}`)
	}))
	defer fake.Close()
	schwabBaseURL = fake.URL

	redisAddr, stop := startRedis()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	mw, err := middleware.New(m, middleware.Options{})
	if err != nil {
		log.Fatal(err)
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /accounts", schwabAccounts)
	srv := httptest.NewServer(mw(app))
	defer srv.Close()

	userID := uuid.New()
	res, err := m.CreateSession(context.Background(), sessionkit.CreateSession{UserID: userID, IPAddress: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/accounts", nil)
	req.AddCookie(&http.Cookie{Name: middleware.DefaultCookieName, Value: res.Token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))
	s, err := m.UserSession(context.Background(), userID, res.Session.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("providers:", s.ProvidersAccessed)
	// Output:
	// 200 {"accounts":[]}
	// providers: [schwab]
}
