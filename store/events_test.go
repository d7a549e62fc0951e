package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
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
		keys, err := rediskey.New(f.Prefix)
		if err != nil {
			t.Fatal(err)
		}
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
		for range 5 { // the same millisecond: the clock stands still
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
			if e.SessionID != ids[4-i] {
				t.Errorf("event %d: session %v, want %v", i, e.SessionID, ids[4-i])
			}
			if i > 0 && !(e.ID < evs[i-1].ID) {
				t.Errorf("event ids not decreasing: %s then %s", evs[i-1].ID, e.ID)
			}
		}
	})
}
