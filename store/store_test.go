package store_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/announce"
	"github.com/sessionkit/sessionkit/internal/redistest"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/store"
)

// The Manager's behaviour is tested in the root package (manager_test.go);
// these tests are of what the store keeps in Redis: keys, scripts, memory
// and announcements.

func TestTokenHashedAtRest(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		res := f.Login(t, uuid.New())
		secret := res.Token[37:]
		for _, k := range f.Keys(t) {
			dump, err := b.Client.Dump(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(dump, secret) || strings.Contains(dump, res.Token) {
				t.Errorf("key %s holds the raw secret", k)
			}
		}
	})
}

// signInAndRefresh signs user in with a bearer session and, a minute
// later, refreshes it once.
func signInAndRefresh(t *testing.T, f *sessiontest.Fixture, user uuid.UUID) (sessionkit.CreateSessionResult, sessionkit.RefreshSessionResult) {
	t.Helper()
	login, err := f.M.CreateSession(t.Context(), sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Minute)
	next, err := f.M.RefreshSession(t.Context(), sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	return login, next
}

// sealInRecord moves the sealed refresh secret of session id, of user,
// from the grace window's key into the session's record, where builds
// before that key kept it, and returns the record's key, member and
// fields.
func sealInRecord(t *testing.T, f *sessiontest.Fixture, user, id uuid.UUID) (key, member string, fields []string) {
	t.Helper()
	ctx := t.Context()
	seal := f.KeyNames(t).ForUser(user).Seal
	key, member = f.KeyNames(t).Active(id)
	entry, err := f.Client.HGet(ctx, seal, member).Result()
	if err != nil {
		t.Fatalf("the grace window's key holds no entry for the session: %v", err)
	}
	v, err := f.Client.HGet(ctx, key, member).Result()
	if err != nil {
		t.Fatal(err)
	}
	fields = strings.Split(v, "\x1f")
	if fields[store.FieldRefreshSealed] != "" {
		t.Fatalf("the record holds a sealed secret: %q", fields[store.FieldRefreshSealed])
	}
	fields[store.FieldRefreshSealed] = entry[strings.LastIndexByte(entry, '|')+1:]
	if err := f.Client.HSet(ctx, key, member, strings.Join(fields, "\x1f")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.Client.Del(ctx, seal).Err(); err != nil {
		t.Fatal(err)
	}
	return key, member, fields
}

// TestClearSealedRefreshSecrets: the upgrade step clears the sealed
// secrets records written by earlier builds hold, on every master, and
// nothing else: the sessions go on refreshing, and every key keeps its
// expiry.
func TestClearSealedRefreshSecrets(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}))
		var current []string
		for range 3 { // users whose tags fall on different masters of the cluster
			user := uuid.New()
			f.Login(t, user) // a cookie session beside: nothing to clear
			login, next := signInAndRefresh(t, f, user)
			key, member, _ := sealInRecord(t, f, user, login.Session.ID)
			before, err := f.Client.HGet(ctx, key, member).Result()
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				after, err := f.Client.HGet(ctx, key, member).Result()
				if err != nil || len(after) >= len(before) || strings.Split(after, "\x1f")[store.FieldRefreshSealed] != "" {
					t.Errorf("record after the step: %q %v; want it without the sealed secret", after, err)
				}
			}()
			current = append(current, next.Tokens.RefreshToken)
		}
		if n, err := f.Store.ClearSealedRefreshSecrets(ctx); err != nil || n != 3 {
			t.Fatalf("ClearSealedRefreshSecrets: %d %v, want 3 cleared", n, err)
		}
		if n, err := f.Store.ClearSealedRefreshSecrets(ctx); err != nil || n != 0 {
			t.Errorf("run again: %d %v, want none", n, err)
		}
		f.CheckTTLs(t)
		f.Clock.Advance(time.Minute)
		for _, rt := range current {
			if _, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: rt}); err != nil {
				t.Errorf("refresh after the step: %v", err)
			}
		}
	})
}

