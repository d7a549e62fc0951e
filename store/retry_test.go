package store_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// lossyFixture is a Manager whose client (go-redis's default retries, as
// docs/storage.md configures it) reaches Redis through a proxy that can
// lose a reply, and a channel of the events its hooks receive.
func lossyFixture(t *testing.T, opts ...sessionkit.Option) (*redistest.Proxy, *sessiontest.Fixture, <-chan sessionkit.Event) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	p := redistest.NewProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	events := make(chan sessionkit.Event, 64)
	opts = append(opts, sessionkit.WithHook(func(_ context.Context, e sessionkit.Event) { events <- e }))
	f := sessiontest.New(t, sessiontest.Options{Client: c, Store: store.Options{NoAutoPipeline: true}}, opts...)
	return p, f, events
}

// nextEvents waits for n events from a hook.
func nextEvents(t *testing.T, events <-chan sessionkit.Event, n int) []sessionkit.Event {
	t.Helper()
	var got []sessionkit.Event
	for len(got) < n {
		select {
		case e := <-events:
			got = append(got, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("hooks got %d events, want %d: %+v", len(got), n, got)
		}
	}
	return got
}

// signInLosingReply signs user in while the proxy loses the sign-in
// script's reply, so go-redis runs the script a second time.
func signInLosingReply(t *testing.T, p *redistest.Proxy, f *sessiontest.Fixture, user uuid.UUID) sessionkit.CreateSessionResult {
	t.Helper()
	before := p.Dropped()
	p.DropNextReply("evalsha")
	res, err := f.M.CreateSession(t.Context(), sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac})
	if n := p.Dropped() - before; n != 1 {
		t.Fatalf("the proxy lost %d replies, want 1", n)
	}
	if err != nil {
		t.Fatalf("a sign-in whose reply was lost once: %v", err)
	}
	return res
}

// TestRetriedSignInIsOneSession: a sign-in script whose reply is lost is
// run again by go-redis. The second run finds the session the first
// stored, and answers as the first would have. Before, it answered that
// the id was in use (or, under RejectNew, that the user was at the limit
// the first run had filled): the Manager minted another session, or
// refused the user, and the first, whose token no one holds, stayed active
// for its lifetime, counting toward the limit.
func TestRetriedSignInIsOneSession(t *testing.T) {
	ctx := t.Context()
	p, f, events := lossyFixture(t,
		sessionkit.WithLimit(sessionkit.FixedLimit(2)),
		sessionkit.WithLimitPolicy(func(context.Context, uuid.UUID) (sessionkit.LimitPolicy, error) { return sessionkit.RejectNew, nil }))
	user := uuid.New()
	f.Login(t, user) // one of two; the script is loaded
	nextEvents(t, events, 1)
	res := signInLosingReply(t, p, f, user)
	list, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{})
	if err != nil || len(list) != 2 {
		t.Fatalf("active sessions: %d %v, want 2", len(list), err)
	}
	if _, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
		t.Errorf("the token the retried sign-in gave: %v", err)
	}
	got := nextEvents(t, events, 1)[0]
	trail, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
	if err != nil || len(trail) != 2 {
		t.Fatalf("trail: %d entries %v, want 2", len(trail), err)
	}
	if got.Type != sessionkit.EventCreated || got.SessionID != res.Session.ID || got.ID == "" || got.ID != trail[0].ID {
		t.Errorf("the hooks' event: %+v, want the creation the trail holds, %+v", got, trail[0])
	}

	// A user's first sign-in (whose trail is one entry, kept as a string).
	newcomer := uuid.New()
	res = signInLosingReply(t, p, f, newcomer)
	if list, err := f.M.ListUserSessions(ctx, newcomer, sessionkit.ListOptions{}); err != nil || len(list) != 1 || list[0].ID != res.Session.ID {
		t.Errorf("a first sign-in retried: sessions %+v %v, want the one it returned", list, err)
	}
	got = nextEvents(t, events, 1)[0]
	if trail, err := f.M.Events(ctx, newcomer, sessionkit.EventQuery{}); err != nil || len(trail) != 1 || got.ID != trail[0].ID {
		t.Errorf("a first sign-in retried: trail %+v %v, hooks' event %+v", trail, err, got)
	}
	f.CheckTTLs(t)
}

