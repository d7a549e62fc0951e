package faulttest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// reqTimeout is the deadline every call gets, as an app's request context
// would give it (SECURITY-NOTES 20: at least one second; generous, because
// the machine running the tests is shared and noisy).
const reqTimeout = 5 * time.Second

// The client every test session logs in from.
const (
	testUA = sessiontest.ChromeMac
	testIP = sessiontest.LoginIP
)

var testAddr = netip.MustParseAddr(testIP)

// shared holds the servers started on first use and stopped by TestMain:
// one standalone node and one three-master Cluster, for the tests that do
// not break them. Tests that kill, slow down or fill a server start their own.
var shared struct {
	mu      sync.Mutex
	srv     *redistest.Server
	cluster *redistest.Cluster
}

func TestMain(m *testing.M) {
	// go-redis logs dial failures while a fault is on; keep its lines for the
	// security test, which checks that none carries a token.
	redis.SetLogger(&redisLog)
	code := m.Run()
	// The last word on the promise that no token reaches a log line: every
	// secret the tests were given, against every line logged by any test.
	if leaks := leakedSecrets(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d token secrets issued to the tests appear in log lines\n", len(leaks))
		code = 1
	}
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// secrets tracks, for the log check, the secret of every token the tests
// were given and every string in a log line that has a secret's shape (43
// base64url characters). A secret never needs to be in both.
var secrets struct {
	mu     sync.Mutex
	issued map[string]bool
	logged map[string]bool
}

// secretShape matches runs of the secret alphabet long enough to hold one.
var secretShape = regexp.MustCompile(`[A-Za-z0-9_-]{43,}`)

// noteToken records the secret of a token a test was given.
func noteToken(tok string) {
	if _, secret, ok := strings.Cut(tok, "."); ok {
		noteSecret(secret)
	}
}

// noteTokens records the secrets of a bearer token pair a test was given:
// the refresh token's family and secret, and the first 43 characters of
// the access token's signature (a line holding the signature holds them).
func noteTokens(access, refresh string) {
	if parts := strings.Split(refresh, "."); len(parts) >= 3 {
		for _, p := range parts[2:] {
			noteSecret(p)
		}
	}
	if parts := strings.Split(access, "."); len(parts) == 3 && len(parts[2]) >= 43 {
		noteSecret(parts[2][:43])
	}
}

// noteSecret records one secret, of 43 characters, for the log check.
func noteSecret(secret string) {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	if secrets.issued == nil {
		secrets.issued = map[string]bool{}
	}
	secrets.issued[secret] = true
}

// noteLogged records every 43-character window of the secret-shaped runs
// of a log line, up to a million in all.
func noteLogged(line string) {
	runs := secretShape.FindAllString(line, -1)
	if len(runs) == 0 {
		return
	}
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	if secrets.logged == nil {
		secrets.logged = map[string]bool{}
	}
	for _, run := range runs {
		for i := 0; i+43 <= len(run) && len(secrets.logged) < 1<<20; i++ {
			secrets.logged[run[i:i+43]] = true
		}
	}
}

// leakedSecrets returns how many issued secrets appear in logged lines.
func leakedSecrets() []string {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	var out []string
	for s := range secrets.logged {
		if secrets.issued[s] {
			out = append(out, s)
		}
	}
	return out
}

// redisLog keeps what go-redis logs during the package's tests; appLog
// what sessionkit logs through every fixture's Manager (and the HTTP
// layers' loggers in the security test).
var redisLog, appLog logLines

// appLogger writes to appLog.
var appLogger = slog.New(slog.NewTextHandler(&appLog, &slog.HandlerOptions{Level: slog.LevelDebug}))

// logLines is a go-redis logger that keeps the last 10,000 lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
	total int
}

// Printf implements go-redis's logger interface.
func (l *logLines) Printf(_ context.Context, format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if len(l.lines) == 10000 {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, line)
	noteLogged(line)
}

// Write implements io.Writer for a slog handler: each call is one record.
func (l *logLines) Write(p []byte) (int, error) {
	l.Printf(context.Background(), "%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// snapshot returns the lines kept and how many were logged in all.
func (l *logLines) snapshot() ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), l.total
}

// sharedServer returns the package's standalone server, starting it on first use.
func sharedServer(tb testing.TB) *redistest.Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		srv, err := redistest.StartServer(redistest.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		shared.srv = srv
	}
	return shared.srv
}

// sharedCluster returns the package's three-master Cluster, starting it on first use.
func sharedCluster(tb testing.TB) *redistest.Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil {
		c, err := redistest.StartCluster(redistest.ClusterOptions{Masters: 3})
		if err != nil {
			tb.Fatal(err)
		}
		shared.cluster = c
	}
	return shared.cluster
}

// fixture is a Manager on the real time over a Redis store on its own key
// prefix (sessiontest), logging to appLog, with the calls the tests make
// within reqTimeout.
type fixture struct{ *sessiontest.Fixture }

func newFixture(tb testing.TB, rdb redis.UniversalClient, opts ...sessionkit.Option) *fixture {
	tb.Helper()
	return &fixture{sessiontest.New(tb, sessiontest.Options{Client: rdb, RealTime: true}, withAppLogger(opts)...)}
}

// withAppLogger puts the logger to appLog before opts.
func withAppLogger(opts []sessionkit.Option) []sessionkit.Option {
	return append([]sessionkit.Option{sessionkit.WithLogger(appLogger)}, opts...)
}

// login creates a session for user from the test client, within reqTimeout.
func (f *fixture) login(user uuid.UUID) (sessionkit.CreateSessionResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: testIP, UserAgent: testUA})
	if err == nil {
		noteToken(res.Token)
	}
	return res, err
}

// mustLogin is login that fails the test on error.
func (f *fixture) mustLogin(tb testing.TB, user uuid.UUID) sessionkit.CreateSessionResult {
	tb.Helper()
	res, err := f.login(user)
	if err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return res
}

// auth runs the middleware's hot path for tok from the test address, within reqTimeout.
func (f *fixture) auth(tok string) error {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	_, err := f.M.Authenticate(ctx, tok, testAddr)
	return err
}

// revoke revokes one session of user, within reqTimeout.
func (f *fixture) revoke(user, id uuid.UUID) error {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user, Reason: sessionkit.ReasonUserRevoked})
	return err
}

// kind names the class of a Manager error, for counting and for asserting
// which classes may occur.
func kind(err error) string {
	var re *sessionkit.RevokedError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, sessionkit.ErrUnavailable):
		return "unavailable"
	case errors.As(err, &re):
		return "revoked"
	case errors.Is(err, sessionkit.ErrRevoked):
		return "revoked"
	case errors.Is(err, sessionkit.ErrNotFound):
		return "not_found"
	case errors.Is(err, sessionkit.ErrExpired):
		return "expired"
	case errors.Is(err, sessionkit.ErrIdle):
		return "idle"
	case errors.Is(err, sessionkit.ErrInvalid):
		return "invalid"
	}
	return "other"
}
