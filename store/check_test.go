package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/store"
)

func TestCheck(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		st, err := store.NewRedis(b.client, store.Options{Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) != 0 {
			t.Fatalf("a healthy server: warnings %v, err %v", warnings, err)
		}
	})

	t.Run("evicting policy", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{MaxMemory: "64mb", MaxMemoryPolicy: "allkeys-lru"})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "allkeys-lru") || !strings.Contains(warnings[0], srv.Addr()) {
			t.Fatalf("got warnings %v, err %v; want one naming allkeys-lru and the server", warnings, err)
		}
	})

	t.Run("client without deadlines", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "ContextTimeoutEnabled") {
			t.Fatalf("got warnings %v, err %v; want one about ContextTimeoutEnabled", warnings, err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Check(ctx); !errors.Is(err, sessionkit.ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
	})
}
