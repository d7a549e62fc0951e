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
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

func TestCheck(t *testing.T) {
	ctx := context.Background()
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		st, err := store.NewRedis(b.Client, store.Options{Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		// The test servers keep nothing on disk: only that is reported.
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) == 0 {
			t.Fatalf("a server without persistence: warnings %v, err %v; want one each", warnings, err)
		}
		for _, w := range warnings {
			if !strings.Contains(w, "no persistence") {
				t.Errorf("warning %q, want only no persistence", w)
			}
		}
	})

	t.Run("healthy", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{AppendOnly: true})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		if warnings, err := st.Check(ctx); err != nil || len(warnings) != 0 {
			t.Fatalf("a healthy server: warnings %v, err %v", warnings, err)
		}
	})

	t.Run("snapshots without the append-only file", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{Args: []string{"--save", "3600 1 300 100"}})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "brings back every session revoked") || !strings.Contains(warnings[0], srv.Addr()) {
			t.Fatalf("got warnings %v, err %v; want one about snapshots without AOF, naming the server", warnings, err)
		}
	})

	t.Run("a replica", func(t *testing.T) {
		master := redistest.Start(t, redistest.Options{AppendOnly: true})
		replica := redistest.Start(t, redistest.Options{})
		host, port, _ := strings.Cut(master.Addr(), ":")
		c := redis.NewClient(&redis.Options{Addr: replica.Addr(), ContextTimeoutEnabled: true})
		defer c.Close()
		if err := c.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
			t.Fatal(err)
		}
		// A replica stops at once only once it is a master again.
		defer c.Do(context.Background(), "REPLICAOF", "NO", "ONE")
		st, _ := store.NewRedis(c, store.Options{})
		if _, err := st.Check(ctx); !errors.Is(err, store.ErrUnsupported) || !strings.Contains(err.Error(), "replica") {
			t.Fatalf("got %v, want ErrUnsupported naming the replica", err)
		}
	})

	t.Run("evicting policy", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{MaxMemory: "64mb", MaxMemoryPolicy: "allkeys-lru", AppendOnly: true})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "allkeys-lru") || !strings.Contains(warnings[0], srv.Addr()) {
			t.Fatalf("got warnings %v, err %v; want one naming allkeys-lru and the server", warnings, err)
		}
	})

	t.Run("client without deadlines", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{AppendOnly: true})
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer c.Close()
		st, _ := store.NewRedis(c, store.Options{})
		warnings, err := st.Check(ctx)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "ContextTimeoutEnabled") {
			t.Fatalf("got warnings %v, err %v; want one about ContextTimeoutEnabled", warnings, err)
		}
	})

	t.Run("client without timeouts", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{AppendOnly: true})
		for _, o := range []redis.Options{
			{ReadTimeout: -1, ContextTimeoutEnabled: true},
			{WriteTimeout: -1, ContextTimeoutEnabled: true},
			{ReadTimeout: -2, WriteTimeout: -2, ContextTimeoutEnabled: true},
		} {
			o.Addr = srv.Addr()
			c := redis.NewClient(&o)
			st, _ := store.NewRedis(c, store.Options{})
			warnings, err := st.Check(ctx)
			c.Close()
			if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "timeout") || !strings.Contains(warnings[0], srv.Addr()) {
				t.Errorf("ReadTimeout %v, WriteTimeout %v: got warnings %v, err %v; want one about the timeouts, naming the server",
					o.ReadTimeout, o.WriteTimeout, warnings, err)
			}
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

// TestCheckClockSkew: a server whose clock is more than MaxClockSkew from
// the process's is named, with which way it runs; within it, nothing.
func TestCheckClockSkew(t *testing.T) {
	st, err := store.NewRedis(backends[0].Client, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		offset time.Duration // of the process's clock
		want   string
	}{
		{-10 * time.Second, "ahead of"},
		{10 * time.Second, "behind"},
		{0, ""},
		{store.MaxClockSkew / 2, ""},
	} {
		store.SetCheckClock(st, func() time.Time { return time.Now().Add(tc.offset) })
		warnings, err := st.Check(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var skew []string
		for _, w := range warnings {
			if strings.Contains(w, "clock") {
				skew = append(skew, w)
			}
		}
		switch {
		case tc.want == "" && len(skew) != 0:
			t.Errorf("process clock %v off: warnings %q, want none about the clock", tc.offset, skew)
		case tc.want != "" && (len(skew) != 1 || !strings.Contains(skew[0], tc.want) || !strings.Contains(skew[0], "NTP")):
			t.Errorf("process clock %v off: warnings %q, want one saying the server's clock is %s it", tc.offset, skew, tc.want)
		}
	}
}