// TestClearSealedRefreshSecretsNeedsMasters: the upgrade step walks every
// master, which a Ring (or another UniversalClient) does not name: it is
// refused, and nothing is read or written.
func TestClearSealedRefreshSecretsNeedsMasters(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": backends[0].Addrs[0]}})
	defer ring.Close()
	st, err := store.NewRedis(ring, store.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.ClearSealedRefreshSecrets(t.Context()); !errors.Is(err, store.ErrUnsupported) || n != 0 {
		t.Errorf("over a Ring: %d, %v; want 0 and ErrUnsupported", n, err)
	}
}

// TestRefreshGraceFromAnEarlierBuild: a rotation written by a build that
// kept the sealed secret in the session's record, not in the grace
// window's key, still hands the current token out within the window, so a
// rolling deploy refuses no client racing its own refresh.
func TestRefreshGraceFromAnEarlierBuild(t *testing.T) {
	b := backends[0]
	ctx := t.Context()
	f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: 10 * time.Second}))
	user := uuid.New()
	login, next := signInAndRefresh(t, f, user)
	key, member, fields := sealInRecord(t, f, user, login.Session.ID)
	f.Clock.Advance(time.Second)
	again, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken})
	if err != nil || again.Rotated || again.Tokens.RefreshToken != next.Tokens.RefreshToken {
		t.Errorf("within the window, from the record: got %+v %v, want the current token again", again, err)
	}
	// With neither (the key expired by Redis's clock before this
	// instance's window ended): refused as unknown, not revoked.
	fields[store.FieldRefreshSealed] = ""
	if err := b.Client.HSet(ctx, key, member, strings.Join(fields, "\x1f")).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: login.Tokens.RefreshToken}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Errorf("within the window, nothing sealed: got %v, want ErrNotFound", err)
	}
	if _, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: next.Tokens.RefreshToken}); err != nil {
		t.Errorf("the current token after that: %v, want it to work", err)
	}
}

// TestRefreshFamilyHashedAtRest: a bearer session keeps its refresh
// token family as a hash, in the record's last field, stored as a token
// hash is (22 characters): neither the family secret nor any refresh
// token's secret is in Redis.
func TestRefreshFamilyHashedAtRest(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}))
		login, next := signInAndRefresh(t, f, uuid.New())
		var secrets []string // family, then secret, of each token
		for _, rt := range []string{login.Tokens.RefreshToken, next.Tokens.RefreshToken} {
			parts := strings.Split(rt, ".")
			if len(parts) != 4 {
				t.Fatalf("refresh token %q: %d parts, want 4", rt, len(parts))
			}
			secrets = append(secrets, parts[2], parts[3])
		}
		for _, k := range f.Keys(t) {
			dump, err := b.Client.Dump(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range secrets {
				if strings.Contains(dump, secret) {
					t.Errorf("key %s holds a refresh token's secret or family", k)
				}
			}
		}
		key2, member := f.KeyNames(t).Active(login.Session.ID)
		v, err := b.Client.HGet(ctx, key2, member).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range secrets { // DUMP may compress: the record itself, too
			if strings.Contains(v, secret) {
				t.Errorf("the record holds a refresh token's secret or family")
			}
		}
		if last := v[strings.LastIndexByte(v, 0x1f)+1:]; len(last) != 22 {
			t.Errorf("the record's last field %q: %d characters, want the family's hash in 22", last, len(last))
		}
	})
}

func TestScriptFlushRecovers(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		res := f.Login(t, uuid.New())
		if err := sessiontest.ForEachMaster(ctx, b.Client, func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.Authenticate(ctx, res.Token, netip.Addr{}); err != nil {
			t.Fatalf("after SCRIPT FLUSH: %v", err)
		}
		f.Login(t, uuid.New())
	})
}

