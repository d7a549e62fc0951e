package store_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

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
