package faulttest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// stored is what Redis holds under one prefix, read directly (SCAN, HMGET,
// ZRANGE...), never through sessionkit.
type stored struct {
	keys    int
	active  map[uuid.UUID]uuid.UUID // session id -> user id, from the indexes
	revoked map[uuid.UUID]string    // session id -> reason, from the rev hashes
}

// checkStore checks what must hold of every user's keys under f's prefix
// at any quiet moment, reading the keys, indexes, revocation records and
// TTLs from Redis directly (SCAN, ZRANGE, HGETALL, PTTL) and decoding
// session contents with the store (Manager.Session), so the check does not
// depend on how a session is serialized:
//   - every key has a TTL;
//   - each user's index lists exactly their active sessions (the fields of
//     their act hash), each scored by its deadline, and no active session
//     has a revocation record or a retired copy;
//   - no user holds more active sessions than limitOf(user) (nil: no check).
//
// It returns the active and revoked sessions it found.
func checkStore(tb testing.TB, f *fixture, limitOf func(uuid.UUID) int) stored {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rdb, prefix := f.Client, f.Prefix
	all := sessiontest.CheckTTLs(tb, rdb, prefix)
	out := stored{keys: len(all), active: map[uuid.UUID]uuid.UUID{}, revoked: map[uuid.UUID]string{}}

	var problems []string
	fail := func(format string, args ...any) {
		if len(problems) < 30 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	defer func() {
		if len(problems) > 0 {
			tb.Errorf("store invariants under %s:\n%s", prefix, strings.Join(problems, "\n"))
		}
	}()

	// The user tags present.
	var tags []string
	seen := map[string]bool{}
	for _, k := range all {
		rest, ok := strings.CutPrefix(k, prefix+"{")
		if !ok {
			fail("key %s does not follow the layout", k)
			continue
		}
		tagHex, _, ok := strings.Cut(rest, "}:")
		b, err := hex.DecodeString(tagHex)
		if !ok || err != nil || len(b) != len(sessionid.Tag{}) {
			fail("key %s does not follow the layout", k)
			continue
		}
		if !seen[tagHex] {
			seen[tagHex] = true
			tags = append(tags, tagHex)
		}
	}
	type userCmds struct {
		act, ret *redis.StringSliceCmd
		idx      *redis.ZSliceCmd
		rev      *redis.MapStringStringCmd
	}
	cmds := make([]userCmds, len(tags))
	batches(len(tags), func(lo, hi int) {
		pipe(tb, ctx, rdb, func(p redis.Pipeliner) {
			for i := lo; i < hi; i++ {
				base := prefix + "{" + tags[i] + "}:"
				cmds[i].act = p.HKeys(ctx, base+"act")
				cmds[i].ret = p.HKeys(ctx, base+"ret")
				cmds[i].idx = p.ZRangeWithScores(ctx, base+"idx", 0, -1)
				cmds[i].rev = p.HGetAll(ctx, base+"rev")
			}
		})
	})
	var ids []uuid.UUID
	sessionID := func(tagHex, m string) (uuid.UUID, bool) {
		var t sessionid.Tag
		b, _ := hex.DecodeString(tagHex)
		copy(t[:], b)
		id, ok := sessionid.FromMember(t, m)
		if !ok {
			fail("tag %s: member %q does not name a session id", tagHex, m)
		}
		return id, ok
	}
	for i, tagHex := range tags {
		for _, m := range append(cmds[i].act.Val(), cmds[i].ret.Val()...) {
			if id, ok := sessionID(tagHex, m); ok {
				ids = append(ids, id)
			}
		}
	}
	sessions := readSessions(tb, ctx, f, ids)

	now := time.Now().UnixMilli()
	for i, tagHex := range tags {
		c := cmds[i]
		rev := c.rev.Val()
		idx := map[string]int64{}
		for _, z := range c.idx.Val() {
			if z.Score < 0 { // a recent sign-in's device or country, not a session
				continue
			}
			idx[z.Member.(string)] = int64(z.Score)
		}
		active := map[string]bool{}
		var owner uuid.UUID
		live := 0
		for _, m := range c.act.Val() {
			active[m] = true
			id, ok := sessionID(tagHex, m)
			if !ok {
				continue
			}
			if _, ok := rev[m]; ok {
				fail("tag %s: active session %s has a revocation record", tagHex, id)
			}
			s, ok := sessions[id]
			if !ok {
				continue // expired between SCAN and the read
			}
			owner = s.UserID
			dl := s.ExpiresAt.UnixMilli()
			if s.IdleTimeout > 0 {
				dl = min(dl, s.LastActivityAt.Add(s.IdleTimeout).UnixMilli())
			}
			score, listed := idx[m]
			switch {
			case !listed:
				fail("user %s: active session %s is missing from the index", s.UserID, id)
			case score != dl:
				fail("user %s: session %s has index score %d, want its deadline %d", s.UserID, id, score, dl)
			case dl > now:
				live++
				out.active[id] = s.UserID
			}
		}
		for m, dl := range idx {
			// A member whose deadline passed may outlive the active
			// sessions' hash: the index lives on while it keeps recent
			// sign-ins, until the user's next write rebuilds it.
			if !active[m] && dl > now {
				fail("tag %s: index member %s is not an active session", tagHex, m)
			}
		}
		for _, m := range c.ret.Val() {
			id, ok := sessionID(tagHex, m)
			if !ok {
				continue
			}
			if active[m] {
				fail("tag %s: session %s is both active and retired", tagHex, id)
			}
			if reason, ok := rev[m]; ok {
				_, why, _ := strings.Cut(reason, "|")
				out.revoked[id] = why
			}
		}
		if limitOf != nil && owner != uuid.Nil {
			if lim := limitOf(owner); lim != sessionkit.Unlimited && live > lim {
				fail("user %s holds %d active sessions, over the limit %d", owner, live, lim)
			}
		}
	}
	return out
}

// readSessions reads the sessions ids through the Manager, 16 at a time;
// sessions gone meanwhile are left out.
func readSessions(tb testing.TB, ctx context.Context, f *fixture, ids []uuid.UUID) map[uuid.UUID]sessionkit.Session {
	tb.Helper()
	out := make(map[uuid.UUID]sessionkit.Session, len(ids))
	var mu sync.Mutex
	var firstErr error
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(ids); i = int(next.Add(1)) - 1 {
				s, err := f.M.Session(ctx, ids[i])
				mu.Lock()
				switch {
				case err == nil:
					out[ids[i]] = s
				case !errors.Is(err, sessionkit.ErrNotFound) && firstErr == nil:
					firstErr = fmt.Errorf("session %s: %w", ids[i], err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	return out
}

// batches calls fn on consecutive ranges of at most 1000 of n items.
func batches(n int, fn func(lo, hi int)) {
	for lo := 0; lo < n; lo += 1000 {
		fn(lo, min(lo+1000, n))
	}
}

// pipe runs the commands fn queues in one pipeline, failing the test on
// any error but a missing value.
func pipe(tb testing.TB, ctx context.Context, rdb redis.UniversalClient, fn func(p redis.Pipeliner)) {
	tb.Helper()
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		tb.Fatalf("pipeline: %v", err)
	}
}

// verifySessions authenticates every session the model tracks and checks
// the answer against the model: active ones are served, revoked ones are
// refused with the recorded reason, uncertain ones either way. It returns
// the number of sessions checked.
func verifySessions(tb testing.TB, f *fixture, m *model) int {
	tb.Helper()
	var problems []string
	list := m.snapshotList()
	for _, s := range list {
		err := f.auth(s.token)
		var re *sessionkit.RevokedError
		switch s.st {
		case stActive:
			if err != nil {
				problems = append(problems, fmt.Sprintf("active session %s: got %v, want served", s.id, err))
			}
		case stRevoked:
			if !errors.As(err, &re) || re.Reason != s.reason {
				problems = append(problems, fmt.Sprintf("revoked session %s: got %v, want refused with reason %q", s.id, err, s.reason))
			}
		case stUncertain:
			if err != nil && !errors.As(err, &re) {
				problems = append(problems, fmt.Sprintf("session %s (revocation outcome unknown): got %v, want served or revoked", s.id, err))
			}
		default:
			problems = append(problems, fmt.Sprintf("session %s left %v", s.id, s.st))
		}
		if len(problems) >= 30 {
			break
		}
	}
	if len(problems) > 0 {
		tb.Errorf("after the run:\n%s", strings.Join(problems, "\n"))
	}
	return len(list)
}
