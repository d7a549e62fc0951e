package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// redisConn is the Redis the example uses, and how to let go of it.
type redisConn struct {
	client   redis.UniversalClient
	embedded *miniredis.Miniredis // nil unless neither REDIS_URL nor REDIS_CLUSTER_ADDRS is set
	// desc says which Redis it is, without credentials.
	desc string
}

// openRedis connects to REDIS_URL, to the Cluster at REDIS_CLUSTER_ADDRS,
// or, with neither, to an in-memory Redis started in this process. Every
// client has ContextTimeoutEnabled, so a request's deadline cuts Redis I/O
// short rather than waiting out the read timeout.
func openRedis(ctx context.Context, cfg config) (*redisConn, error) {
	var rc redisConn
	switch {
	case cfg.RedisURL != "":
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			// The URL may hold a password: name the variable, not its value.
			return nil, fmt.Errorf("REDIS_URL: %w", redactURLError(err, cfg.RedisURL))
		}
		opt.ContextTimeoutEnabled = true
		rc.client = redis.NewClient(opt)
		rc.desc = "Redis at " + opt.Addr
	case len(cfg.ClusterAddrs) > 0:
		rc.client = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 cfg.ClusterAddrs,
			ContextTimeoutEnabled: true,
		})
		rc.desc = "Redis Cluster at " + strings.Join(cfg.ClusterAddrs, ",")
	default:
		mr := miniredis.NewMiniRedis()
		// Let keys expire by the wall clock, as on a real server; miniredis
		// otherwise only expires them on FastForward.
		mr.ClockTTL(true)
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded Redis: %w", err)
		}
		rc.embedded = mr
		rc.client = redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
		rc.desc = "embedded in-memory Redis (miniredis) at " + mr.Addr()
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rc.client.Ping(pctx).Err(); err != nil {
		rc.Close()
		return nil, fmt.Errorf("%s: %w", rc.desc, err)
	}
	return &rc, nil
}

// Close closes the client, then stops the embedded server if there is one.
func (rc *redisConn) Close() error {
	err := rc.client.Close()
	if rc.embedded != nil {
		rc.embedded.Close()
	}
	return err
}

// banner is what the example prints about its Redis at start-up.
func (rc *redisConn) banner(w io.Writer) {
	if rc.embedded == nil {
		fmt.Fprintf(w, "sessionkit example: using %s\n", rc.desc)
		return
	}
	fmt.Fprintf(w, "sessionkit example: no REDIS_URL or REDIS_CLUSTER_ADDRS set, so sessions live in an embedded in-memory Redis\n"+
		"  (miniredis, %s) and are lost when the example stops.\n"+
		"  To use a real Redis 7+: REDIS_URL=redis://localhost:6379/0 go run ./example\n"+
		"  or a Cluster:           REDIS_CLUSTER_ADDRS=host1:7000,host2:7001,host3:7002 go run ./example\n",
		rc.embedded.Addr())
}

// redactURLError keeps go-redis's explanation of a bad URL but never the
// URL itself, which may carry a password. net/url quotes the URL it failed
// on (%q), so a password with a quote, a backslash or a control byte is not
// there verbatim: its *url.Error is rebuilt without the URL, and of the
// errors that quote a piece of it (a bad escape, a bad host) only the kind
// is kept.
func redactURLError(err error, raw string) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		why := ue.Err.Error()
		if _, esc := errors.AsType[url.EscapeError](ue.Err); esc {
			why = "invalid URL escape"
		} else if _, host := errors.AsType[url.InvalidHostError](ue.Err); host {
			why = "invalid character in host name"
		}
		return fmt.Errorf("%s <REDIS_URL>: %s", ue.Op, why)
	}
	msg := err.Error()
	if raw != "" {
		q := strconv.Quote(raw)
		msg = strings.ReplaceAll(msg, q[1:len(q)-1], "<REDIS_URL>")
		msg = strings.ReplaceAll(msg, raw, "<REDIS_URL>")
	}
	return errors.New(msg)
}
