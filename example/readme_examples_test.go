package main

// The README's Go code lives here, in Example functions that `go test`
// compiles and runs; readme_test.go checks that every Go block of the
// README appears verbatim in a test file, so the two cannot drift apart.

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

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

// knownUsers stands in for your user store. A real one keeps a slow
// password hash per user (argon2id, bcrypt or scrypt), never the password.
var knownUsers = map[string]struct {
	ID       uuid.UUID
	Password string
}{
	"alice": {uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e"), "password"},
}

// checkPassword is your credential check: POST /sessions (cookie) and
// POST /sessions/token (API clients) call it.
func checkPassword(r *http.Request) (uuid.UUID, error) {
	username, password, err := handlers.Credentials(r)
	if err != nil {
		return uuid.Nil, err
	}
	u, ok := knownUsers[username]
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(u.Password)) != 1 {
		return uuid.Nil, handlers.ErrBadCredentials
	}
	return u.ID, nil
}

// portfolio is one of your handlers: behind the middleware, the session is in the context.
func portfolio(w http.ResponseWriter, r *http.Request) {
	s, ok := sessionkit.FromContext(r.Context())
	if !ok { // only behind an Optional middleware: Require where a session is a must
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, "portfolio of user %s, signed in on %s\n", s.UserID, s.Device.Label)
}

// positions is another; the route below records which provider it reached.
func positions(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "positions at", r.PathValue("provider"))
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
	// Record provider access (the session's "providers accessed", the audit trail).
	app.Handle("GET /providers/{provider}/positions",
		middleware.RecordProviderFromPath("provider", middleware.ProviderOptions{})(http.HandlerFunc(positions)))

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
	api.Mount(root) // POST /sessions (login), GET /sessions, DELETE /sessions/{id}, ...
	// Everything else needs a valid session, and your own POST, PUT and DELETE routes
	// refuse cross-site browser requests, as the API's do: SameSite=Lax lets a sibling
	// subdomain's form through.
	root.Handle("/", http.NewCrossOriginProtection().Handler(auth.Middleware(app)))
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
	call("POST", "/sessions", url.Values{"username": {"alice"}, "password": {"wrong"}})
	call("POST", "/sessions", url.Values{"username": {"alice"}, "password": {"password"}})
	call("GET", "/portfolio", nil)
	call("GET", "/providers/schwab/positions", nil)
	call("GET", "/providers/fidelity/positions", nil)
	sessions, err := m.ListUserSessions(context.Background(), knownUsers["alice"].ID, sessionkit.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("providers:", sessions[0].ProvidersAccessed)
	call("DELETE", "/sessions/current", nil)
	call("GET", "/portfolio", nil)
	// Output:
	// GET /portfolio 401 Unauthorized
	// POST /sessions 401 Unauthorized
	// POST /sessions 201 Created
	// GET /portfolio 200 OK
	// GET /providers/schwab/positions 200 OK
	// GET /providers/fidelity/positions 200 OK
	// providers: [schwab fidelity]
	// DELETE /sessions/current 204 No Content
	// GET /portfolio 401 Unauthorized
}

// API and mobile clients: tokens instead of a cookie, on the same Manager
// and routes.
func Example_apiTokens() {
	redisAddr, stop := startRedis()
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// A real app loads the same Ed25519 or P-256 key on every instance.
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st, sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
		SigningKeys: []crypto.Signer{key},      // the first signs, all verify: rotate by putting a new one first
		Issuer:      "https://app.example.com", // the iss claim
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	// AllowBearer: "Authorization: Bearer <access token>" works beside the cookie.
	auth, err := middleware.NewAuthenticator(m, middleware.Options{AllowBearer: true})
	if err != nil {
		log.Fatal(err)
	}

	api, err := handlers.New(auth, handlers.Options{Login: checkPassword})
	if err != nil {
		log.Fatal(err)
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /portfolio", portfolio)
	root := http.NewServeMux()
	api.Mount(root)
	root.Handle("/", auth.Middleware(app))
	srv := httptest.NewServer(root)
	defer srv.Close()

	// A client with no cookie jar, as curl or a mobile app.
	call := func(method, path, body, access string) map[string]any {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if access != "" {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		fmt.Println(method, path, resp.Status)
		return out
	}
	pair := call("POST", "/sessions/token", `{"username":"alice","password":"password"}`, "")
	call("GET", "/portfolio", "", pair["access_token"].(string))
	next := call("POST", "/sessions/refresh", `{"refresh_token":"`+pair["refresh_token"].(string)+`"}`, "")
	fmt.Println("same session:", next["session"].(map[string]any)["id"] == pair["session"].(map[string]any)["id"])
	call("DELETE", "/sessions/current", "", next["access_token"].(string))
	call("GET", "/portfolio", "", next["access_token"].(string))
	keys := call("GET", "/sessions/jwks.json", "", "")
	fmt.Println("keys:", len(keys["keys"].([]any)))
	// Output:
	// POST /sessions/token 201 Created
	// GET /portfolio 200 OK
	// POST /sessions/refresh 200 OK
	// same session: true
	// DELETE /sessions/current 204 No Content
	// GET /portfolio 401 Unauthorized
	// GET /sessions/jwks.json 200 OK
	// keys: 1
}
