package redistest_test

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

// StartServer suits TestMain, where one server serves a whole package;
// without a testing.TB, clients are made and closed by hand.
func ExampleStartServer() {
	srv, err := redistest.StartServer(redistest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop()

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	fmt.Println(rdb.Ping(context.Background()).Val())
	// Output: PONG
}

// Keys sharing a hash tag share a slot, so one Lua script may touch them
// all on a Redis Cluster.
func ExampleKeySlot() {
	fmt.Println(redistest.KeySlot("{user1000}.following"), redistest.KeySlot("{user1000}.followers"))
	// Output: 3443 3443
}
