package sessionkit_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// TestQuerySpans runs each read-only query once and checks that it
// records a span of its own, named like a command's, with the store round
// trip it made as its child; and that a refusal ends it with status unset
// (outcome refused), not error status.
func TestQuerySpans(t *testing.T) {
	ctx := t.Context()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr}, sessionkit.WithTracerProvider(tp),
		sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
			SigningKeys: []crypto.Signer{key}, Issuer: "https://api.example.test",
		}))
	user := uuid.New()
	login, err := f.M.CreateSession(ctx, sessionkit.CreateSession{
		UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac, Bearer: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := login.Session.ID

	queries := []struct {
		span, store string // the query's span and its store call's
		run         func() error
	}{
		{"sessionkit.Session", "sessionkit.store.Get", func() error {
			_, err := f.M.Session(ctx, id)
			return err
		}},
		{"sessionkit.UserSession", "sessionkit.store.Get", func() error {
			_, err := f.M.UserSession(ctx, user, id)
			return err
		}},
		{"sessionkit.ListUserSessions", "sessionkit.store.List", func() error {
			_, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
			return err
		}},
		{"sessionkit.Events", "sessionkit.store.Events", func() error {
			_, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
			return err
		}},
		{"sessionkit.SessionData", "sessionkit.store.ReadData", func() error {
			_, _, err := f.M.SessionData(ctx, id, "flash")
			return err
		}},
		{"sessionkit.PutSessionData", "sessionkit.store.UpdateData", func() error {
			return f.M.PutSessionData(ctx, id, "flash", "saved")
		}},
		{"sessionkit.DeleteSessionData", "sessionkit.store.UpdateData", func() error {
			return f.M.DeleteSessionData(ctx, id, "flash")
		}},
		{"sessionkit.UserLimit", "sessionkit.store.Limit", func() error {
			_, err := f.M.UserLimit(ctx, user)
			return err
		}},
		{"sessionkit.SessionByRefreshToken", "sessionkit.store.Peek", func() error {
			_, err := f.M.SessionByRefreshToken(ctx, login.Tokens.RefreshToken)
			return err
		}},
	}
	for _, q := range queries {
		t.Run(q.span, func(t *testing.T) {
			spans.Reset()
			if err := q.run(); err != nil {
				t.Fatal(err)
			}
			var query, store []sdktrace.ReadOnlySpan
			for _, s := range spans.Ended() {
				switch s.Name() {
				case q.span:
					query = append(query, s)
				case q.store:
					store = append(store, s)
				}
			}
			if len(query) != 1 {
				t.Fatalf("%s spans: got %d, want 1 (all: %v)", q.span, len(query), names(spans.Ended()))
			}
			if c := query[0].Status().Code; c != codes.Unset {
				t.Errorf("%s status: got %v, want unset", q.span, c)
			}
			if len(store) != 1 || store[0].Parent().SpanID() != query[0].SpanContext().SpanID() {
				t.Errorf("%s: got %v, want one %s span as its child", q.span, names(spans.Ended()), q.store)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		spans.Reset()
		if _, err := f.M.UserSession(ctx, uuid.New(), id); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatalf("another user's session: got %v, want ErrNotFound", err)
		}
		ended := spans.Ended()
		if n := count(ended, "sessionkit.UserSession"); n != 1 {
			t.Fatalf("sessionkit.UserSession spans: got %d, want 1 (all: %v)", n, names(ended))
		}
		if n := count(ended, "sessionkit.Session"); n != 0 {
			t.Errorf("sessionkit.Session spans under UserSession: got %d, want 0 (one span per call)", n)
		}
		for _, s := range ended {
			if s.Name() == "sessionkit.UserSession" && s.Status().Code != codes.Unset {
				t.Errorf("sessionkit.UserSession status: got %v, want unset (a refusal is no failure)", s.Status().Code)
			}
		}
	})
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}

// TestRefusalSpanStatus: a refusal (a revoked session, a wrong token,
// another user's session) is an answer, not a failure: its span keeps the
// outcome and reason and leaves the status unset, so that an error-rate
// alert does not fire on stale cookies, and the app's revocation reason
// does not reach the trace as error text. A store failure has error status.
func TestRefusalSpanStatus(t *testing.T) {
	ctx := t.Context()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	f := sessiontest.New(t, sessiontest.Options{Addr: redisAddr}, sessionkit.WithTracerProvider(tp))
	user := uuid.New()
	l := f.Login(t, user)
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: l.Session.ID, UserID: user, Reason: "stolen laptop of alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	spans.Reset()
	rctx, req := tp.Tracer("test").Start(ctx, "GET /")
	if _, err := f.M.Authenticate(rctx, l.Token, netip.Addr{}); !errors.Is(err, sessionkit.ErrRevoked) {
		t.Fatalf("a revoked session: %v", err)
	}
	if _, err := f.M.Authenticate(rctx, "not a token", netip.Addr{}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("a wrong token: %v", err)
	}
	req.End()
	if _, err := f.M.UserSession(ctx, uuid.New(), l.Session.ID); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("another user's session: %v", err)
	}
	for _, s := range spans.Ended() {
		if s.Status().Code != codes.Unset {
			t.Errorf("span %s of a refusal: status %v %q, want unset", s.Name(), s.Status().Code, s.Status().Description)
		}
	}

	down := sessiontest.New(t, sessiontest.Options{Addr: "127.0.0.1:1"}, sessionkit.WithTracerProvider(tp))
	spans.Reset()
	if _, err := down.M.Session(ctx, l.Session.ID); !errors.Is(err, sessionkit.ErrUnavailable) {
		t.Fatalf("Redis down: %v", err)
	}
	for _, s := range spans.Ended() {
		if s.Status().Code != codes.Error {
			t.Errorf("span %s of a store failure: status %v, want error", s.Name(), s.Status().Code)
		}
	}
}