// TestRetriedSignInEvictsOnce: a retried sign-in at the limit reports the
// evictions the first run made, with the trail's ids, and evicts nothing
// more.
func TestRetriedSignInEvictsOnce(t *testing.T) {
	ctx := t.Context()
	p, f, events := lossyFixture(t, sessionkit.WithLimit(sessionkit.FixedLimit(2)))
	user := uuid.New()
	first := f.Login(t, user)
	f.Clock.Advance(time.Second) // the first expires first: the limit evicts it
	second := f.Login(t, user)
	nextEvents(t, events, 2)
	res := signInLosingReply(t, p, f, user)
	if len(res.Evicted) != 1 || res.Evicted[0] != first.Session.ID {
		t.Errorf("evicted: %v, want the first session, %v", res.Evicted, first.Session.ID)
	}
	list, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{})
	if err != nil || len(list) != 2 {
		t.Fatalf("active sessions: %d %v, want 2", len(list), err)
	}
	for _, s := range list {
		if s.ID != second.Session.ID && s.ID != res.Session.ID {
			t.Errorf("active session %v: neither the second nor the new one", s.ID)
		}
	}
	got := nextEvents(t, events, 2)
	trail, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
	if err != nil || len(trail) != 4 {
		t.Fatalf("trail: %d entries %v, want 4", len(trail), err)
	}
	// The trail is newest first: the creation, then the eviction.
	if got[0].Type != sessionkit.EventEvicted || got[0].SessionID != first.Session.ID || got[0].ID != trail[1].ID {
		t.Errorf("the hooks' first event: %+v, want the eviction the trail holds, %+v", got[0], trail[1])
	}
	if got[1].Type != sessionkit.EventCreated || got[1].ID != trail[0].ID {
		t.Errorf("the hooks' second event: %+v, want the creation the trail holds, %+v", got[1], trail[0])
	}
}

// TestRetriedRevocationsAnswerAsDone: a revocation, or a sign-out
// everywhere, whose reply is lost is run again by go-redis. The second run
// finds the sessions revoked and answers as the first run did. Before, it
// answered that the session was not found (DELETE /sessions/{id}: 404
// although it was revoked), or that none was revoked, and the hooks never
// heard of the revocations.
func TestRetriedRevocationsAnswerAsDone(t *testing.T) {
	ctx := t.Context()
	p, f, events := lossyFixture(t)
	// Load the scripts: a lost NOSCRIPT reply is no second run.
	warm := f.Login(t, uuid.New())
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: warm.Session.ID, UserID: warm.Session.UserID, Reason: "user_revoked"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: warm.Session.UserID, Reason: "logout_all"}); err != nil {
		t.Fatal(err)
	}
	nextEvents(t, events, 2)
	user := uuid.New()
	keep, one := f.Login(t, user), f.Login(t, user)
	nextEvents(t, events, 2)
	f.Clock.Advance(time.Second)
	losing := func(what string, call func() error) {
		t.Helper()
		before := p.Dropped()
		p.DropNextReply("evalsha")
		if err := call(); err != nil {
			t.Fatalf("%s whose reply was lost once: %v", what, err)
		}
		if n := p.Dropped() - before; n != 1 {
			t.Fatalf("%s: the proxy lost %d replies, want 1", what, n)
		}
	}
	losing("RevokeSession", func() error {
		_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: one.Session.ID, UserID: user, Reason: "user_revoked"})
		return err
	})
	got := nextEvents(t, events, 1)[0]
	trail, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
	if err != nil || len(trail) != 3 || got.Type != sessionkit.EventRevoked || got.SessionID != one.Session.ID || got.ID != trail[0].ID {
		t.Errorf("the hooks' event %+v, the trail %+v %v: want the revocation, once", got, trail, err)
	}

	f.Clock.Advance(time.Second)
	two, three := f.Login(t, user), f.Login(t, user)
	nextEvents(t, events, 2)
	var out sessionkit.RevokeAllUserSessionsResult
	losing("RevokeAllUserSessions", func() (err error) {
		out, err = f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_all", ExceptSessionID: keep.Session.ID})
		return err
	})
	if out.Revoked != 2 {
		t.Errorf("RevokeAllUserSessions: revoked %d, want 2", out.Revoked)
	}
	revoked := map[uuid.UUID]bool{}
	for _, e := range nextEvents(t, events, 2) {
		revoked[e.SessionID] = e.Type == sessionkit.EventRevoked && e.ID != ""
	}
	if !revoked[two.Session.ID] || !revoked[three.Session.ID] {
		t.Errorf("the hooks' events: %v, want the revocations of %v and %v", revoked, two.Session.ID, three.Session.ID)
	}
	if _, err := f.M.Authenticate(ctx, keep.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
		t.Errorf("the session kept: %v", err)
	}

	// Another call, later, is told the truth: nothing of it was there.
	f.Clock.Advance(time.Millisecond)
	if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: one.Session.ID, UserID: user, Reason: "user_revoked"}); err == nil {
		t.Error("revoking a revoked session again: no error, want ErrNotFound")
	}
}

