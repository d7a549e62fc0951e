package sessiontest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

func TestFixture(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	shared := srv.Client(t)
	tests := []struct {
		name      string
		o         sessiontest.Options
		wantCalls bool // the fixture opened, and counts, its own client
		wantClock bool
	}{
		{"own client", sessiontest.Options{Addr: srv.Addr()}, true, true},
		{"shared client", sessiontest.Options{Client: shared}, false, true},
		{"client like the shared one", sessiontest.Options{Client: shared, OwnClient: true}, true, true},
		{"real time", sessiontest.Options{Addr: srv.Addr(), RealTime: true}, true, false},
		{"cached", sessiontest.Options{Addr: srv.Addr(), Cache: &store.CacheOptions{}}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sessiontest.New(t, tt.o, sessionkit.WithIdleTimeout(time.Hour))
			if got := f.Calls != nil; got != tt.wantCalls {
				t.Errorf("Calls set: got %v, want %v", got, tt.wantCalls)
			}
			if got := f.Clock != nil; got != tt.wantClock {
				t.Errorf("Clock set: got %v, want %v", got, tt.wantClock)
			}
			if got, want := f.Cache != nil, tt.o.Cache != nil; got != want {
				t.Errorf("Cache set: got %v, want %v", got, want)
			}
			if !strings.HasPrefix(f.Prefix, "t:") || f.Store.Prefix() != f.Prefix {
				t.Errorf("prefix: got %q (store %q), want the test's own", f.Prefix, f.Store.Prefix())
			}
			user := uuid.New()
			res := f.Login(t, user)
			if f.Calls != nil && f.Calls.Scripts() == 0 {
				t.Error("Calls: got no script for a login, want one")
			}
			if f.Clock != nil && !res.Session.CreatedAt.Equal(f.Clock.Now()) {
				t.Errorf("created at %v, want the fixture clock's %v", res.Session.CreatedAt, f.Clock.Now())
			}
			if s := f.Session(t, res.Session.ID); s.UserID != user || s.UserAgent != sessiontest.ChromeMac || s.IPAddress.String() != sessiontest.LoginIP {
				t.Errorf("session: got %+v, want %s's from %s", s, user, sessiontest.LoginIP)
			}
			keys := f.CheckTTLs(t)
			if len(keys) == 0 || !slices.IsSorted(keys) {
				t.Fatalf("keys: got %v, want some, sorted", keys)
			}
			before := f.Dump(t)
			if d := sessiontest.Diff(before, f.Dump(t)); len(d) != 0 {
				t.Errorf("two dumps with no write between: got %v, want no difference", d)
			}
			f.Login(t, user)
			if d := sessiontest.Diff(before, f.Dump(t)); len(d) == 0 {
				t.Error("dumps around a login: got no difference, want some")
			}
		})
	}
}

func TestTwoFixturesOnOnePrefixShareSessions(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := sessiontest.New(t, sessiontest.Options{Addr: srv.Addr()})
	b := sessiontest.New(t, sessiontest.Options{Addr: srv.Addr(), Prefix: a.Prefix, Clock: a.Clock})
	if b.Clock != a.Clock {
		t.Error("clock: got a new one, want the one given")
	}
	res := a.Login(t, uuid.New())
	if got := b.Session(t, res.Session.ID); got.ID != res.Session.ID {
		t.Errorf("session through b: got %s, want %s", got.ID, res.Session.ID)
	}
}

func TestBuildNeedsAPrefixAndARedis(t *testing.T) {
	for name, o := range map[string]sessiontest.Options{
		"no prefix": {Addr: "127.0.0.1:1"},
		"no redis":  {Prefix: "t:x:"},
	} {
		t.Run(name, func(t *testing.T) {
			if f, err := sessiontest.Build(o); err == nil {
				f.Close()
				t.Fatal("got a fixture, want an error")
			}
		})
	}
}
