package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
)

// ErrUnsupported reports a Redis server sessionkit cannot run on safely.
var ErrUnsupported = errors.New("sessionkit: unsupported redis server")

// Check asks every master the store reaches whether it can hold sessions
// safely, for an app to call at start-up. It fails with an error wrapping
// ErrUnsupported for a server older than Redis 7.0 or for a client whose
// connection reaches a replica (a revoked session would be served until
// the revocation replicates), or wrapping sessionkit.ErrUnavailable when a
// server cannot be reached. It returns warnings, each naming the server,
// for what is allowed but risky: a maxmemory-policy other than noeviction,
// under which Redis would silently drop sessions and indexes; snapshots
// (RDB) without the append-only file, with which a restart brings back
// every session revoked since the last snapshot, and no persistence at all,
// with which a restart signs everyone out; CONFIG refused (common on managed
// Redis), which leaves both unchecked; and a client without
// ContextTimeoutEnabled, which ignores request deadlines, so a slow Redis
// holds requests for the client's own timeouts instead of failing them;
// a client whose ReadTimeout or WriteTimeout is -1 or -2 (no timeout),
// which leaves a request without a deadline of its own waiting on a hung
// server; and a server whose clock is more than MaxClockSkew from this
// process's (see clockSkew).
func (r *Redis) Check(ctx context.Context) (warnings []string, err error) {
	var mu sync.Mutex
	check := func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return unavailable("check "+addr, err)
		}
		if v := infoField(info, "redis_version"); !atLeast7(v) {
			return fmt.Errorf("%w: %s runs Redis %q; sessionkit needs 7.0 or newer", ErrUnsupported, addr, v)
		}
		if v, err := c.Do(ctx, "ROLE").Slice(); err == nil && len(v) > 0 {
			if role, _ := v[0].(string); role == "slave" {
				return fmt.Errorf("%w: %s is a replica: sessionkit must read and write on masters, or a revoked session is served until the revocation replicates", ErrUnsupported, addr)
			}
		}
		var warns []string
		switch skew, err := clockSkew(ctx, c, r.clock()); {
		case err != nil:
			warns = append(warns, fmt.Sprintf("%s: TIME refused (%v): make sure its clock and every instance's are synchronized", addr, err))
		case skew > MaxClockSkew || skew < -MaxClockSkew:
			way := "ahead of"
			if skew < 0 {
				way, skew = "behind", -skew
			}
			warns = append(warns, fmt.Sprintf("%s: its clock is %v %s this process's: each instance decides expiry, idle timeouts and the refresh grace window by its own clock, and Redis expires keys by its; synchronize every clock (NTP)", addr, skew.Round(time.Millisecond), way))
		}
		res, err := c.ConfigGet(ctx, "*").Result()
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: CONFIG GET refused (%v): make sure maxmemory-policy is noeviction and appendonly is yes", addr, err))
		} else {
			if p := res["maxmemory-policy"]; p != "" && p != "noeviction" {
				warns = append(warns, fmt.Sprintf("%s: maxmemory-policy is %s: under memory pressure Redis will silently drop sessions; use noeviction", addr, p))
			}
			switch aof, rdb := res["appendonly"] == "yes", strings.TrimSpace(res["save"]) != ""; {
			case !aof && rdb:
				warns = append(warns, fmt.Sprintf("%s: snapshots (save %q) without the append-only file: a restart brings back every session revoked since the last snapshot; set appendonly yes", addr, res["save"]))
			case !aof:
				warns = append(warns, fmt.Sprintf("%s: no persistence (appendonly no, no save rules): a restart signs every user out; set appendonly yes", addr))
			}
		}
		if len(warns) > 0 {
			mu.Lock()
			warnings = append(warnings, warns...)
			mu.Unlock()
		}
		return nil
	}
	deadlines := func(addr string, contextTimeout bool, read, write time.Duration) {
		if !contextTimeout {
			warnings = append(warnings, addr+": the client's ContextTimeoutEnabled is false: request deadlines are ignored; set it to true")
		}
		// As go-redis holds them once the client is made: -1 given is 0
		// here, -2 given is -1; both mean no timeout.
		if read <= 0 || write <= 0 {
			warnings = append(warnings, addr+": the client's ReadTimeout or WriteTimeout is -1 or -2, no timeout: a request without a deadline of its own waits on a hung Redis for ever instead of failing; leave them at go-redis's default or set a positive bound")
		}
	}
	switch c := r.c.(type) {
	case *redis.ClusterClient:
		o := c.Options()
		deadlines("cluster", o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout)
		err = c.ForEachMaster(ctx, check)
	case *redis.Client:
		o := c.Options()
		deadlines(o.Addr, o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout)
		err = check(ctx, c)
	default: // Ring and other UniversalClient implementations: check what answers
		if perr := r.c.Ping(ctx).Err(); perr != nil {
			err = unavailable("check", perr)
		}
	}
	if err != nil && !errors.Is(err, ErrUnsupported) && !errors.Is(err, sessionkit.ErrUnavailable) {
		err = unavailable("check", err)
	}
	return warnings, err
}

// MaxClockSkew is how far a server's clock may be from the process's
// before Check warns. Each instance passes its own time to the scripts,
// which decide by it whether a session has expired or gone idle, whether
// the activity throttle or the refresh grace window has passed, and when
// Redis is to expire keys: an instance whose clock runs ahead retires
// other instances' sessions early, one that runs behind serves sessions
// past their end. Checked against each server, the instances' clocks are
// within twice this of each other.
const MaxClockSkew = time.Second

// clockSkew is how far c's clock runs ahead of now (behind: negative),
// less the uncertainty of the round trip that read it.
func clockSkew(ctx context.Context, c *redis.Client, now func() time.Time) (time.Duration, error) {
	before := now()
	at, err := c.Time(ctx).Result()
	after := now()
	if err != nil {
		return 0, err
	}
	half := after.Sub(before) / 2
	switch skew := at.Sub(before.Add(half)); {
	case skew > half:
		return skew - half, nil
	case skew < -half:
		return skew + half, nil
	}
	return 0, nil
}

func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

func atLeast7(version string) bool {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 7
}
