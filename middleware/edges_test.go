package middleware_test

// HTTP edge cases: the writer the app's handler gets behind the
// middleware, streaming, hijacking, panics, HEAD/OPTIONS, cookie and
// bearer edge cases, caching headers.

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/logtest"
	"github.com/sessionkit/sessionkit/middleware"
)

// The middleware does not wrap the ResponseWriter: every optional
// interface of the server's writer reaches the handler, and an SSE stream
// is flushed event by event.
func TestWriterCapabilitiesBehindMiddleware(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	a := f.auth(t, middleware.Options{})
	got := make(chan string, 8)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/caps", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, fl := w.(http.Flusher)
		_, hj := w.(http.Hijacker)
		_, rf := w.(io.ReaderFrom)
		rc := http.NewResponseController(w)
		dl := rc.SetWriteDeadline(time.Now().Add(time.Minute))
		fd := rc.EnableFullDuplex()
		got <- strings.Join([]string{yes(fl), yes(hj), yes(rf), okOr(dl), okOr(fd)}, ",")
	})))
	mux.Handle("/sse", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "data: one\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		<-release
		io.WriteString(w, "data: two\n\n")
	})))
	mux.Handle("/ws", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
		brw.Flush()
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ck := &http.Cookie{Name: middleware.DefaultCookieName, Value: tok}

	req, _ := http.NewRequest("GET", srv.URL+"/caps", nil)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := <-got; c != "true,true,true,ok,ok" {
		t.Errorf("Flusher,Hijacker,ReaderFrom,SetWriteDeadline,EnableFullDuplex: got %s", c)
	}

	req, _ = http.NewRequest("GET", srv.URL+"/sse", nil)
	req.AddCookie(ck)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Errorf("first SSE event before the handler returned: got %q, %v", line, err)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Vary") != "Cookie" {
		t.Errorf("SSE headers: %v", resp.Header)
	}
	close(release)
	resp.Body.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: "+ck.String()+"\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(all, []byte("HTTP/1.1 101")) || !bytes.HasSuffix(all, []byte("hello")) {
		t.Errorf("upgrade: got %q", all)
	}
}

func yes(v bool) string {
	if v {
		return "true"
	}
	return "false"
}

func okOr(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// A panic in the handler is not recovered by the middleware: net/http
// aborts the connection, so the client never mistakes a half-written
// response for a complete one, and neither the server's panic log nor the
// Manager's logger carries the token.
func TestPanicBehindMiddleware(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	a := f.auth(t, middleware.Options{})
	var serverLog logtest.Buffer
	srv := httptest.NewUnstartedServer(a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessionkit.FromContext(r.Context())
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		panic("boom in handler of session " + s.ID.String())
	})))
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: middleware.DefaultCookieName, Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a panicking handler's truncated response read as complete")
	}
	time.Sleep(50 * time.Millisecond)
	secret := tok[strings.IndexByte(tok, '.')+1:]
	if strings.Contains(serverLog.String(), secret) {
		t.Errorf("server log carries the token's secret: %s", serverLog.String())
	}
	if !strings.Contains(serverLog.String(), "boom") {
		t.Errorf("panic swallowed: server log %q", serverLog.String())
	}
}

// HEAD on a protected route behaves as GET (401 without session, 200 with,
// same caching headers); OPTIONS (a CORS preflight, which never carries
// credentials) is refused by the middleware like any request without a
// session.
func TestHeadAndOptionsOnProtectedRoute(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	a := f.auth(t, middleware.Options{AllowBearer: true})
	var s seen
	h := a.Middleware(probe(&s))
	for _, tc := range []struct {
		method, cookie string
		want           int
	}{
		{"HEAD", "", 401}, {"HEAD", tok, 200}, {"OPTIONS", "", 401},
	} {
		r := httptest.NewRequest(tc.method, "/accounts", nil)
		if tc.cookie != "" {
			r.Header.Set("Cookie", cookie+tc.cookie)
		}
		r.Header.Set("Origin", "https://spa.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("%s cookie=%v: got %d, want %d", tc.method, tc.cookie != "", rec.Code, tc.want)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Vary") != "Cookie, Authorization" {
			t.Errorf("%s: caching headers %v", tc.method, rec.Header())
		}
	}
}

// Cookie and Authorization edge cases beyond the existing tables.
func TestTokenEdgeCases(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	other := f.Login(t, uuid.New()).Token
	a := f.auth(t, middleware.Options{AllowBearer: true})
	cases := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"quoted cookie", http.Header{"Cookie": {cookie + `"` + tok + `"`}}, 200},
		{"name with trailing space (net/http trims it)", http.Header{"Cookie": {middleware.DefaultCookieName + " =" + tok}}, 401},
		{"cookie and same-name with trailing space", http.Header{"Cookie": {cookie + tok + "; " + middleware.DefaultCookieName + " =" + other}}, 200},
		{"lower-case prefix cookie is another cookie", http.Header{"Cookie": {"__host-session=" + other + "; " + cookie + tok}}, 200},
		{"1 MB cookie header", http.Header{"Cookie": {strings.Repeat("a=b; ", 200000) + cookie + tok}}, 200},
		{"Bearer with tab", http.Header{"Authorization": {"Bearer\t" + tok}}, 401},
		{"BEARER upper", http.Header{"Authorization": {"BEARER " + tok}}, 200},
		{"Bearer no token, cookie", http.Header{"Cookie": {cookie + tok}, "Authorization": {"Bearer"}}, 200},
		{"Bearer empty token, cookie", http.Header{"Cookie": {cookie + tok}, "Authorization": {"Bearer "}}, 401},
		{"Bearer trailing spaces", http.Header{"Authorization": {"Bearer " + tok + "   "}}, 200},
		{"Bearer token68 with comma", http.Header{"Authorization": {"Bearer " + tok + ", Basic x"}}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveHeader(a, tc.header)
			if rec.Code != tc.want {
				t.Errorf("got %d, want %d", rec.Code, tc.want)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Vary") != "Cookie, Authorization" {
				t.Errorf("caching headers %v", rec.Header())
			}
		})
	}
}

// 304 from http.ServeContent behind the middleware keeps no-store and Vary.
func TestNotModifiedKeepsSessionHeaders(t *testing.T) {
	f := newFixture(t)
	tok := f.Login(t, uuid.New()).Token
	a := f.auth(t, middleware.Options{})
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "x.json", time.Time{}, strings.NewReader(`{"balance":1}`))
	}))
	r := request(cookie+tok, "203.0.113.7:1")
	r.Header.Set("If-None-Match", `"v1"`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 304 || rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Vary") != "Cookie" {
		t.Errorf("got %d %v", rec.Code, rec.Header())
	}
}
