package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

// sharedRedis is the redis-server most tests use, each on its own key prefix.
var sharedRedis *redistest.Server

func TestMain(m *testing.M) {
	srv, err := redistest.StartServer(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "example tests:", err)
		os.Exit(1)
	}
	sharedRedis = srv
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "example tests: stopping redis-server:", err)
	}
	os.Exit(code)
}

// testConfig is the configuration of an example on the shared Redis, on a
// key prefix of the test's own.
func testConfig(t testing.TB) config {
	// The enrichment budgets are raised: the defaults (50 ms per GeoIP
	// lookup, 100 ms per enrichment) trip under -race on a busy machine and
	// leave the locations the tests look for empty.
	return config{Addr: "127.0.0.1:0", RedisURL: "redis://" + sharedRedis.Addr() + "/0", prefix: redistest.Prefix(t), enrichBudget: time.Minute}
}

// testLogger sends warnings and errors of the example to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// lockedBuffer is an io.Writer safe for the server goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runningApp is an example server started by startApp.
type runningApp struct {
	URL    string
	stdout *lockedBuffer
}

// startApp runs the example with cfg, as main does, on a free loopback
// port; the test's cleanup shuts it down and fails the test if run does not
// return nil.
func startApp(t testing.TB, cfg config) *runningApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ra := &runningApp{URL: "http://" + ln.Addr().String(), stdout: &lockedBuffer{}}
	go func() { done <- run(ctx, cfg, ln, ra.stdout, testLogger(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after shutdown, want nil", err)
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Errorf("run did not return after shutdown")
		}
	})
	// Ready when the login page answers; run failing is reported at once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("run returned early: %v", err)
		default:
		}
		resp, err := http.Get(ra.URL + "/login")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ra
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("example not ready after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a minimal browser for the tests: it keeps cookies (sending
// Secure ones over plain HTTP, as browsers do for localhost), sends Accept:
// text/html like a navigation, and does not follow redirects by itself.
type client struct {
	t       testing.TB
	base    string
	hc      *http.Client
	cookies map[string]*http.Cookie
	header  http.Header
}

func newClient(t testing.TB, base string) *client {
	return &client{
		t:    t,
		base: base,
		hc: &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cookies: map[string]*http.Cookie{},
		header: http.Header{
			"Accept":     {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
			"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
		},
	}
}

// response is what a request answered.
type response struct {
	Status   int
	Location string
	Header   http.Header
	Body     string
	Cookies  []*http.Cookie
}

// do sends one request; form, when not nil, is the urlencoded body.
func (c *client) do(method, path string, form url.Values, extra ...string) response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header = c.header.Clone()
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	for _, ck := range c.cookies {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return response{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Header: resp.Header, Body: string(b), Cookies: resp.Cookies()}
}

func (c *client) get(path string, extra ...string) response {
	return c.do(http.MethodGet, path, nil, extra...)
}

func (c *client) post(path string, form url.Values, extra ...string) response {
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, path, form, extra...)
}

// login signs in through the login form and checks the redirect to /devices.
func (c *client) login(user string) response {
	c.t.Helper()
	r := c.post("/login", url.Values{"username": {user}, "password": {"password"}})
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/devices") {
		c.t.Fatalf("login as %s: got %d to %q, want 303 to /devices", user, r.Status, r.Location)
	}
	return r
}