// TestMemoryPerSession sums MEMORY USAGE over every key of users holding
// 1, 3 and 20 sessions (audit trail and new-device history included) and
// guards the figures against regressions. MEMORY USAGE leaves out the
// keyspace's own overhead (its expiry entries and tables), which the cost
// table of `make bench` includes, measured as INFO used_memory grows.
func TestMemoryPerSession(t *testing.T) {
	// The bounds sit about 10% over what this layout measures with a
	// Chrome User-Agent (713-761, 520-536 and 412-414 bytes per session,
	// one node and Cluster). Before the trail stored event types as one
	// letter it measured 729-777, 541-557 and 437-440; before the index
	// named devices by a print 745-793 at one session per user; before records left out their creation time
	// (while it is the last activity), their trailing empty fields and half
	// the token hash's text it measured 777-825, 573-589 and 469-472; before
	// a trail of one entry became a string 857-905 at one session per
	// user; before the recent
	// sign-ins moved into the index 956-1,020, 606-628 and 476-479; before sessions
	// were stored compactly (the User-Agent packed, fields at their
	// defaults left empty) 1,116-1,180, 766-788 and 636-639; before the
	// trail became a list and owner records became rare, 5,834-5,930,
	// 2,312-2,344 and 843-852.
	rows := []struct{ perUser, users, max int }{{1, 20, 840}, {3, 10, 590}, {20, 3, 460}}
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		for _, row := range rows {
			f := sessiontest.New(t, sessiontest.Options{Client: b.Client, Prefix: "sk:" + uuid.NewString()[:4] + ":"},
				sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
			for range row.users {
				u := uuid.New()
				for range row.perUser {
					f.Login(t, u)
				}
			}
			var total int64
			for _, k := range f.Keys(t) {
				n, err := b.Client.MemoryUsage(ctx, k, 0).Result()
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			// The bounds are for the default three-byte prefix: take away
			// what the longer test prefix adds to every key name.
			extra := int64(len(f.Prefix)-len("sk:")) * int64(len(f.Keys(t)))
			per := (total - extra) / int64(row.users*row.perUser)
			t.Logf("%2d sessions per user: MEMORY USAGE %d bytes per session, every key of the user included", row.perUser, per)
			if per > int64(row.max) {
				t.Errorf("%d sessions per user: %d bytes per session, want at most %d", row.perUser, per, row.max)
			}
		}
	})
}

// TestOneSessionKeys: a user with one session holds three keys: the
// session, its index (which also keeps the recent devices and countries)
// and the audit trail. Each key costs about 130 bytes of Redis's own
// beyond what it holds, a budget's worth for the most common user.
func TestOneSessionKeys(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		f.Login(t, uuid.New())
		keys := f.Keys(t)
		slices.Sort(keys)
		var kinds []string
		for _, k := range keys {
			kinds = append(kinds, k[strings.LastIndexByte(k, ':')+1:])
		}
		if want := []string{"act", "idx", "log"}; !slices.Equal(kinds, want) {
			t.Errorf("a user with one session holds %v, want %v", kinds, want)
		}
		// The index keeps the device signed in from as a print, not its
		// label: 16 bytes less in a one-session user's index (a 64-byte
		// listpack rather than an 80-byte one), and no label in clear.
		for _, k := range keys {
			if !strings.HasSuffix(k, ":idx") {
				continue
			}
			members := b.Client.ZRange(t.Context(), k, 0, -1).Val()
			if slices.ContainsFunc(members, func(m string) bool { return strings.Contains(m, "Chrome") }) {
				t.Errorf("the index holds a device label in clear: %q", members)
			}
		}
	})
}

// TestStoredSessionIsCompact: a session signed in from one of the common
// browsers fits in a Redis allocation of 192 bytes (a string's header and
// terminator included), and reads back exactly as it was created. The
// User-Agent is most of a session's length and most of it is shared by
// every browser of its family.
func TestStoredSessionIsCompact(t *testing.T) {
	const maxStored = 192 - 3 - 1 // jemalloc's 192-byte class, less the sds header and terminator
	uas := []string{
		sessiontest.ChromeMac,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	}
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		keys := f.KeyNames(t)
		for _, ua := range uas {
			res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: uuid.New(), IPAddress: sessiontest.LoginIP, UserAgent: ua})
			if err != nil {
				t.Fatal(err)
			}
			key, member := keys.Active(res.Session.ID)
			v, err := b.Client.HGet(ctx, key, member).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(v) > maxStored {
				t.Errorf("%.40s...: stored in %d bytes, want at most %d", ua, len(v), maxStored)
			}
			if got := f.Session(t, res.Session.ID); !reflect.DeepEqual(got, res.Session) {
				t.Errorf("%.40s...: read back\n%+v\nwant\n%+v", ua, got, res.Session)
			}
		}
	})
}

func TestRevocationsAreAnnounced(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(2)))
		sub := b.Client.Subscribe(ctx, f.Store.Channel())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // subscription confirmed
			t.Fatal(err)
		}
		user := uuid.New()
		a := f.Login(t, user)
		f.Clock.Advance(time.Millisecond)
		b2 := f.Login(t, user)
		f.Clock.Advance(time.Millisecond)
		c := f.Login(t, user) // evicts a, the one that expires first
		f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: b2.Session.ID, UserID: user, Reason: "logout"})
		f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_everywhere"})
		want := []uuid.UUID{a.Session.ID, b2.Session.ID, c.Session.ID}
		for i, w := range want {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			msg, err := sub.ReceiveMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("announcement %d: %v", i, err)
			}
			got := announce.Parse(msg.Payload)
			if len(got) != 1 || got[0] != w {
				t.Errorf("announcement %d: got %v, want [%v]", i, got, w)
			}
		}
	})
}

