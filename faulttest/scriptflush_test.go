package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// TestScriptFlushMidLoad empties Redis's script cache (SCRIPT FLUSH on every
// master) again and again while every command runs. redis.Script.Run answers
// NOSCRIPT by sending the script itself (EVAL), so no request may fail.
func TestScriptFlushMidLoad(t *testing.T) {
	backends := []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"standalone", func(t *testing.T) redis.UniversalClient { return sharedServer(t).Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return sharedCluster(t).Client(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.rdb(t)
			f := newFixture(t, rdb)
			ctx := context.Background()
			evalsBefore := evalCalls(t, rdb)

			var cnt counter
			var mu sync.Mutex
			var failures []string
			fail := func(op string, err error) {
				mu.Lock()
				defer mu.Unlock()
				if len(failures) < 20 {
					failures = append(failures, fmt.Sprintf("%s: %v", op, err))
				}
			}
			var worker atomic.Int32
			stop := load(3, func(r *rand.Rand) {
				// Each worker signs its own user in and out, so every answer is known.
				user := uuid.New()
				w := worker.Add(1)
				var active []sessionkit.CreateSessionResult
				for i := range 20 {
					for op, err := range userCycle(f, r, user, &active, i, w) {
						cnt.add(op, err)
						if err != nil {
							fail(op, err)
						}
					}
				}
			})
			flushes := 0
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); flushes++ {
				err := sessiontest.ForEachMaster(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
					return c.ScriptFlush(ctx).Err()
				})
				if err != nil {
					t.Fatalf("SCRIPT FLUSH: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			stop()

			if len(failures) > 0 {
				t.Errorf("failed requests (want none):\n%s", strings.Join(failures, "\n"))
			}
			if cnt.total() == 0 {
				t.Fatal("no request ran")
			}
			evals := evalCalls(t, rdb) - evalsBefore
			if evals == 0 {
				t.Errorf("EVAL calls during the load: got 0, want > 0 (no request met a flushed cache)")
			}
			checkStore(t, f, func(uuid.UUID) int { return sessionkit.DefaultLimit })
			t.Logf("%d script flushes, %d scripts resent with EVAL after NOSCRIPT; operations: %s", flushes, evals, &cnt)
		})
	}
}

// userCycle runs one round of every command for user, keeping at most five
// of its sessions active, and yields each operation's name and error.
func userCycle(f *fixture, r *rand.Rand, user uuid.UUID, active *[]sessionkit.CreateSessionResult, i int, w int32) func(yield func(string, error) bool) {
	return func(yield func(string, error) bool) {
		ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
		defer cancel()
		res, err := f.login(user)
		if !yield("login", err) {
			return
		}
		if err == nil {
			*active = append(*active, res)
		}
		for _, s := range *active {
			if !yield("authenticate", f.auth(s.Token)) {
				return
			}
		}
		if len(*active) == 0 {
			return
		}
		cur := (*active)[len(*active)-1].Session.ID
		_, err = f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: cur, ProviderName: "schwab"})
		if !yield("record_provider", err) {
			return
		}
		_, err = f.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: cur, RefreshTokenID: "rt-" + strconv.Itoa(i)})
		if !yield("link_refresh_token", err) {
			return
		}
		ip := fmt.Sprintf("198.51.100.%d", 1+r.IntN(250))
		_, err = f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: cur, IPAddress: ip})
		if !yield("update_activity", err) {
			return
		}
		list, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{})
		if err == nil && len(list) != len(*active) {
			err = fmt.Errorf("listed %d sessions, want %d (worker %d)", len(list), len(*active), w)
		}
		if !yield("list", err) {
			return
		}
		if len(*active) > 5 {
			old := (*active)[0]
			*active = (*active)[1:]
			if !yield("revoke", f.revoke(user, old.Session.ID)) {
				return
			}
		}
		if i%7 == 6 {
			out, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{
				UserID: user, Reason: sessionkit.ReasonLogoutAll, ExceptSessionID: cur})
			if err == nil && out.Revoked != len(*active)-1 {
				err = fmt.Errorf("revoked %d sessions, want %d", out.Revoked, len(*active)-1)
			}
			*active = (*active)[len(*active)-1:]
			yield("revoke_all", err)
		}
	}
}

// evalCalls sums the EVAL calls every master has served (INFO commandstats).
func evalCalls(tb testing.TB, rdb redis.UniversalClient) int {
	tb.Helper()
	total := 0
	err := sessiontest.ForEachMaster(context.Background(), rdb, func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(info, "\n") {
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_eval:calls=")
			if !ok {
				continue
			}
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			total += n
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	return total
}