// TestRevocationsInOneMillisecondAreTwoCalls: two calls are told apart
// from one call run twice, however close together they come: the second
// of two sign-outs everywhere in one millisecond (the fixture's clock does
// not move) revokes nothing, and the second of two revocations of one
// session finds it revoked.
func TestRevocationsInOneMillisecondAreTwoCalls(t *testing.T) {
	ctx := t.Context()
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client})
	user := uuid.New()
	f.Login(t, user)
	f.Login(t, user)
	all := sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_all"}
	if out, err := f.M.RevokeAllUserSessions(ctx, all); err != nil || out.Revoked != 2 {
		t.Fatalf("the first sign-out everywhere: %+v %v, want 2 revoked", out, err)
	}
	if out, err := f.M.RevokeAllUserSessions(ctx, all); err != nil || out.Revoked != 0 {
		t.Errorf("the second, in the same millisecond: %+v %v, want none revoked", out, err)
	}
	b := f.Login(t, user)
	one := sessionkit.RevokeSession{SessionID: b.Session.ID, UserID: user, Reason: "user_revoked"}
	if _, err := f.M.RevokeSession(ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.RevokeSession(ctx, one); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Errorf("the second revocation, in the same millisecond: %v, want ErrNotFound", err)
	}
}

// resendHook runs an armed EVALSHA twice with the very same arguments, as
// go-redis does when the first reply is lost, and between the two runs
// calls between (another request served meanwhile).
type resendHook struct {
	armed   atomic.Bool
	between func()
}

func (h *resendHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *resendHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *resendHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "evalsha" || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmd)
		}
		_ = next(ctx, cmd) // the first run, whose reply is lost
		if h.between != nil {
			h.between()
		}
		return next(ctx, cmd) // the second
	}
}

// resendFixture is a Manager whose client can run a script twice for one
// call (resendHook), with its scripts loaded (a first run answered
// NOSCRIPT ran nothing), and a channel of what its hooks receive.
func resendFixture(t *testing.T, opts ...sessionkit.Option) (*resendHook, *sessiontest.Fixture, <-chan sessionkit.Event) {
	t.Helper()
	c := backends[0].NewClient(t).(*redis.Client)
	h := &resendHook{}
	c.AddHook(h)
	events := make(chan sessionkit.Event, 256)
	opts = append(opts, sessionkit.WithHook(func(_ context.Context, e sessionkit.Event) { events <- e }))
	f := sessiontest.New(t, sessiontest.Options{Client: c}, opts...)
	warm := f.Login(t, uuid.New())
	if _, err := f.M.RevokeAllUserSessions(t.Context(), sessionkit.RevokeAllUserSessions{UserID: warm.Session.UserID, Reason: "logout_all"}); err != nil {
		t.Fatal(err)
	}
	nextEvents(t, events, 2)
	return h, f, events
}

