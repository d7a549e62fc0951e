package store_test

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// TestEventsReadTheEarlierStream: a user's trail written by a release
// that kept it in a stream is read beside the list, newest first, and
// pages across both.
func TestEventsReadTheEarlierStream(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		user := uuid.New()
		keys := f.KeyNames(t)
		u := keys.ForUser(user)
		old := f.Login(t, user)
		// Rewrite the first login's event into the stream, as an earlier
		// release would have written it, a second before.
		if err := b.Client.Del(ctx, u.Events).Err(); err != nil {
			t.Fatal(err)
		}
		at := f.Clock.Now().Add(-time.Second).UnixMilli()
		if err := b.Client.XAdd(ctx, &redis.XAddArgs{Stream: u.EventsV1, ID: fmt.Sprintf("%d-0", at), Values: []any{
			"t", string(sessionkit.EventCreated), "u", user.String(), "s", sessionid.Member(old.Session.ID),
			"at", fmt.Sprint(at), "ip", sessiontest.LoginIP, "dl", "Chrome 131 on macOS", "nd", "0", "nc", "0",
		}}).Err(); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(time.Millisecond)
		next := f.Login(t, user)
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: next.Session.ID, UserID: user, Reason: "logout"}); err != nil {
			t.Fatal(err)
		}
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, string(e.Type)+" "+e.SessionID.String()[:8])
		}
		want := []string{
			string(sessionkit.EventRevoked) + " " + next.Session.ID.String()[:8],
			string(sessionkit.EventCreated) + " " + next.Session.ID.String()[:8],
			string(sessionkit.EventCreated) + " " + old.Session.ID.String()[:8],
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("events: got %v, want %v", got, want)
		}
		if e := evs[2]; e.IPAddress != sessiontest.LoginIP || e.DeviceLabel != "Chrome 131 on macOS" || e.At.UnixMilli() != at {
			t.Errorf("the stream's event: got %+v", e)
		}
		page, err := f.M.Events(ctx, user, sessionkit.EventQuery{Before: evs[0].ID, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 1 || page[0].ID != evs[1].ID {
			t.Errorf("page after the newest: got %+v, want %s", page, evs[1].ID)
		}
		page, err = f.M.Events(ctx, user, sessionkit.EventQuery{Before: evs[1].ID, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 1 || page[0].ID != evs[2].ID {
			t.Errorf("page into the stream: got %+v, want %s", page, evs[2].ID)
		}
	})
}

// TestEventTrailIsCapped: the list keeps the newest events, at most the
// configured length, and ids keep increasing within one millisecond.
func TestEventTrailIsCapped(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithEventStreamLength(3),
			sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		user := uuid.New()
		var ids []uuid.UUID
		for range 12 { // the same millisecond (the clock stands still): seqs 0..11
			ids = append(ids, f.Login(t, user).Session.ID)
		}
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 3 {
			t.Fatalf("events: got %d, want the newest 3", len(evs))
		}
		for i, e := range evs {
			if e.SessionID != ids[11-i] {
				t.Errorf("event %d: session %v, want %v", i, e.SessionID, ids[11-i])
			}
			if i > 0 && !idBefore(e.ID, evs[i-1].ID) {
				t.Errorf("event ids not decreasing: %s then %s", evs[i-1].ID, e.ID)
			}
		}
	})
}

// TestTrailOfOneEntry: a trail of one entry is a string, which costs
// about 100 bytes less than a list of one; it becomes a list at its second
// entry, and stays one entry with a cap of one.
func TestTrailOfOneEntry(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		for _, capped := range []bool{false, true} {
			opts := []sessionkit.Option{sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited))}
			if capped {
				opts = append(opts, sessionkit.WithEventStreamLength(1))
			}
			f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, opts...)
			keys := f.KeyNames(t)
			user := uuid.New()
			log := keys.ForUser(user).Events
			var ids []uuid.UUID
			for i := range 3 {
				ids = append(ids, f.Login(t, user).Session.ID)
				want := "list"
				if i == 0 || capped {
					want = "string"
				}
				if typ := b.Client.Type(ctx, log).Val(); typ != want {
					t.Errorf("capped %v, after %d sign-ins: the trail is a %s, want a %s", capped, i+1, typ, want)
				}
				// A sign-in's entry fits Redis's 112-byte class with a string's
				// header: its type is stored as one letter.
				entry := b.Client.LIndex(ctx, log, 0).Val()
				if want == "string" {
					entry = b.Client.Get(ctx, log).Val()
				}
				if len(entry) > 112-3-1 {
					t.Errorf("a sign-in's entry takes %d bytes, want at most %d: %q", len(entry), 112-3-1, entry)
				}
				evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				n := i + 1
				if capped {
					n = 1
				}
				if len(evs) != n {
					t.Fatalf("capped %v, after %d sign-ins: %d events, want %d", capped, i+1, len(evs), n)
				}
				for j, e := range evs {
					if e.SessionID != ids[i-j] {
						t.Errorf("capped %v, after %d sign-ins: event %d is session %v, want %v", capped, i+1, j, e.SessionID, ids[i-j])
					}
					if j > 0 && !idBefore(e.ID, evs[j-1].ID) {
						t.Errorf("capped %v: event ids not decreasing: %s then %s", capped, evs[j-1].ID, e.ID)
					}
				}
				f.CheckTTLs(t)
			}
		}
	})
}

