package redistest

import (
	"context"
	"net"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Counter is a go-redis hook (client.AddHook) that counts what a client
// sends: commands, round trips (a pipeline is one) and scripts run (EVAL
// and EVALSHA, the only commands of sessionkit's hot path that can write).
// A new connection's handshake (HELLO, CLIENT, AUTH, SELECT) counts as
// nothing, and an EVALSHA refused with NOSCRIPT together with its EVAL
// fallback counts as one. Tests use it to prove that a refusal made no
// Redis call, or that a request cost one round trip.
type Counter struct{ commands, trips, scripts atomic.Int64 }

// Commands returns the number of commands sent since the last Reset.
func (c *Counter) Commands() int64 { return c.commands.Load() }

// RoundTrips returns the number of round trips since the last Reset.
func (c *Counter) RoundTrips() int64 { return c.trips.Load() }

// Scripts returns the number of scripts run since the last Reset.
func (c *Counter) Scripts() int64 { return c.scripts.Load() }

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.commands.Store(0)
	c.trips.Store(0)
	c.scripts.Store(0)
}

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func (c *Counter) count(err error, cmds ...redis.Cmder) {
	if len(cmds) == 0 || handshake(cmds[0]) {
		return
	}
	if len(cmds) == 1 && err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return // the EVAL that follows is the round trip that counts
	}
	c.trips.Add(1)
	c.commands.Add(int64(len(cmds)))
	for _, cmd := range cmds {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.scripts.Add(1)
		}
	}
}

// DialHook implements redis.Hook.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.count(err, cmd)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		c.count(nil, cmds...)
		return err
	}
}