// TestRetriedRevokeAllAfterASignIn: the first run of a sign-out everywhere
// revokes a and b, its reply is lost, and the user signs in on c before
// the second run. The second answers as the first did, and leaves c alone.
// Before, it found c to revoke, revoked it, and answered that alone.
func TestRetriedRevokeAllAfterASignIn(t *testing.T) {
	h, f, events := resendFixture(t)
	ctx := t.Context()
	user := uuid.New()
	keep := f.Login(t, user)
	a, b := f.Login(t, user), f.Login(t, user)
	nextEvents(t, events, 3)
	var c sessionkit.CreateSessionResult
	h.between = func() { f.Clock.Advance(time.Millisecond); c = f.Login(t, user) }
	h.armed.Store(true)
	out, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_all", ExceptSessionID: keep.Session.ID})
	if err != nil || out.Revoked != 2 || !slices.Contains(out.SessionIDs, a.Session.ID) || !slices.Contains(out.SessionIDs, b.Session.ID) {
		t.Errorf("the second run: %+v %v, want a and b revoked", out, err)
	}
	heard := map[uuid.UUID]sessionkit.EventType{}
	for _, e := range nextEvents(t, events, 3) { // c's sign-in, then the two revocations
		heard[e.SessionID] = e.Type
	}
	if heard[a.Session.ID] != sessionkit.EventRevoked || heard[b.Session.ID] != sessionkit.EventRevoked || heard[c.Session.ID] != sessionkit.EventCreated {
		t.Errorf("hooks heard %v, want a and b revoked, c created", heard)
	}
	if _, err := f.M.Authenticate(ctx, c.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
		t.Errorf("c, signed in after the call: %v, want it active", err)
	}
}

// TestRetriedRevokeAllOfManySessions: the second run finds every
// revocation of the first in the trail, however many.
func TestRetriedRevokeAllOfManySessions(t *testing.T) {
	h, f, events := resendFixture(t, sessionkit.WithLimit(sessionkit.FixedLimit(100)))
	user := uuid.New()
	for range 70 {
		f.Login(t, user)
	}
	nextEvents(t, events, 70)
	h.armed.Store(true)
	if out, err := f.M.RevokeAllUserSessions(t.Context(), sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_all"}); err != nil || out.Revoked != 70 {
		t.Errorf("the second run of a sign-out everywhere of 70 sessions: %d revoked, %v; want 70", out.Revoked, err)
	}
}

// TestRevokeAllWithAnOddTrail: a sign-out everywhere looks for a first run
// of itself in the trail, and a trail written by hand (an empty entry, a
// key of another type), which the scripts otherwise replace, does not make
// it fail.
func TestRevokeAllWithAnOddTrail(t *testing.T) {
	for _, odd := range []string{"empty entry", "hash"} {
		t.Run(odd, func(t *testing.T) {
			ctx := t.Context()
			f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client})
			user := uuid.New()
			only := f.Login(t, user)
			f.Login(t, user)
			f.Login(t, user) // a trail of more than one entry: a list
			trail := f.KeyNames(t).ForUser(user).Events
			switch odd {
			case "empty entry":
				f.Client.LPush(ctx, trail, "")
			case "hash":
				f.Client.Del(ctx, trail)
				f.Client.HSet(ctx, trail, "x", "y")
				f.Client.Expire(ctx, trail, time.Hour)
			}
			f.Clock.Advance(time.Millisecond)
			all := sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_all", ExceptSessionID: only.Session.ID}
			if out, err := f.M.RevokeAllUserSessions(ctx, all); err != nil || out.Revoked != 2 {
				t.Errorf("%s: %+v %v, want 2 revoked", odd, out, err)
			}
			if out, err := f.M.RevokeAllUserSessions(ctx, all); err != nil || out.Revoked != 0 {
				t.Errorf("%s, with nothing to revoke: %+v %v, want none revoked", odd, out, err)
			}
		})
	}
}

// metricSum is the value of the counter name's point with exactly attrs.
func metricSum(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	want := attribute.NewSet(attrs...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range d.DataPoints {
					if p.Attributes.Equals(&want) {
						return p.Value
					}
				}
			}
		}
	}
	return 0
}