// TestFirstLoginWritesWhatAnyLoginWrites: create.lua answers a user with
// nothing stored by a shorter path; what it stores must be what the general
// path stores for a user with nothing but a limit override (which takes
// the general path), key by key, expiries included.
func TestFirstLoginWritesWhatAnyLoginWrites(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		keys := f.KeyNames(t)
		// state is what a user's keys hold, with the user's own names (its
		// session's member and id, its print in the trail) made neutral.
		state := func(user uuid.UUID, s sessionkit.Session) map[string]string {
			u := keys.ForUser(user)
			member := sessionid.Member(s.ID)
			sum := sha1.Sum([]byte(user.String()))
			neutral := strings.NewReplacer(member, "<member>", user.String(), "<user>", hex.EncodeToString(sum[:8]), "<print>")
			out := map[string]string{}
			for name, k := range map[string]string{"act": u.Active, "idx": u.Index, "ret": u.Retained, "all": u.All,
				"rev": u.Revoked, "own": u.Owners, "log": u.Events, "seen": u.Seen, "data": u.Data} {
				typ, err := b.Client.Type(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				var v any
				switch typ {
				case "hash":
					m := b.Client.HGetAll(ctx, k).Val()
					if rec, ok := m[member]; ok && name == "act" { // the token hashes differ
						m[member] = strings.Join(slices.Delete(strings.Split(rec, "\x1f"), 1, 2), "\x1f")
					}
					v = m
				case "zset":
					v = b.Client.ZRangeWithScores(ctx, k, 0, -1).Val()
				case "list":
					v = b.Client.LRange(ctx, k, 0, -1).Val()
				}
				at, _ := b.Client.PExpireTime(ctx, k).Result()
				out[name] = neutral.Replace(fmt.Sprintf("%s %v expires %v", typ, v, at))
			}
			return out
		}
		for _, by := range []string{"", "support (carol)"} {
			login := func(user uuid.UUID) sessionkit.Session {
				res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP,
					UserAgent: sessiontest.ChromeMac, ImpersonatedBy: by})
				if err != nil {
					t.Fatal(err)
				}
				return res.Session
			}
			fresh, general := uuid.New(), uuid.New()
			if err := f.M.SetUserLimit(ctx, general, 5); err != nil {
				t.Fatal(err)
			}
			got, want := state(fresh, login(fresh)), state(general, login(general))
			for k, w := range want {
				if got[k] != w {
					t.Errorf("impersonated by %q: %s after a first login:\n got %s\nwant %s (the general path)", by, k, got[k], w)
				}
			}
		}
	})
}

// TestActivityWriteMovesOnlyWhatChanges: the common activity write (the
// throttle passed, the same address, no activity events) stores the new
// last activity. Without an idle timeout a session's deadline is its
// expiry, which activity cannot move, so that is the only write; with one,
// the deadline moves, and the index and the keys' expiry with it (the
// session's, the data's, the owner records' and the trail's).
func TestActivityWriteMovesOnlyWhatChanges(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		for _, idle := range []time.Duration{0, time.Hour} {
			// The write on the request path, whose commands this test counts.
			opts := []sessionkit.Option{sessionkit.WithActivityWriteDelay(0)}
			want := map[string]int64{"hset": 1}
			if idle > 0 {
				opts = append(opts, sessionkit.WithIdleTimeout(idle))
				want = map[string]int64{"hset": 1, "zadd": 1, "pexpireat": 5}
			}
			f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, opts...)
			res := f.Login(t, uuid.New())
			keys := f.KeyNames(t)
			act := keys.ForSession(res.Session.ID).Active
			expiry := b.Client.PExpireTime(ctx, act).Val()
			f.Clock.Advance(2 * time.Minute)
			before := writeCalls(t, b)
			got, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(sessiontest.LoginIP))
			if err != nil {
				t.Fatal(err)
			}
			after := writeCalls(t, b)
			for cmd := range after {
				after[cmd] -= before[cmd]
				if after[cmd] == 0 {
					delete(after, cmd)
				}
			}
			if !maps.Equal(after, want) {
				t.Errorf("idle timeout %v: write commands %v, want %v", idle, after, want)
			}
			if !got.Session.LastActivityAt.Equal(f.Clock.Now().Truncate(time.Millisecond)) {
				t.Errorf("idle timeout %v: last activity %v, want %v", idle, got.Session.LastActivityAt, f.Clock.Now())
			}
			if stored := f.Session(t, res.Session.ID); !stored.LastActivityAt.Equal(got.Session.LastActivityAt) {
				t.Errorf("idle timeout %v: stored last activity %v, want %v", idle, stored.LastActivityAt, got.Session.LastActivityAt)
			}
			moved := b.Client.PExpireTime(ctx, act).Val()
			if idle == 0 && moved != expiry {
				t.Errorf("no idle timeout: the session's expiry moved from %v to %v", expiry, moved)
			}
			if idle > 0 && moved < time.Duration(got.Session.LastActivityAt.Add(idle).UnixMilli())*time.Millisecond {
				t.Errorf("idle timeout %v: the keys expire at %v, before the new idle deadline", idle, moved)
			}
		}
	})
}

