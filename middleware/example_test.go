package middleware_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/middleware"
	"github.com/sessionkit/sessionkit/store"
)

// Wrap an app's ServeMux: every route then sees the session, and a route
// group records which provider it reaches.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true}) // any Redis 7
	defer rdb.Close()
	st, err := store.NewRedis(rdb, store.Options{Prefix: "example-mw:"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessionkit.FromContext(r.Context())
		fmt.Fprintf(w, "signed in; providers so far: %v", s.ProvidersAccessed)
	})
	mux.Handle("GET /providers/{name}/accounts", middleware.RecordProviderFromPath("name", middleware.ProviderOptions{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "[]") })))

	mw, err := middleware.New(m, middleware.Options{})
	if err != nil {
		log.Fatal(err)
	}
	app := httptest.NewServer(mw(mux))
	defer app.Close()

	// A session as the login handler would create it (see package handlers).
	res, err := m.CreateSession(context.Background(), sessionkit.CreateSession{
		UserID: uuid.New(), IPAddress: "127.0.0.1",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	})
	if err != nil {
		log.Fatal(err)
	}
	get := func(path, token string) {
		req, _ := http.NewRequest("GET", app.URL+path, nil)
		if token != "" {
			req.AddCookie(&http.Cookie{Name: middleware.DefaultCookieName, Value: token})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %d %s\n", path, resp.StatusCode, body)
	}
	get("/me", res.Token)
	get("/providers/schwab/accounts", res.Token)
	get("/me", "")

	s, _ := m.Session(context.Background(), res.Session.ID)
	fmt.Println("providers:", s.ProvidersAccessed)
	// Output:
	// /me 200 signed in; providers so far: []
	// /providers/schwab/accounts 200 []
	// /me 401 {"type":"urn:sessionkit:problem:no_session","title":"Not signed in","status":401,"detail":"The request carries no valid session.","reason":"no_session"}
	//
	// providers: [schwab]
}
