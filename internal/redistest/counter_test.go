package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestCounter(t *testing.T) {
	srv := Start(t, Options{})
	var c Counter
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	rdb.AddHook(&c)
	ctx := context.Background()

	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil { // the connection's handshake comes first
		t.Fatal(err)
	}
	if got := [3]int64{c.RoundTrips(), c.Commands(), c.Scripts()}; got != [3]int64{1, 1, 0} {
		t.Fatalf("after SET on a new connection: got %v, want [1 1 0] (handshake not counted)", got)
	}
	c.Reset()
	p := rdb.Pipeline()
	p.Get(ctx, "k")
	p.ZScore(ctx, "z", "m")
	p.Exec(ctx)
	if got := [2]int64{c.RoundTrips(), c.Commands()}; got != [2]int64{1, 2} {
		t.Fatalf("pipeline of two: got %v, want [1 2]", got)
	}
	c.Reset()
	s := redis.NewScript(`return 1`)
	rdb.ScriptFlush(ctx)
	c.Reset()
	if err := s.Run(ctx, rdb, nil).Err(); err != nil { // EVALSHA refused with NOSCRIPT, then EVAL
		t.Fatal(err)
	}
	if got := [3]int64{c.RoundTrips(), c.Commands(), c.Scripts()}; got != [3]int64{1, 1, 1} {
		t.Fatalf("a script after SCRIPT FLUSH: got %v, want [1 1 1]", got)
	}
}