// writeCalls counts the write commands every master has served (INFO
// commandstats), by name.
func writeCalls(tb testing.TB, b sessiontest.Backend) map[string]int64 {
	tb.Helper()
	st, err := redistest.CommandStats(context.Background(), b.Client)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for name, s := range st {
		if redistest.IsWrite(name) {
			out[name] = s.Calls
		}
	}
	return out
}

// TestActivityEventNamesTheAddress: with activity events on, each activity
// write records one with the session's current address, the address at
// sign-in until it changes (stored sessions leave the last address empty
// while it is the first).
func TestActivityEventNamesTheAddress(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithActivityEvents(true))
		user := uuid.New()
		res := f.Login(t, user)
		for _, ip := range []string{sessiontest.LoginIP, "198.51.100.20", "198.51.100.20"} {
			f.Clock.Advance(2 * time.Minute)
			if _, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(ip)); err != nil {
				t.Fatal(err)
			}
			evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Type != sessionkit.EventActivity || evs[0].IPAddress != ip {
				t.Errorf("after a request from %s: newest event %+v, want activity from %s", ip, evs, ip)
			}
		}
	})
}

// TestSupportSessionEventsNameTheOperator: what a support session does is
// its operator's: the address changes and activity it records, in the trail
// and to the hooks, name them.
func TestSupportSessionEventsNameTheOperator(t *testing.T) {
	const actor = "support (carol)"
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		var mu sync.Mutex
		var hooked []sessionkit.Event
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithActivityEvents(true),
			sessionkit.WithHook(func(_ context.Context, e sessionkit.Event) {
				mu.Lock()
				defer mu.Unlock()
				hooked = append(hooked, e)
			}))
		user := uuid.New()
		res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{
			UserID: user, IPAddress: sessiontest.LoginIP, ExpiresAt: f.M.Now().Add(time.Hour), ImpersonatedBy: actor,
		})
		if err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(2 * time.Minute)
		if _, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr("198.51.100.20")); err != nil {
			t.Fatal(err)
		}
		// Then the app ends the session on a second move.
		revoke := func(sessionkit.UpdateSessionActivityResult) bool { return true }
		if _, err := f.M.AuthenticateWith(ctx, res.Token, netip.MustParseAddr("198.51.100.21"), revoke); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Fatalf("the second move: got %v, want revoked", err)
		}
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.M.Close(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, list := range [][]sessionkit.Event{evs, hooked} {
			n := 0
			for _, e := range list {
				if e.Type != sessionkit.EventIPChanged && e.Type != sessionkit.EventActivity && e.Type != sessionkit.EventRevoked {
					continue
				}
				if n++; e.Actor != actor {
					t.Errorf("%s event: actor %q, want %q", e.Type, e.Actor, actor)
				}
			}
			if n != 4 {
				t.Errorf("got %d address, activity and revocation events, want 4: %+v", n, list)
			}
		}
	})
}

