package faulttest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// fuzzEnv is the one Manager a fuzzing process drives: it lives as long as
// the process, on its own key prefix of the shared server, with a pool of
// real sessions of one user that the fuzzed commands may target.
type fuzzEnv struct {
	m     *sessionkit.Manager
	rdb   *redis.Client
	keys  rediskey.Keys
	user  uuid.UUID
	mu    sync.Mutex
	pool  []sessionkit.CreateSessionResult
	ready error
}

var (
	fuzzOnce sync.Once
	fuzzE    fuzzEnv
)

func fuzzSetup(tb testing.TB) *fuzzEnv {
	tb.Helper()
	srv := sharedServer(tb)
	fuzzOnce.Do(func() {
		e := &fuzzE
		e.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		prefix := fmt.Sprintf("t:FuzzCommands:%06x:", rand.Uint32()&0xffffff)
		if e.keys, e.ready = rediskey.New(prefix); e.ready != nil {
			return
		}
		f, err := sessiontest.Build(sessiontest.Options{Client: e.rdb, Prefix: prefix, RealTime: true}, withAppLogger(nil)...)
		if e.ready = err; err != nil {
			return
		}
		e.m = f.M
		e.user = uuid.New()
	})
	if fuzzE.ready != nil {
		tb.Fatal(fuzzE.ready)
	}
	return &fuzzE
}

// refill keeps at least three active sessions of the fuzz user in the pool.
func (e *fuzzEnv) refill(tb testing.TB, ctx context.Context) {
	tb.Helper()
	for len(e.pool) < 3 {
		res, err := e.m.CreateSession(ctx, sessionkit.CreateSession{UserID: e.user, IPAddress: testIP, UserAgent: testUA})
		if err != nil {
			tb.Fatalf("CreateSession for the pool: %v", err)
		}
		e.pool = append(e.pool, res)
	}
}

// fuzzUUID makes a UUID of up to 16 fuzzed bytes.
func fuzzUUID(b []byte) uuid.UUID {
	var id uuid.UUID
	copy(id[:], b)
	return id
}

// fuzzFields names the fields each operation may reject as invalid.
var fuzzFields = [][]string{
	{"UserID", "IPAddress", "ExpiresAt", "RefreshTokenID", "Limit"}, // CreateSession
	{"SessionID", "UserID", "Reason"},                               // RevokeSession
	{"UserID", "Reason", "ExceptSessionID"},                         // RevokeAllUserSessions
	{"SessionID", "IPAddress"},                                      // UpdateSessionActivity
	{"SessionID", "ProviderName"},                                   // RecordProviderAccess
	{"SessionID", "RefreshTokenID"},                                 // LinkRefreshTokenToSession
	{},                                                              // Authenticate
	{"UserID", "Limit", "Before"},                                   // queries
	{},                                                              // index damage, then a command the index decides
}

