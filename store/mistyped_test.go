package store_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// mistypedOp is one write of the store, run on a user whose slot holds a
// key of another type than the store writes there.
type mistypedOp struct {
	name string
	// reaches lists the keys the write may reach after its first write,
	// by their names in rediskey.User: each is asked about first, and one
	// of another type refuses the write.
	reaches []string
	// setup signs the user in as the write needs; run makes the write.
	setup func(t *testing.T, f *sessiontest.Fixture, user uuid.UUID) sessionkit.CreateSessionResult
	run   func(ctx context.Context, f *sessiontest.Fixture, user uuid.UUID, s sessionkit.CreateSessionResult) error
}

// slotKeys are the keys every write that retires, prunes or expires the
// user's sessions may reach after its first write.
var slotKeys = []string{"Index", "Retained", "All", "Revoked", "Owners", "Data"}

func cookieLogin(t *testing.T, f *sessiontest.Fixture, user uuid.UUID) sessionkit.CreateSessionResult {
	return f.Login(t, user)
}

func bearerLogin(t *testing.T, f *sessiontest.Fixture, user uuid.UUID) sessionkit.CreateSessionResult {
	t.Helper()
	res, err := f.M.CreateSession(t.Context(), sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var mistypedOps = []mistypedOp{
	{"second sign-in", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, user uuid.UUID, _ sessionkit.CreateSessionResult) error {
			_, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP})
			return err
		}},
	{"activity write", []string{"Index"}, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			f.Clock.Advance(2 * time.Minute) // past the throttle
			_, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: s.Session.ID, IPAddress: sessiontest.LoginIP})
			return err
		}},
	{"address change", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			_, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: s.Session.ID, IPAddress: "192.0.2.99"})
			return err
		}},
	{"revoked on an address change", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			_, err := f.M.AuthenticateWith(ctx, s.Token, netip.MustParseAddr("192.0.2.99"),
				func(sessionkit.UpdateSessionActivityResult) bool { return true })
			var revoked *sessionkit.RevokedError
			if errors.As(err, &revoked) {
				return nil // done as asked
			}
			return err
		}},
	{"revoke", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, user uuid.UUID, s sessionkit.CreateSessionResult) error {
			_, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: s.Session.ID, UserID: user, Reason: sessionkit.ReasonUserRevoked})
			return err
		}},
	{"revoke all", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, user uuid.UUID, _ sessionkit.CreateSessionResult) error {
			_, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: sessionkit.ReasonUserRevoked})
			return err
		}},
	{"provider access", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			_, err := f.M.RecordProviderAccess(ctx, sessionkit.RecordProviderAccess{SessionID: s.Session.ID, ProviderName: "schwab"})
			return err
		}},
	{"refresh token link", slotKeys, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			_, err := f.M.LinkRefreshTokenToSession(ctx, sessionkit.LinkRefreshTokenToSession{SessionID: s.Session.ID, RefreshTokenID: "rt-1"})
			return err
		}},
	{"reauthenticate", append(slices.Clone(slotKeys), "Seal"), bearerLogin,
		func(ctx context.Context, f *sessiontest.Fixture, user uuid.UUID, s sessionkit.CreateSessionResult) error {
			_, err := f.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: s.Session.ID, UserID: user, AAL: sessionkit.AAL2})
			return err
		}},
	{"refresh", append(slices.Clone(slotKeys), "Seal"), bearerLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			f.Clock.Advance(time.Minute)
			_, err := f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: s.Tokens.RefreshToken})
			return err
		}},
	{"session data", []string{"Index", "Data"}, cookieLogin,
		func(ctx context.Context, f *sessiontest.Fixture, _ uuid.UUID, s sessionkit.CreateSessionResult) error {
			return f.M.PutSessionData(ctx, s.Session.ID, "k", "v")
		}},
}

// userKey is the key of u named by its field in rediskey.User.
func userKey(u rediskey.User, field string) string {
	return map[string]string{
		"Index": u.Index, "Retained": u.Retained, "All": u.All, "Revoked": u.Revoked,
		"Owners": u.Owners, "Data": u.Data, "Seal": u.Seal,
	}[field]
}

