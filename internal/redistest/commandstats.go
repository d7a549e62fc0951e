package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// CommandStat is one command's figures in INFO commandstats.
type CommandStat struct {
	Calls int64
	Usec  float64 // CPU time spent serving the command, µs
}

// CommandStats reads INFO commandstats from c's node, or from every master
// of a Cluster, summed by command (lower case, as Redis names them:
// "hset", "evalsha").
func CommandStats(ctx context.Context, c redis.UniversalClient) (map[string]CommandStat, error) {
	out := map[string]CommandStat{}
	var mu sync.Mutex
	read := func(ctx context.Context, n *redis.Client) error {
		info, err := n.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for line := range strings.Lines(info) {
			name, fields, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			st := out[name]
			for field := range strings.SplitSeq(fields, ",") {
				k, v, _ := strings.Cut(field, "=")
				switch k {
				case "calls":
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						return fmt.Errorf("redistest: commandstats line %q: %w", line, err)
					}
					st.Calls += n
				case "usec":
					n, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return fmt.Errorf("redistest: commandstats line %q: %w", line, err)
					}
					st.Usec += n
				}
			}
			out[name] = st
		}
		return nil
	}
	switch c := c.(type) {
	case *redis.Client:
		return out, read(ctx, c)
	case *redis.ClusterClient:
		return out, c.ForEachMaster(ctx, read)
	}
	return nil, fmt.Errorf("redistest: unsupported client %T", c)
}

// ServerCPU is the CPU time c's server has spent so far (INFO cpu,
// used_cpu_user + used_cpu_sys), in seconds: one node's.
func ServerCPU(ctx context.Context, c *redis.Client) (float64, error) {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	total := 0.0
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("redistest: INFO cpu line %q: %w", line, err)
		}
		total += secs
	}
	return total, nil
}

// ScriptMicros is the CPU c's server has spent running scripts (EVAL and
// EVALSHA) so far, µs, failing tb when it cannot be read.
func ScriptMicros(tb testing.TB, c redis.UniversalClient) float64 {
	tb.Helper()
	st, err := CommandStats(context.Background(), c)
	if err != nil {
		tb.Fatal(err)
	}
	return st["evalsha"].Usec + st["eval"].Usec
}

// writeCommands are the write commands sessionkit sends, in scripts or
// not, and those its earlier releases sent.
var writeCommands = map[string]bool{
	"set": true, "del": true, "unlink": true, "hset": true, "hsetnx": true, "hdel": true, "zadd": true, "zrem": true,
	"zremrangebyscore": true, "zremrangebyrank": true, "zpopmin": true, "lpush": true, "rpush": true,
	"ltrim": true, "pexpire": true, "pexpireat": true, "expire": true, "xadd": true, "xtrim": true,
	"publish": true,
}

// IsWrite reports whether the command named as in INFO commandstats is one
// of the writes sessionkit sends.
func IsWrite(name string) bool { return writeCommands[name] }
