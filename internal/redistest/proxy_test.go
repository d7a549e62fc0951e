package redistest_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

func TestProxyDelay(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })

	ping := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		return rdb.Ping(ctx).Err()
	}

	if err := ping(2 * time.Second); err != nil {
		t.Fatalf("PING through the proxy without delay: %v", err)
	}

	proxy.SetDelay(300 * time.Millisecond)
	start := time.Now()
	err := ping(100 * time.Millisecond)
	if !isTimeout(err) {
		t.Errorf("PING with 100ms deadline through 300ms delay: %v, want a timeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("timed-out PING took %v, want about 100ms", took)
	}
	// A generous deadline rides out the delay (300ms each way).
	if err := ping(3 * time.Second); err != nil {
		t.Errorf("PING with 3s deadline through 300ms delay: %v", err)
	}

	proxy.SetDelay(0)
	if err := ping(2 * time.Second); err != nil {
		t.Errorf("PING after removing the delay: %v", err)
	}

	if err := proxy.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := ping(300 * time.Millisecond); err == nil {
		t.Error("PING after proxy Close succeeded, want an error")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
