package sessionkit_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

func TestSessionData(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := sessiontest.New(t, sessiontest.Options{Client: b.Client, OwnClient: true}) // counted
		user := uuid.New()
		s := f.Login(t, user)
		other := f.Login(t, user)
		id := s.Session.ID

		if _, ok, err := f.M.SessionData(ctx, id, "flash"); err != nil || ok {
			t.Fatalf("unset key: got ok %v, %v", ok, err)
		}
		if err := f.M.PutSessionData(ctx, id, "flash", "Signed out the phone"); err != nil {
			t.Fatal(err)
		}
		if err := f.M.PutSessionData(ctx, id, "csrf", "t0k3n"); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := f.M.SessionData(ctx, id, "flash"); err != nil || !ok || v != "Signed out the phone" {
			t.Errorf("flash: got %q %v %v", v, ok, err)
		}
		if _, ok, _ := f.M.SessionData(ctx, other.Session.ID, "flash"); ok {
			t.Error("another session of the user sees the data")
		}
		if err := f.M.DeleteSessionData(ctx, id, "flash"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := f.M.SessionData(ctx, id, "flash"); ok {
			t.Error("a deleted key is still set")
		}
		if v, ok, _ := f.M.SessionData(ctx, id, "csrf"); !ok || v != "t0k3n" {
			t.Errorf("the other key after a delete: got %q %v", v, ok)
		}

		// Not on the hot path: authenticating reads the session only.
		f.Calls.Reset()
		if _, err := f.M.Authenticate(ctx, s.Token, netip.MustParseAddr("203.0.113.7")); err != nil {
			t.Fatal(err)
		}
		if n := f.Calls.Commands(); n != 1 {
			t.Errorf("Authenticate: %d commands, want 1", n)
		}
		f.CheckTTLs(t)

		// Gone with the session, and refused on it.
		if _, err := f.M.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: id, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.M.SessionData(ctx, id, "csrf"); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("data of a revoked session: got %v, want ErrNotFound", err)
		}
		if err := f.M.PutSessionData(ctx, id, "csrf", "x"); !errors.Is(err, sessionkit.ErrRevoked) {
			t.Errorf("put on a revoked session: got %v, want ErrRevoked", err)
		}
		for _, k := range f.Keys(t) {
			if strings.HasSuffix(k, ":data") {
				if n, _ := b.Client.HLen(ctx, k).Result(); n != 0 {
					t.Errorf("%s holds %d sessions' data, want none", k, n)
				}
			}
		}
	})
}

func TestSessionDataBounds(t *testing.T) {
	ctx := t.Context()
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client})
	s := f.Login(t, uuid.New())
	id := s.Session.ID
	for i := range sessionkit.MaxDataKeys {
		if err := f.M.PutSessionData(ctx, id, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	before := f.Dump(t)
	refused := map[string]struct {
		err  error
		name string
	}{
		"a key too many":      {f.M.PutSessionData(ctx, id, "one-more", "v"), "32 keys"},
		"too many bytes":      {f.M.PutSessionData(ctx, id, "k0", strings.Repeat("x", sessionkit.MaxDataBytes-10)), "4096 bytes"},
		"an empty key":        {f.M.PutSessionData(ctx, id, "", "v"), "Key"},
		"a key with a space":  {f.M.PutSessionData(ctx, id, "a b\n", "v"), "Key"},
		"a long key":          {f.M.PutSessionData(ctx, id, strings.Repeat("k", 65), "v"), "Key"},
		"a value too long":    {f.M.PutSessionData(ctx, id, "k1", strings.Repeat("x", sessionkit.MaxDataBytes+1)), "Value"},
		"a value not UTF-8":   {f.M.PutSessionData(ctx, id, "k1", "\xff"), "Value"},
		"not a session id":    {f.M.PutSessionData(ctx, uuid.New(), "k", "v"), ""},
		"no session in a ctx": {sessionkit.PutData(ctx, "k", "v"), ""},
	}
	for name, c := range refused {
		switch {
		case name == "not a session id":
			if !errors.Is(c.err, sessionkit.ErrNotFound) {
				t.Errorf("%s: got %v, want ErrNotFound", name, c.err)
			}
		case name == "no session in a ctx":
			if !errors.Is(c.err, sessionkit.ErrNoSession) {
				t.Errorf("%s: got %v, want ErrNoSession", name, c.err)
			}
		case !errors.Is(c.err, sessionkit.ErrInvalid) || !strings.Contains(c.err.Error(), c.name):
			t.Errorf("%s: got %v, want ErrInvalid naming %s", name, c.err, c.name)
		}
	}
	if d := sessiontest.Diff(before, f.Dump(t)); len(d) != 0 {
		t.Errorf("refused puts wrote: %v", d)
	}
}

// TestSessionDataConcurrentPuts: puts of different keys at once all land.
func TestSessionDataConcurrentPuts(t *testing.T) {
	ctx := t.Context()
	f := sessiontest.New(t, sessiontest.Options{Client: backends[0].Client})
	id := f.Login(t, uuid.New()).Session.ID
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := f.M.PutSessionData(ctx, id, fmt.Sprintf("k%d", i), fmt.Sprint(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		if v, ok, err := f.M.SessionData(ctx, id, fmt.Sprintf("k%d", i)); err != nil || !ok || v != fmt.Sprint(i) {
			t.Errorf("k%d: got %q %v %v", i, v, ok, err)
		}
	}
}