// FuzzCommands executes the six commands, the hot path and the queries with
// fuzzed fields against a real Redis. Each call either succeeds or answers
// cleanly (ErrInvalid naming one of the command's fields, ErrNotFound,
// ErrRevoked or ErrExpired): never a panic, never ErrUnavailable or another
// error, and never a corrupted state: after every call the user's keys all
// have TTLs, the index lists exactly the live sessions, and the pool's
// sessions are revoked only by a command that may revoke them.
//
// real makes the command target the pool's user and one of its sessions
// (by pick) instead of the fuzzed ids, so fuzzed text reaches the scripts.
func FuzzCommands(f *testing.F) {
	f.Add(uint8(0), uint8(0), true, []byte{}, []byte{}, testUA, testIP, int64(0))
	f.Add(uint8(0), uint8(1), true, []byte{}, []byte{}, "rt-1", "[2001:db8::1%eth0]:443", int64(3600_000))
	f.Add(uint8(1), uint8(0), true, []byte{}, []byte{}, "revoked_by_user", "", int64(0))
	f.Add(uint8(2), uint8(1), true, []byte{}, []byte{}, "logout_everywhere", "", int64(0))
	f.Add(uint8(3), uint8(2), true, []byte{}, []byte{}, "", "::ffff:198.51.100.1", int64(0))
	f.Add(uint8(4), uint8(0), true, []byte{}, []byte{}, "schwab", "", int64(0))
	f.Add(uint8(5), uint8(0), true, []byte{}, []byte{}, "rt-2", "", int64(0))
	f.Add(uint8(6), uint8(0), true, []byte{}, []byte{}, "", "", int64(0))
	f.Add(uint8(7), uint8(3), true, []byte{}, []byte{}, "1-0", "", int64(0))
	f.Add(uint8(1), uint8(0), false, []byte("0123456789abcdef"), []byte("fedcba9876543210"), "x", "", int64(0))
	// another user's only session, reaching its deadline while the call's checks run
	f.Add(uint8(0), uint8(0), false, []byte{}, []byte("fedcba9876543210"), testUA, testIP, int64(3))
	// a stray index member and a missing real one, then sign out everywhere else, or a login
	f.Add(uint8(8), uint8(1), true, []byte("0123456789abcdef"), []byte{}, "password_changed", "", int64(0))
	f.Add(uint8(8), uint8(2), false, []byte("0123456789abcdef"), []byte{}, "password_changed", testIP, int64(0))

	f.Fuzz(func(t *testing.T, op, pick uint8, real bool, sid, uid []byte, text, ip string, expiresMs int64) {
		e := fuzzSetup(t)
		e.mu.Lock() // the pool is shared by the inputs one process runs
		defer e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.refill(t, ctx)

		sessionID, userID := fuzzUUID(sid), fuzzUUID(uid)
		target := -1
		if real {
			target = int(pick) % len(e.pool)
			sessionID, userID = e.pool[target].Session.ID, e.user
		}
		m := e.m
		op %= uint8(len(fuzzFields))
		var err error
		mayRevoke := false // whether this call may revoke pool sessions
		switch op {
		case 0:
			cmd := sessionkit.CreateSession{UserID: userID, IPAddress: ip, UserAgent: text}
			if expiresMs != 0 {
				cmd.ExpiresAt = m.Now().Add(time.Duration(expiresMs) * time.Millisecond)
			}
			if pick&1 == 1 {
				cmd.RefreshTokenID = text
			}
			var res sessionkit.CreateSessionResult
			res, err = m.CreateSession(ctx, cmd)
			mayRevoke = true // evictions at the limit
			if err == nil && userID == e.user && cmd.ExpiresAt.IsZero() {
				e.pool = append(e.pool, res)
			}
		case 1:
			_, err = m.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: sessionID, UserID: userID, Reason: text})
			mayRevoke = true
		case 2:
			cmd := sessionkit.RevokeAllUserSessions{UserID: userID, Reason: text}
			if pick&1 == 1 {
				cmd.ExceptSessionID = sessionID
			}
			_, err = m.RevokeAllUserSessions(ctx, cmd)
			mayRevoke = true
		case 3:
			_, err = m.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: sessionID, IPAddress: ip})
		case 4:
			_, err = m.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: sessionID, ProviderName: text})
		case 5:
			_, err = m.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: sessionID, RefreshTokenID: text})
		case 6:
			tok := text
			if real {
				tok = e.pool[target].Token
				if pick&1 == 1 && len(text) > 0 { // a real token with fuzzed bytes spliced in
					i := int(pick) % len(tok)
					tok = tok[:i] + text + tok[min(len(tok), i+len(text)):]
				}
			}
			addr, _ := netip.ParseAddr(ip)
			var res sessionkit.UpdateSessionActivityResult
			res, err = m.Authenticate(ctx, tok, addr)
			if err == nil && res.Session.UserID != e.user {
				t.Fatalf("Authenticate served session %s of user %s, not of the pool's user", res.Session.ID, res.Session.UserID)
			}
		case 7:
			switch pick % 3 {
			case 0:
				_, err = m.ListUserSessions(ctx, userID, sessionkit.ListOptions{IncludeRevoked: real})
			case 1:
				_, err = m.UserSession(ctx, userID, sessionID)
			case 2:
				_, err = m.Events(ctx, userID, sessionkit.EventQuery{Before: text, Limit: int(expiresMs % 1000)})
			}
		case 8:
			// Mixed damage keeps the counts equal: the command, whose
			// outcome the index decides, must repair it by its members.
			idx := e.keys.ForUser(e.user).Index
			if len(e.pool) > 0 {
				victim := sessionid.Member(e.pool[int(pick)%len(e.pool)].Session.ID)
				score := e.rdb.ZScore(ctx, idx, victim).Val()
				var stray [8]byte
				copy(stray[:], sid)
				e.rdb.ZRem(ctx, idx, victim)
				e.rdb.ZAdd(ctx, idx, redis.Z{Score: score, Member: hex.EncodeToString(stray[:])})
			}
			if real {
				var res sessionkit.RevokeAllUserSessionsResult
				// Valid input, so that the script runs and must repair the
				// index: the fuzzed parts are the victim and the stray member.
				res, err = m.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: e.user, Reason: "password_changed", ExceptSessionID: sessionID})
				if err == nil {
					// Every other pooled session is revoked, the kept one is
					// not; the user may have others, outside the pool.
					revoked := map[uuid.UUID]bool{}
					for _, id := range res.SessionIDs {
						revoked[id] = true
					}
					for _, p := range e.pool {
						if kept := p.Session.ID == sessionID; revoked[p.Session.ID] == kept {
							t.Errorf("sign out everywhere else over a damaged index: session %s (kept %v) revoked %v; revoked %v",
								p.Session.ID, kept, revoked[p.Session.ID], res.SessionIDs)
						}
					}
				}
			} else {
				var res sessionkit.CreateSessionResult
				res, err = m.CreateSession(ctx, sessionkit.CreateSession{UserID: e.user, IPAddress: testIP, UserAgent: text})
				if err == nil {
					e.pool = append(e.pool, res)
				}
			}
			mayRevoke = true
		}
		checkAnswer(t, op, err)
		e.checkPool(t, ctx, mayRevoke)
		e.checkUser(t, ctx, e.user)
		if userID != e.user && userID != uuid.Nil {
			e.checkUser(t, ctx, userID)
		}
	})
}