// TestEntriesOfEarlierReleasesReadTheSame: entries that name their type
// in full, as earlier releases wrote them, read as the same events.
func TestEntriesOfEarlierReleasesReadTheSame(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited)))
		keys := f.KeyNames(t)
		user := uuid.New()
		for range 2 {
			f.Login(t, user)
			f.Clock.Advance(time.Millisecond)
		}
		now, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
		if err != nil || len(now) != 2 {
			t.Fatalf("events: %d, %v", len(now), err)
		}
		log := keys.ForUser(user).Events
		entries := b.Client.LRange(ctx, log, 0, -1).Val()
		for i, e := range entries {
			full := strings.Replace(e, "\x1ft\x1fc\x1f", "\x1ft\x1f"+string(sessionkit.EventCreated)+"\x1f", 1)
			if full == e {
				t.Fatalf("entry %q: no one-letter type to spell out", e)
			}
			if err := b.Client.LSet(ctx, log, int64(i), full).Err(); err != nil {
				t.Fatal(err)
			}
		}
		earlier, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
		if err != nil || !reflect.DeepEqual(earlier, now) {
			t.Errorf("entries with their types in full read\n%+v (%v)\nwant\n%+v", earlier, err, now)
		}
	})
}

// TestTrailOfAnotherKind: a trail key that holds no trail (a string that
// is not an entry, or another type, written by hand) does not fail the
// write that records an event after its other writes: a string is kept
// as an entry Events skips, another type, which no read could use, is
// replaced. The sign-in succeeds whole and its event reads back.
func TestTrailOfAnotherKind(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		for name, damage := range map[string]func(key string) error{
			"a string": func(key string) error { return b.Client.Set(ctx, key, "not an entry", time.Hour).Err() },
			"a hash":   func(key string) error { return b.Client.HSet(ctx, key, "x", "y").Err() },
			"a set":    func(key string) error { return b.Client.SAdd(ctx, key, "x").Err() },
			"a zset":   func(key string) error { return b.Client.ZAdd(ctx, key, redis.Z{Score: 1, Member: "x"}).Err() },
			"a stream": func(key string) error {
				return b.Client.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"x", "y"}}).Err()
			},
		} {
			user := uuid.New()
			if err := damage(f.KeyNames(t).ForUser(user).Events); err != nil {
				t.Fatal(err)
			}
			res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, UserAgent: sessiontest.ChromeMac})
			if err != nil {
				t.Fatalf("%s: sign-in: %v", name, err)
			}
			evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
			if err != nil || len(evs) != 1 || evs[0].SessionID != res.Session.ID || evs[0].Type != sessionkit.EventCreated {
				t.Errorf("%s: events %+v, %v; want the sign-in", name, evs, err)
			}
		}
		f.CheckTTLs(t)
	})
}

