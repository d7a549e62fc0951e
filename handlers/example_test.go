package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// An app: its own routes behind the session middleware, and the /sessions
// routes mounted next to them on one ServeMux.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true}) // any Redis 7
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{Prefix: "example-handlers:"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())

	alice := uuid.New()
	auth, err := middleware.NewAuthenticator(m, middleware.Options{}) // shared by the middleware and the handlers
	if err != nil {
		log.Fatal(err)
	}
	h, err := handlers.New(auth, handlers.Options{
		Login: func(r *http.Request) (uuid.UUID, error) {
			user, pass, err := handlers.Credentials(r)
			if err != nil {
				return uuid.Nil, err
			}
			if user != "alice" || pass != "password" { // the app's real check goes here
				return uuid.Nil, handlers.ErrBadCredentials
			}
			return alice, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	app := http.NewServeMux()
	app.HandleFunc("GET /accounts", func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessionkit.FromContext(r.Context())
		fmt.Fprintf(w, "accounts of the user with %d provider(s)", len(s.ProvidersAccessed))
	})
	root := http.NewServeMux()
	root.Handle("/", auth.Middleware(app))
	h.Mount(root)

	server := httptest.NewTLSServer(root) // __Host- cookies need HTTPS
	defer server.Close()
	jar, _ := cookiejar.New(nil)
	browser := server.Client()
	browser.Jar = jar

	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, server.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v struct {
			Reason    string          `json:"reason"`
			IsCurrent bool            `json:"is_current"`
			Sessions  json.RawMessage `json:"sessions"`
			Total     int             `json:"total"`
		}
		json.Unmarshal(b, &v)
		switch {
		case len(b) == 0:
			fmt.Printf("%s %s: %d\n", method, path, resp.StatusCode)
		case strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"):
			fmt.Printf("%s %s: %d %s\n", method, path, resp.StatusCode, b)
		case v.Reason != "":
			fmt.Printf("%s %s: %d %s\n", method, path, resp.StatusCode, v.Reason)
		case v.Sessions != nil:
			fmt.Printf("%s %s: %d %d session(s)\n", method, path, resp.StatusCode, v.Total)
		default:
			fmt.Printf("%s %s: %d is_current=%v\n", method, path, resp.StatusCode, v.IsCurrent)
		}
	}
	call("GET", "/accounts", "")
	call("POST", "/sessions", `{"username":"alice","password":"wrong"}`)
	call("POST", "/sessions", `{"username":"alice","password":"password"}`)
	call("GET", "/accounts", "")
	call("GET", "/sessions", "")
	call("DELETE", "/sessions/current", "")
	call("GET", "/accounts", "")
	// Output:
	// GET /accounts: 401 no_session
	// POST /sessions: 401 invalid_credentials
	// POST /sessions: 201 is_current=true
	// GET /accounts: 200 accounts of the user with 0 provider(s)
	// GET /sessions: 200 1 session(s)
	// DELETE /sessions/current: 204
	// GET /accounts: 401 no_session
}
