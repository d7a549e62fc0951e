package handlers_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/sessionkit/sessionkit/handlers"
	"github.com/sessionkit/sessionkit/middleware"
)

// TestRoutesUnderAPrefix mounts the routes under /api/v1: on ServeMux with
// and without http.StripPrefix, and on chi. Each serves the whole contract
// relative to the mount point, and a new session's Location keeps the
// prefix.
func TestRoutesUnderAPrefix(t *testing.T) {
	f := newFixture(t, setup{})
	f.users.ids["carol"] = operatorID
	admin, err := handlers.NewAdmin(f.auth, handlers.AdminOptions{Authorize: func(*http.Request) (string, error) { return "tester", nil }})
	if err != nil {
		t.Fatal(err)
	}
	strip := http.NewServeMux()
	strip.Handle("/api/v1/", http.StripPrefix("/api/v1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/admin/") {
			admin.ServeHTTP(w, r)
			return
		}
		f.h.ServeHTTP(w, r)
	})))
	patterns := http.NewServeMux()
	patterns.Handle("/api/v1/sessions", f.h)
	patterns.Handle("/api/v1/sessions/", f.h)
	patterns.Handle("/api/v1/admin/", admin)
	router := chi.NewRouter()
	router.Route("/api/v1", func(r chi.Router) {
		r.Mount("/sessions", f.h)
		r.Mount("/admin", admin)
	})
	for name, h := range map[string]http.Handler{"ServeMux with StripPrefix": strip, "ServeMux patterns": patterns, "chi": router} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Transport: srv.Client().Transport, Jar: jar}
			do := func(method, path, body string) (*http.Response, string) {
				t.Helper()
				req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b := new(strings.Builder)
				buf := make([]byte, 4096)
				for {
					n, err := resp.Body.Read(buf)
					b.Write(buf[:n])
					if err != nil {
						break
					}
				}
				return resp, b.String()
			}
			resp, body := do("POST", "/api/v1/sessions", `{"username":"alice","password":"password"}`)
			if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(resp.Header.Get("Location"), "/api/v1/sessions/") {
				t.Fatalf("login: got %d, Location %q (%s)", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if resp, _ := do("GET", resp.Header.Get("Location"), ""); resp.StatusCode != http.StatusOK {
				t.Errorf("GET the Location: got %d", resp.StatusCode)
			}
			if resp, _ := do("GET", "/api/v1/sessions/current", ""); resp.StatusCode != http.StatusOK {
				t.Errorf("current: got %d", resp.StatusCode)
			}
			if resp, body := do("GET", "/api/v1/sessions/nope", ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, middleware.ReasonInvalidID) {
				t.Errorf("a malformed id: got %d %s", resp.StatusCode, body)
			}
			if resp, _ := do("GET", "/api/v1/admin/users/"+f.alice.String()+"/sessions", ""); resp.StatusCode != http.StatusOK {
				t.Errorf("admin list: got %d", resp.StatusCode)
			}
			if resp, _ := do("DELETE", "/api/v1/sessions/current", ""); resp.StatusCode != http.StatusNoContent {
				t.Errorf("sign out: got %d", resp.StatusCode)
			}
			if resp, _ := do("GET", "/api/v1/sessions/current", ""); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("after signing out: got %d, want 401", resp.StatusCode)
			}
		})
	}
}

// TestLocationUnderStripPrefixAbsoluteForm sends the login with an
// absolute-form request line ("POST http://host/api/v1/sessions HTTP/1.1",
// which net/http accepts) to routes behind http.StripPrefix: the new
// session's Location keeps the prefix, as with the origin form. Also with
// a percent-encoded prefix, which the Location keeps escaped.
func TestLocationUnderStripPrefixAbsoluteForm(t *testing.T) {
	f := newFixture(t, setup{})
	for _, prefix := range []string{"/api/v1", "/api%20v1"} {
		stripped, _ := url.PathUnescape(prefix)
		srv := httptest.NewServer(http.StripPrefix(stripped, f.h))
		for form, target := range map[string]string{"absolute-form": srv.URL + prefix + "/sessions", "origin-form": prefix + "/sessions"} {
			t.Run(form+" "+prefix, func(t *testing.T) {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				body := `{"username":"alice","password":"password"}`
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
					target, srv.Listener.Addr(), len(body), body)
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, prefix+"/sessions/") {
					t.Errorf("got %d, Location %q; want 201 and a Location under %s/sessions/", resp.StatusCode, loc, prefix)
				}
			})
		}
		srv.Close()
	}
}

// TestLocationUnderAnEscapedPrefixNotStripped mounts the routes under a
// percent-encoded prefix on a router that leaves it in the path (ServeMux
// patterns): the new session's Location keeps the prefix escaped, as sent.
func TestLocationUnderAnEscapedPrefixNotStripped(t *testing.T) {
	f := newFixture(t, setup{})
	mux := http.NewServeMux()
	mux.Handle("/api%20v1/sessions", f.h)
	mux.Handle("/api%20v1/sessions/", f.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api%20v1/sessions", strings.NewReader(`{"username":"alice","password":"password"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, "/api%20v1/sessions/") {
		t.Fatalf("got %d, Location %q; want 201 and a Location under /api%%20v1/sessions/", resp.StatusCode, loc)
	}
	ck := resp.Cookies()
	get, _ := http.NewRequest("GET", srv.URL+loc, nil)
	for _, c := range ck {
		get.AddCookie(c)
	}
	if resp, err := srv.Client().Do(get); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET the Location: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
