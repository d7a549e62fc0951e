package store_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/announce"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// The Manager's behaviour is tested in the root package (manager_test.go);
// these tests are of what the store keeps in Redis: keys, scripts, memory
// and announcements.

func TestTokenHashedAtRest(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		res := f.Login(t, uuid.New())
		secret := res.Token[37:]
		for _, k := range f.Keys(t) {
			dump, err := b.Client.Dump(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(dump, secret) || strings.Contains(dump, res.Token) {
				t.Errorf("key %s holds the raw secret", k)
			}
		}
	})
}

func TestScriptFlushRecovers(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		res := f.Login(t, uuid.New())
		if err := sessiontest.ForEachMaster(ctx, b.Client, func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
			t.Fatalf("after SCRIPT FLUSH: %v", err)
		}
		f.Login(t, uuid.New())
	})
}

func TestMemoryPerSession(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		const users, perUser = 20, 5
		for range users {
			u := uuid.New()
			for range perUser {
				f.Login(t, u)
			}
		}
		// A session's own keys are its hash and its entries in the user's
		// index, retained set and revocation hash. The audit stream and the
		// seen-devices set are per user, reported apart.
		var session, userBytes int64
		for _, k := range f.Keys(t) {
			n, err := b.Client.MemoryUsage(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(k, ":ev") || strings.HasSuffix(k, ":seen") {
				userBytes += n
			} else {
				session += n
			}
		}
		per := session / (users * perUser)
		t.Logf("MEMORY USAGE per session (session string + index entries, Chrome UA): %d bytes; per user (audit stream + seen set, %d events): %d bytes",
			per, perUser, userBytes/users)
		if per >= 1024 {
			t.Errorf("memory per session: got %d bytes, want < 1024", per)
		}
	})
}

func TestRevocationsAreAnnounced(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(2)))
		sub := b.Client.Subscribe(ctx, f.Store.Channel())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // subscription confirmed
			t.Fatal(err)
		}
		user := uuid.New()
		a := f.Login(t, user)
		f.Clock.Advance(time.Millisecond)
		b2 := f.Login(t, user)
		f.Clock.Advance(time.Millisecond)
		c := f.Login(t, user) // evicts a, the one that expires first
		f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: b2.Session.ID, UserID: user, Reason: "logout"})
		f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_everywhere"})
		want := []uuid.UUID{a.Session.ID, b2.Session.ID, c.Session.ID}
		for i, w := range want {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			msg, err := sub.ReceiveMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("announcement %d: %v", i, err)
			}
			got := announce.Parse(msg.Payload)
			if len(got) != 1 || got[0] != w {
				t.Errorf("announcement %d: got %v, want [%v]", i, got, w)
			}
		}
	})
}