// TestEarlierLayoutKeepsWorking: a user whose keys an earlier release
// wrote (an owner record for every session, a purge entry for every
// active session, the trail in a stream) is served by this one: limits
// evict the user's oldest, revocations and sign-out-everywhere reach every
// session, the list and the trail stay whole, and every key keeps a TTL.
func TestEarlierLayoutKeepsWorking(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		const retention = time.Hour
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client}, sessionkit.WithLimit(sessionkit.FixedLimit(3)),
			sessionkit.WithAuditRetention(retention))
		keys := f.KeyNames(t)
		user := uuid.New()
		u := keys.ForUser(user)
		var ids []uuid.UUID
		for range 3 {
			ids = append(ids, f.Login(t, user).Session.ID)
			f.Clock.Advance(time.Millisecond)
		}
		// Rewrite the user's state as the earlier release kept it.
		entries, err := b.Client.LRange(ctx, u.Events, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i := len(entries) - 1; i >= 0; i-- { // oldest first
			parts := strings.Split(entries[i], "\x1f")
			ms, _, _ := strings.Cut(parts[0], "-")
			values := []any{"u", user.String(), "at", ms}
			for j := 1; j+1 < len(parts); j += 2 {
				switch {
				case parts[j] == "t" && parts[j+1] == "c": // the stream named types in full
					values = append(values, "t", string(sessionkit.EventCreated))
				case parts[j] != "u" && parts[j] != "at":
					values = append(values, parts[j], parts[j+1])
				}
			}
			if err := b.Client.XAdd(ctx, &redis.XAddArgs{Stream: u.EventsV1, ID: parts[0], Values: values}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Client.Del(ctx, u.Events).Err(); err != nil {
			t.Fatal(err)
		}
		idx, err := b.Client.ZRangeWithScores(ctx, u.Index, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range idx {
			m := z.Member.(string)
			b.Client.HSet(ctx, u.Owners, m, user.String())
			b.Client.ZAdd(ctx, u.All, redis.Z{Score: z.Score + float64(retention.Milliseconds()), Member: m})
		}
		for _, k := range []string{u.Owners, u.All, u.EventsV1} {
			b.Client.PExpire(ctx, k, 2*retention)
		}

		// The limit of 3 evicts the oldest, the user's own.
		next := f.Login(t, user)
		if len(next.Evicted) != 1 || next.Evicted[0] != ids[0] {
			t.Fatalf("evicted: got %v, want [%v]", next.Evicted, ids[0])
		}
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: ids[1], UserID: user, Reason: "logout"}); err != nil {
			t.Fatal(err)
		}
		res, err := f.M.RevokeAllUserSessions(ctx, sessionkit.RevokeAllUserSessions{UserID: user, Reason: "logout_everywhere"})
		if err != nil || res.Revoked != 2 {
			t.Fatalf("sign-out everywhere: %+v, %v; want 2 revoked", res, err)
		}
		all, err := f.M.ListUserSessions(ctx, user, sessionkit.ListOptions{IncludeRevoked: true})
		if err != nil || len(all) != 4 {
			t.Fatalf("list with the revoked: %d sessions, %v; want 4", len(all), err)
		}
		for _, s := range all {
			if s.RevokedAt.IsZero() {
				t.Errorf("session %v still active after sign-out everywhere", s.ID)
			}
		}
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		// 4 created, 1 evicted, 1 revoked, 2 revoked by sign-out everywhere.
		if len(evs) != 8 || evs[len(evs)-1].SessionID != ids[0] || evs[len(evs)-1].Type != sessionkit.EventCreated || evs[len(evs)-1].At.IsZero() {
			t.Fatalf("trail: %d events, oldest %+v; want 8, the first login's creation oldest", len(evs), evs[len(evs)-1])
		}
		f.CheckTTLs(t)
	})
}

// idBefore reports whether event id a ("<ms>-<seq>") orders before b.
func idBefore(a, b string) bool {
	parse := func(s string) (ms, seq int64) {
		m, q, _ := strings.Cut(s, "-")
		ms, _ = strconv.ParseInt(m, 10, 64)
		seq, _ = strconv.ParseInt(q, 10, 64)
		return ms, seq
	}
	am, as := parse(a)
	bm, bs := parse(b)
	return am < bm || am == bm && as < bs
}

// TestDamagedTrailEntries: entries of the trail that are not sessionkit's
// (written by hand, cut short) are skipped by Events and do not stop the
// next event: its id still follows the newest readable one.
func TestDamagedTrailEntries(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client})
		keys := f.KeyNames(t)
		user := uuid.New()
		log := keys.ForUser(user).Events
		for _, junk := range []string{"not an entry", "", "17-x\x1ft", "99-0\x1ft\x1fsession_created"} {
			if err := b.Client.LPush(ctx, log, junk).Err(); err != nil {
				t.Fatal(err)
			}
		}
		first := f.Login(t, user)
		f.Clock.Advance(time.Millisecond)
		second := f.Login(t, user)
		evs, err := f.M.Events(ctx, user, sessionkit.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].SessionID != second.Session.ID || evs[1].SessionID != first.Session.ID {
			t.Fatalf("events: got %+v, want the two logins, newest first", evs)
		}
		if !idBefore(evs[1].ID, evs[0].ID) {
			t.Errorf("ids: %s then %s, want increasing", evs[1].ID, evs[0].ID)
		}
	})
}
