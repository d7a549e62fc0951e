package main

// The Go code of docs/*.md lives here, in Example functions that `go test`
// compiles and runs; readme_test.go checks that every Go block of the
// README and of docs/ appears verbatim in a test file.

import (
	"context"
	"errors"
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
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

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
	cache, err := store.NewCache(st, store.CacheOptions{}) // 5 min TTL, at most 10 min
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

// Check Redis at start-up: refuse what cannot hold sessions safely, log what is risky.
func Example_check() {
	redisAddr, stop := startRedis()
	defer stop()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()

	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	warnings, err := st.Check(ctx)
	if err != nil {
		log.Fatal(err) // older than Redis 7, a replica, or unreachable
	}
	for _, w := range warnings {
		slog.Warn("Redis is not set up safely for sessions", "warning", w)
	}

	fmt.Println(err)
	// Output:
	// <nil>
}

// login is a sign-in form of your own: it checks the credentials, starts a
// new session, sets the cookie and redirects.
func login(auth *middleware.Authenticator, check func(username, password string) (uuid.UUID, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := check(r.PostFormValue("username"), r.PostFormValue("password"))
		if !ok {
			http.Redirect(w, r, "/login?error=credentials", http.StatusSeeOther)
			return
		}
		m := auth.Manager()
		// No fixation: end the session the request carried, if any. The same
		// user's goes first (a re-login at the limit then evicts nothing);
		// another user's once the new one exists (a refused sign-in keeps it).
		var old sessionkit.Session
		if ar, err := auth.Authenticate(r); err == nil {
			old, _ = sessionkit.FromContext(ar.Context())
		} else if !middleware.Anonymous(err) && !errors.Is(err, middleware.ErrAmbiguousToken) {
			auth.Fail(w, r, err) // 503: a session that cannot be checked cannot be ended
			return
		}
		replace := func() error {
			_, err := m.RevokeSession(r.Context(), sessionkit.RevokeSession{SessionID: old.ID, UserID: old.UserID, Reason: sessionkit.ReasonLogin})
			if errors.Is(err, sessionkit.ErrNotFound) {
				return nil // revoked meanwhile
			}
			return err
		}
		if old.UserID == id && old.ImpersonatedBy == "" { // a support session counts toward no limit
			if err := replace(); err != nil {
				auth.Fail(w, r, err)
				return
			}
			old = sessionkit.Session{}
		}
		ip, ok := auth.ClientIP(r) // the client as the middleware sees it, trusted proxies included
		if !ok {
			http.Error(w, "no client address", http.StatusInternalServerError) // RemoteAddr is not an IP address
			return
		}
		res, err := m.CreateSession(sessionkit.WithRequest(r.Context(), r), sessionkit.CreateSession{
			UserID: id, IPAddress: ip.String(), UserAgent: r.UserAgent(),
		})
		if err != nil {
			auth.Fail(w, r, err) // 409 session_limit_reached at a rejecting limit, 503 when Redis is down
			return
		}
		if old.ID != uuid.Nil {
			if err := replace(); err != nil {
				auth.Fail(w, r, err)
				return
			}
		}
		auth.SessionHeaders(w.Header())
		auth.SetCookie(w, res.Token, res.Session.ExpiresAt) // the configured cookie name and attributes
		http.Redirect(w, r, "/portfolio", http.StatusSeeOther)
	}
}

// A login form of the app's own, beside or instead of POST /sessions.
func Example_customLogin() {
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
	auth, err := middleware.NewAuthenticator(m, middleware.Options{})
	if err != nil {
		log.Fatal(err)
	}
	check := func(username, password string) (uuid.UUID, bool) {
		u, ok := knownUsers[username]
		return u.ID, ok && password == u.Password
	}
	mux := http.NewServeMux()
	// Forms change state: refuse them from other sites.
	mux.Handle("POST /login", http.NewCrossOriginProtection().Handler(login(auth, check)))
	mux.Handle("GET /portfolio", auth.Middleware(http.HandlerFunc(portfolio)))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	browser := srv.Client()
	browser.Jar, _ = cookiejar.New(nil)

	resp, err := browser.PostForm(srv.URL+"/login", url.Values{"username": {"alice"}, "password": {"password"}})
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Request.URL.Path, " ", resp.Status, " ", string(body))
	// Output:
	// /portfolio 200 OK portfolio of user 0f8fad5b-d9cb-469f-a165-70867728950e, signed in on Go-http-client 1.1
}