// TestRetriedRefreshReuse: a refresh that revokes the session for reuse,
// whose reply is lost, is run again by go-redis. The second run answers as
// the first did: the reuse is reported, counted and handed to the hooks
// once. Before, the second run found the session revoked and answered a
// plain refusal.
func TestRetriedRefreshReuse(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	const grace = 10 * time.Second
	p, f, events := lossyFixture(t,
		sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: grace}))
	login, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	nextEvents(t, events, 1)
	first := login.Tokens.RefreshToken
	if _, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: first}); err != nil { // loads the script
		t.Fatal(err)
	}
	f.Clock.Advance(grace + time.Second)
	before := p.Dropped()
	p.DropNextReply("evalsha")
	_, err = f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: first})
	if n := p.Dropped() - before; n != 1 {
		t.Fatalf("the proxy lost %d replies, want 1", n)
	}
	var re *sessionkit.RevokedError
	if !errors.As(err, &re) || re.Reason != sessionkit.ReasonRefreshReused {
		t.Errorf("the superseded token after the window, its reply lost once: %v, want a revocation for reuse", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	reused := metricSum(rm, "sessionkit.refreshes", attribute.String("sessionkit.outcome", "reused"))
	revoked := metricSum(rm, "sessionkit.revocations", attribute.String("sessionkit.reason", sessionkit.ReasonRefreshReused))
	if reused != 1 || revoked != 1 {
		t.Errorf("refreshes{reused} %d, revocations{refresh_token_reused} %d; want 1 each", reused, revoked)
	}
	if got := nextEvents(t, events, 1)[0]; got.Type != sessionkit.EventRevoked || got.Reason != sessionkit.ReasonRefreshReused {
		t.Errorf("the hooks' event: %+v, want the revocation for reuse", got)
	}
}

// TestRetriedIPRevocation: a session revoked on an address change
// (AuthenticateWith deciding to revoke), whose reply is lost, is run again
// by go-redis. The second run answers as the first did: the change and the
// revocation are reported, counted and handed to the hooks once. Before,
// it found the session revoked and answered a plain refusal.
func TestRetriedIPRevocation(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	p, f, events := lossyFixture(t, sessionkit.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	keep := func(sessionkit.UpdateSessionActivityResult) bool { return false }
	warm := f.Login(t, uuid.New())
	if _, err := f.M.AuthenticateWith(ctx, warm.Token, netip.MustParseAddr("198.51.100.1"), keep); err != nil {
		t.Fatal(err) // loads the script
	}
	login := f.Login(t, uuid.New())
	nextEvents(t, events, 3)
	decisions, before := 0, p.Dropped()
	_, err := f.M.AuthenticateWith(ctx, login.Token, netip.MustParseAddr("198.51.100.2"), func(sessionkit.UpdateSessionActivityResult) bool {
		decisions++
		p.DropNextReply("evalsha") // the revoking call's
		return true
	})
	if n := p.Dropped() - before; n != 1 || decisions != 1 {
		t.Fatalf("the proxy lost %d replies after %d decisions; want 1 and 1", n, decisions)
	}
	var re *sessionkit.RevokedError
	if !errors.As(err, &re) || re.Reason != sessionkit.ReasonIPChanged {
		t.Errorf("AuthenticateWith deciding to revoke, its reply lost once: %v, want a revocation for the address change", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	changes := metricSum(rm, "sessionkit.ip_changes", attribute.Bool("sessionkit.country_changed", false))
	revoked := metricSum(rm, "sessionkit.revocations", attribute.String("sessionkit.reason", sessionkit.ReasonIPChanged))
	if changes != 2 || revoked != 1 { // the warm-up's change, and this one
		t.Errorf("ip_changes %d, revocations{ip_changed} %d; want 2 and 1", changes, revoked)
	}
	got := nextEvents(t, events, 2)
	if got[0].Type != sessionkit.EventIPChanged || got[0].PreviousIP != sessiontest.LoginIP || got[1].Type != sessionkit.EventRevoked {
		t.Errorf("the hooks' events: %+v, want the address change from %s, then the revocation", got, sessiontest.LoginIP)
	}
}
