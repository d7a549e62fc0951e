package sessionkit_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/store"
)

// The commands on a Redis store: sign in on two devices, list them, sign one out.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true}) // any Redis 7
	defer rdb.Close()

	st, err := store.NewRedis(rdb, store.Options{Prefix: "example:"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := sessionkit.New(st,
		sessionkit.WithLimit(sessionkit.Tiers{"free": 1, "plus": 10}.Limit(
			func(context.Context, uuid.UUID) (string, error) { return "plus", nil })),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	alice := uuid.New()

	laptop, err := m.CreateSession(ctx, sessionkit.CreateSession{
		UserID:    alice,
		IPAddress: "203.0.113.7",
		UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	})
	if err != nil {
		log.Fatal(err)
	}
	phone, err := m.CreateSession(ctx, sessionkit.CreateSession{
		UserID:    alice,
		IPAddress: "198.51.100.23",
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
	})
	if err != nil {
		log.Fatal(err)
	}

	sessions, err := m.ListUserSessions(ctx, alice, sessionkit.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(sessions), "devices")
	for _, s := range sessions {
		if s.ID == phone.Session.ID {
			fmt.Println("phone:", s.Device.Label, s.IPAddress)
		}
	}

	// Sign the phone out; its token is refused from now on, with the reason.
	if _, err := m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: phone.Session.ID, UserID: alice, Reason: "revoked_by_user"}); err != nil {
		log.Fatal(err)
	}
	_, err = m.Authenticate(ctx, phone.Token, netip.MustParseAddr("198.51.100.23"))
	fmt.Println(err)
	_, err = m.Authenticate(ctx, laptop.Token, netip.MustParseAddr("203.0.113.7"))
	fmt.Println(err)
	// Output:
	// 2 devices
	// phone: Safari on iPhone 198.51.100.23
	// sessionkit: session revoked (revoked_by_user)
	// <nil>
}