// checkAnswer fails the test unless err is nil or a clean refusal.
func checkAnswer(t *testing.T, op uint8, err error) {
	t.Helper()
	switch kind(err) {
	case "ok", "not_found", "revoked", "expired":
	case "invalid":
		named := false
		for _, field := range fuzzFields[op] {
			named = named || strings.Contains(err.Error(), "invalid input: "+field+":")
		}
		if !named {
			t.Fatalf("operation %d: ErrInvalid that names none of %v: %v", op, fuzzFields[op], err)
		}
	default:
		t.Fatalf("operation %d: got %v, want success or a clean refusal", op, err)
	}
}

// checkPool authenticates every pooled session: each must still be served,
// unless the call may revoke sessions, in which case revoked ones leave the pool.
func (e *fuzzEnv) checkPool(t *testing.T, ctx context.Context, mayRevoke bool) {
	t.Helper()
	live := e.pool[:0]
	for _, s := range e.pool {
		_, err := e.m.Authenticate(ctx, s.Token, testAddr)
		switch {
		case err == nil:
			live = append(live, s)
		case mayRevoke && errors.Is(err, sessionkit.ErrRevoked):
		default:
			t.Fatalf("pooled session %s after the call: got %v, want served", s.Session.ID, err)
		}
	}
	e.pool = live
}

// checkUser checks user's keys directly in Redis: each has a TTL, the index
// lists exactly the active sessions, and no active session is recorded
// revoked. It reads them all in one MULTI/EXEC: Redis (7.0 and later) takes
// one time snapshot for a transaction, so keys that expire together (a
// user's last session reaching its deadline) are seen all present or all
// gone, as the scripts see them.
func (e *fuzzEnv) checkUser(t *testing.T, ctx context.Context, user uuid.UUID) {
	t.Helper()
	u := e.keys.ForUser(user)
	keys := []string{u.Active, u.Index, u.Retained, u.All, u.Revoked, u.Owners, u.Events, u.Limit, u.Seen}
	ttls := make([]*redis.DurationCmd, len(keys))
	var idxCmd *redis.ZSliceCmd
	var activeCmd, retiredCmd, revokedCmd *redis.StringSliceCmd
	_, err := e.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			ttls[i] = p.PTTL(ctx, k)
		}
		// Sessions' deadlines are above zero; the recent sign-ins below.
		idxCmd = p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: u.Index, Start: "0", Stop: "+inf", ByScore: true})
		activeCmd = p.HKeys(ctx, u.Active)
		retiredCmd = p.HKeys(ctx, u.Retained)
		revokedCmd = p.HKeys(ctx, u.Revoked)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if ttl := ttls[i].Val(); ttl == -1 {
			t.Fatalf("key %s: PTTL %v; want a TTL or no key", k, ttl)
		}
	}
	active := activeCmd.Val()
	// The index lives on while it keeps recent sign-ins: members whose
	// deadline passed may outlive the active sessions' hash, until the
	// user's next write rebuilds the index.
	var idx []string
	now := float64(e.m.Now().UnixMilli())
	for _, z := range idxCmd.Val() {
		if m := z.Member.(string); z.Score > now || slices.Contains(active, m) {
			idx = append(idx, m)
		}
	}
	slices.Sort(idx)
	slices.Sort(active)
	if !slices.Equal(idx, active) {
		t.Fatalf("index %v, active sessions %v", idx, active)
	}
	tag := sessionid.TagOf(user)
	for _, m := range active {
		id, ok := sessionid.FromMember(tag, m)
		if !ok {
			t.Fatalf("active member %q is not a session id", m)
		}
		if slices.Contains(retiredCmd.Val(), m) || slices.Contains(revokedCmd.Val(), m) {
			t.Fatalf("active session %s is recorded revoked or retired", id)
		}
	}
}

// TestCheckUserAcrossExpiry runs FuzzCommands' consistency check while a
// user's only session reaches its deadline: the user's keys expire then, and
// the check must see them all before or all after, never half.
func TestCheckUserAcrossExpiry(t *testing.T) {
	e := fuzzSetup(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		user := uuid.New()
		_, err := e.m.CreateSession(ctx, sessionkit.CreateSession{
			UserID: user, IPAddress: testIP, UserAgent: testUA,
			ExpiresAt: e.m.Now().Add(20 * time.Millisecond),
		})
		if err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(40 * time.Millisecond); time.Now().Before(end); {
			e.checkUser(t, ctx, user)
		}
		if n, err := e.rdb.Exists(ctx, e.keys.ForUser(user).Active).Result(); err != nil || n != 0 {
			t.Fatalf("the active sessions 40 ms after a 20 ms session: %d keys, %v; want none", n, err)
		}
	}
}