// TestActivityWriteKeepsOwnersAndTrail: with an idle timeout, each
// activity write moves the session's deadline, and every key that must
// outlive it moves too: the owner records (kept here by a support
// session; when they go, the support session counts toward the user's
// limit) and the audit trail (kept the retention past the deadline), on
// the request path and through the queued writes alike.
func TestActivityWriteKeepsOwnersAndTrail(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		for _, delay := range []time.Duration{0, time.Millisecond} {
			ctx := t.Context()
			const retention = time.Hour
			f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithIdleTimeout(30*time.Minute),
				sessionkit.WithAuditRetention(retention), sessionkit.WithActivityWriteDelay(delay))
			user := uuid.New()
			res := f.Login(t, user)
			if _, err := f.M.CreateSession(ctx, sessionkit.CreateSession{
				UserID: user, IPAddress: sessiontest.LoginIP, ImpersonatedBy: "support (carol)",
			}); err != nil {
				t.Fatal(err)
			}
			keys := f.KeyNames(t).ForUser(user)
			for range 3 {
				f.Clock.Advance(20 * time.Minute)
				// A queued write lands before the clock moves on. The
				// writer forgets a session only once its write is sent, a
				// moment after it lands: a request in that moment finds it
				// queued and queues nothing, which only this test's clock,
				// 20 minutes on within it, makes a write due in. So the
				// request is made again until the write lands.
				for wait := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if _, err := f.M.Authenticate(ctx, res.Token, netip.MustParseAddr(sessiontest.LoginIP)); err != nil {
						t.Fatal(err)
					}
					if !f.Session(t, res.Session.ID).LastActivityAt.Before(f.Clock.Now()) {
						break
					}
					if time.Now().After(wait) {
						t.Fatalf("delay %v: the activity write did not land", delay)
					}
				}
			}
			deadline := f.Session(t, res.Session.ID).LastActivityAt.Add(30 * time.Minute)
			if !deadline.After(res.Session.LastActivityAt.Add(time.Hour)) {
				t.Fatalf("delay %v: the activity was not written: deadline %v", delay, deadline)
			}
			for key, want := range map[string]time.Time{keys.Owners: deadline, keys.Events: deadline.Add(retention)} {
				if at, err := b.Client.PExpireTime(ctx, key).Result(); err != nil || at.Milliseconds() < want.UnixMilli() {
					t.Errorf("delay %v: %s expires at %d, %v; want at or after %d", delay, key, at.Milliseconds(), err, want.UnixMilli())
				}
			}
		}
	})
}

// TestRenewalAndRefreshKeepTheTrail: a renewal, a re-authentication and a
// refresh move an idle-timeout session's deadline, and the audit trail
// (kept the retention past the last deadline) moves with it, as it does on
// an activity write. Before, a session kept alive only by refreshes or
// renewals outlived its trail.
func TestRenewalAndRefreshKeepTheTrail(t *testing.T) {
	const idle, retention = time.Hour, time.Hour
	for _, op := range []string{"renew", "reauthenticate", "refresh"} {
		t.Run(op, func(t *testing.T) {
			ctx := t.Context()
			f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client},
				sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}),
				sessionkit.WithIdleTimeout(idle), sessionkit.WithAuditRetention(retention))
			user := uuid.New()
			login, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, Bearer: op == "refresh"})
			if err != nil {
				t.Fatal(err)
			}
			s, rt := login.Session, login.Tokens.RefreshToken
			for range 4 {
				f.Clock.Advance(50 * time.Minute)
				switch op {
				case "renew":
					r, err := f.M.RenewSession(ctx, s, sessiontest.LoginIP, sessiontest.ChromeMac)
					if err != nil {
						t.Fatal(err)
					}
					s = r.Session
				case "reauthenticate":
					r, err := f.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: s.ID, UserID: user, AAL: sessionkit.AAL2})
					if err != nil {
						t.Fatal(err)
					}
					s = r.Session
				case "refresh":
					r, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: rt})
					if err != nil {
						t.Fatal(err)
					}
					rt = r.Tokens.RefreshToken
				}
			}
			want := f.Clock.Now().Add(idle + retention)
			keys := f.KeyNames(t).ForUser(user)
			if at, err := f.Client.PExpireTime(ctx, keys.Events).Result(); err != nil || at.Milliseconds() < want.UnixMilli() {
				t.Errorf("the trail expires at %d, %v; want at or after %d, the retention past the session's deadline", at.Milliseconds(), err, want.UnixMilli())
			}
		})
	}
}