// TestKeyOfAnotherTypeWritesNothing: a key of the user's slot holding
// another type than the store writes there (set by hand, or by another
// app sharing the key prefix) refuses every write that could reach it,
// before its first write: Redis has no rollback, and a command failing on
// the key after it left the change half-applied (a session stored that no
// one holds, a revocation record for a session still active, a refresh
// token rotated that the client never received and then took for reuse,
// an address change recorded whose revocation failed, a trail or an index
// without an expiry). Each write is refused with ErrUnavailable, naming
// the key, and nothing is written; a write that cannot reach the key
// succeeds and leaves it as it was; and with the key removed, the write
// succeeds.
func TestKeyOfAnotherTypeWritesNothing(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		refused := 0
		for _, op := range mistypedOps {
			for _, field := range append(slices.Clone(slotKeys), "Seal") {
				t.Run(op.name+"/"+field, func(t *testing.T) {
					ctx := t.Context()
					f := sessiontest.New(t, sessiontest.Options{Client: b.Client},
						sessionkit.WithIdleTimeout(time.Hour), sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{}))
					user := uuid.New()
					s := op.setup(t, f, user)
					key := userKey(f.KeyNames(t).ForUser(user), field)
					if err := b.Client.Set(ctx, key, "another app's", time.Hour).Err(); err != nil {
						t.Fatal(err)
					}
					before := f.Dump(t)
					err := op.run(ctx, f, user, s)
					if !slices.Contains(op.reaches, field) {
						if err != nil {
							t.Fatalf("a write that cannot reach the key: %v", err)
						}
						if v, _ := b.Client.Get(ctx, key).Result(); v != "another app's" {
							t.Errorf("the key of another type now holds %q", v)
						}
						f.CheckTTLs(t)
						return
					}
					refused++
					if !errors.Is(err, sessionkit.ErrUnavailable) || !strings.Contains(err.Error(), key+" holds a string") {
						t.Fatalf("got %v, want ErrUnavailable naming %s", err, key)
					}
					if d := sessiontest.Diff(before, f.Dump(t)); len(d) != 0 {
						t.Errorf("a refused write changed: %v", d)
					}
					if err := b.Client.Del(ctx, key).Err(); err != nil {
						t.Fatal(err)
					}
					if err := op.run(ctx, f, user, s); err != nil {
						t.Errorf("once the key is removed: %v", err)
					}
					f.CheckTTLs(t)
				})
			}
		}
		if refused < 50 {
			t.Errorf("%d writes refused, want every write that reaches a key of another type", refused)
		}
	})
}

// TestLostIndexRebuiltByActivityWrite: with an idle timeout, an activity
// write moves the session's deadline in the user's index. When the index
// is gone (deleted by hand, or evicted under maxmemory), the write
// rebuilds it, with every active session and an expiry: the common write,
// which only moves one score, made it anew with none, and PEXPIREAT GT
// never sets one on a key without. The audit trail's expiry moves with the
// deadline as on the common write: the audit retention past it.
func TestLostIndexRebuiltByActivityWrite(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		const retention = 24 * time.Hour
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithIdleTimeout(time.Hour), sessionkit.WithAuditRetention(retention))
		user := uuid.New()
		first, second := f.Login(t, user), f.Login(t, user)
		keys := f.KeyNames(t).ForUser(user)
		idx := keys.Index
		if err := b.Client.Del(ctx, idx).Err(); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(50 * time.Minute) // past the throttle; the deadlines move by as much
		r, err := f.M.UpdateSessionActivity(ctx, sessionkit.UpdateSessionActivity{SessionID: first.Session.ID, IPAddress: sessiontest.LoginIP})
		if err != nil || !r.Written {
			t.Fatalf("activity write: %+v, %v", r, err)
		}
		f.CheckTTLs(t)
		act, ev := b.Client.PExpireTime(ctx, keys.Active).Val(), b.Client.PExpireTime(ctx, keys.Events).Val()
		if got := ev - act; got < retention-time.Second || got > retention+time.Second {
			t.Errorf("the trail expires %v after the sessions' key, want the retention, %v", got, retention)
		}
		for _, s := range []sessionkit.CreateSessionResult{first, second} {
			_, member := f.KeyNames(t).Active(s.Session.ID)
			if err := b.Client.ZScore(ctx, idx, member).Err(); err != nil {
				t.Errorf("session %s not in the rebuilt index: %v", s.Session.ID, err)
			}
		}
	})
}
