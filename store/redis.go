// Package store is sessionkit's Redis store.
//
// It works unchanged on one node, Sentinel or Cluster through
// redis.UniversalClient. Every change to sessions is one Lua script
// (embedded, run with redis.Script, so a flushed script cache or a
// restarted server recovers by itself) that touches only the keys of one
// user, which share a hash tag and so one Cluster slot; a per-user limit
// override is a plain SET or DEL of its own key. A session is one string
// value, a field of the user's hash of active sessions while it is active,
// so the hot path (Peek, for Manager.Authenticate) is one read-only HGET;
// other reads of a session are one round trip too. Nothing but an upgrade
// step (ClearSealedRefreshSecrets) uses KEYS or SCAN.
//
// NewCache wraps a Redis store with an opt-in, Pub/Sub-invalidated cache of
// verified sessions, for apps that want most requests to cost no round trip.
//
// Redis 7.0 or newer is required. Run it with persistence (AOF with
// appendfsync everysec or always) if sessions must survive a restart, and
// with maxmemory-policy noeviction: an evicting policy would silently drop
// sessions and indexes. Keep the clocks of Redis and of every instance
// synchronized (NTP): each instance decides expiry by its own (see
// MaxClockSkew).
package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/announce"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/rediskey"
)

// Options configures a Redis store.
type Options struct {
	// Prefix starts every key and channel name; printable ASCII without
	// spaces or braces, at most 64 bytes. Default: "sk:".
	Prefix string

	// NoAutoPipeline sends every hot-path read on its own pooled connection.
	// By default, once more than a few of the store's reads are in flight
	// (and until a run of reads has found few again),
	// Peek's read (the one command of Manager.Authenticate) goes through
	// go-redis's autopipeliner, which writes the reads of concurrent
	// requests to Redis together: each request still waits for exactly one
	// reply of its own, but Redis and the app make a few system calls per
	// batch instead of per request, which is what bounds a busy app. Each
	// caller's context still bounds its wait. Scripts (logins, activity
	// writes, revocations) never ride the autopipeliner. The client's own
	// AutoPipelineOptions, if set, tune it. A client that cannot
	// autopipeline (a Ring) reads directly.
	NoAutoPipeline bool
}

// Redis is a sessionkit.Store on Redis. The caller owns the client and closes it.
type Redis struct {
	c       redis.UniversalClient
	ap      *redis.AutoPipeliner // nil: reads go straight to c
	keys    rediskey.Keys
	channel string // where revocations are announced

	reading atomic.Int64 // hot-path reads in flight, counted when ap is set
	quiet   atomic.Int32 // how many reads in a row found few in flight, up to quietReads

	now func() time.Time // Check's clock; nil: time.Now
}

// clock is the clock Check compares the servers' with.
func (r *Redis) clock() func() time.Time {
	if r.now != nil {
		return r.now
	}
	return time.Now
}

// directReads is how many hot-path reads in flight go straight to the
// client before more ride the autopipeliner. With few callers, separate
// connections answer sooner than a batch, which waits briefly for the
// wave it expects (measured: 2 to 4 concurrent callers got 30% to 40%
// fewer reads a second through the autopipeliner); with many, batching
// wins (64 callers: about 3 times as many). See BenchmarkAuthenticate.
const directReads = 4

// quietReads is how many reads in a row must find at most directReads in
// flight before reads go straight to the client again. Under load the
// reads in flight dip to a few whenever a batch's callers finish together;
// a read sent alone then costs a round trip of its own (system calls on
// both sides, a pool checkout) where joining the next batch costs little.
// Measured with the load harness (64 connections, 2 CPUs): 4 to 11% of
// reads went alone, which cost about 1 µs of CPU per request on average
// and tripled the round trips; a lone caller or a few still read directly.
const quietReads = 64

var _ sessionkit.Store = (*Redis)(nil)

// NewRedis returns a store using c.
func NewRedis(c redis.UniversalClient, opts Options) (*Redis, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: store: client must not be nil", sessionkit.ErrInvalid)
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		// A read from a replica serves a revoked session until the
		// revocation replicates, and the cache would keep it.
		if o := cc.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			return nil, fmt.Errorf("%w: store: a cluster client that reads from replicas (ReadOnly, RouteByLatency or RouteRandomly) would serve revoked sessions; use one that reads from masters", sessionkit.ErrInvalid)
		}
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = rediskey.DefaultPrefix
	}
	keys, err := rediskey.New(prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: store: Prefix: %v", sessionkit.ErrInvalid, err)
	}
	r := &Redis{c: c, keys: keys, channel: announce.Channel(prefix)}
	r.quiet.Store(quietReads) // no load yet
	if !opts.NoAutoPipeline {
		// The deferred face, so that a caller's context bounds its wait
		// (the blocking face waits for the batch whatever the context
		// says). Closing the client closes it. A client that cannot
		// autopipeline (a Ring) reads directly.
		if ap, err := c.AsyncAutoPipeline(); err == nil {
			r.ap = ap
		}
	}
	return r, nil
}

// Attach implements sessionkit.Store. The Redis store logs nothing itself.
func (r *Redis) Attach(backend.Env) {}

// hget reads one hash field: through the autopipeliner when it is on,
// unless at most directReads reads are in flight and the last quietReads
// reads found as few. A redis.Nil error means the field is absent.
func (r *Redis) hget(ctx context.Context, key, field string) (string, error) {
	if r.ap == nil {
		return r.c.HGet(ctx, key, field).Result()
	}
	n := r.reading.Add(1)
	defer r.reading.Add(-1)
	if r.direct(n) {
		return r.c.HGet(ctx, key, field).Result()
	}
	cmd := redis.NewStringCmd(ctx, "hget", key, field)
	if err := r.ap.Submit(ctx, cmd).WaitContext(ctx); err != nil {
		// On a context error the command may still be in flight: its
		// result must not be read, and is not needed.
		return "", err
	}
	return cmd.Result()
}

// direct reports whether a read that found n reads in flight, itself
// included, goes straight to the client. The counter of quiet reads is
// written only when it changes, so that under steady load, when it stays
// at zero, the reads only load it.
func (r *Redis) direct(n int64) bool {
	q := r.quiet.Load()
	switch {
	case n > directReads:
		if q != 0 {
			r.quiet.Store(0)
		}
		return false
	case q >= quietReads:
		return true
	}
	r.quiet.Add(1)
	return false
}

// Channel is the Pub/Sub channel on which revoked and evicted session ids
// are published (comma-separated members of one user's tag: see Revoked).
func (r *Redis) Channel() string { return r.channel }

// Client returns the Redis client the store uses.
func (r *Redis) Client() redis.UniversalClient { return r.c }

// Prefix returns the key prefix.
func (r *Redis) Prefix() string { return r.keys.Prefix() }

// unavailable wraps a Redis failure: down, timed out, out of memory, or a
// script error. Each leaves nothing half-written (see lua/common.lua).
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", sessionkit.ErrUnavailable, op, err)
}
