package sessionkit_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessiontest"
	"github.com/sessionkit/sessionkit/internal/token"
)

const refreshGrace = 10 * time.Second

// bearerFixture is a fixture whose Manager issues bearer tokens.
func bearerFixture(t *testing.T, b sessiontest.Backend) *sessiontest.Fixture {
	t.Helper()
	return sessiontest.New(t, sessiontest.Options{Client: b.Client},
		sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: refreshGrace}))
}

// withoutFamily makes a bearer session's record what a release before
// refresh token families wrote (no family field: it is the last), and
// returns rt as that release spelled it (no family part).
func withoutFamily(t *testing.T, f *sessiontest.Fixture, rt string) string {
	t.Helper()
	r, err := token.ParseRefresh(rt)
	if err != nil || !r.HasFamily() {
		t.Fatalf("ParseRefresh(%q): %+v %v; want a token with a family", rt, r, err)
	}
	key, member := f.KeyNames(t).Active(r.ID)
	v, err := f.Client.HGet(t.Context(), key, member).Result()
	if err != nil {
		t.Fatal(err)
	}
	v = strings.TrimRight(v[:strings.LastIndexByte(v, 0x1f)], "\x1f")
	if err := f.Client.HSet(t.Context(), key, member, v).Err(); err != nil {
		t.Fatal(err)
	}
	r.Family = token.Secret{}
	return r.String()
}

// bearerLogin signs user in as a bearer client.
func bearerLogin(t *testing.T, f *sessiontest.Fixture, user uuid.UUID) sessionkit.CreateSessionResult {
	t.Helper()
	login, err := f.M.CreateSession(t.Context(), sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, Bearer: true})
	if err != nil {
		t.Fatal(err)
	}
	return login
}

func refresh(ctx context.Context, t *testing.T, f *sessiontest.Fixture, rt string) (sessionkit.RefreshSessionResult, error) {
	t.Helper()
	return f.M.RefreshSession(ctx, sessionkit.RefreshSession{RefreshToken: rt})
}

func wantReused(t *testing.T, what string, err error) {
	t.Helper()
	var re *sessionkit.RevokedError
	if !errors.As(err, &re) || re.Reason != sessionkit.ReasonRefreshReused {
		t.Errorf("%s: got %v, want a *RevokedError %s", what, err, sessionkit.ReasonRefreshReused)
	}
}

// TestRefreshTokensFromBeforeFamilies: a session stored, and refresh tokens
// issued, before refresh token families work as they did: rotation, the
// grace window, reuse of the token just superseded; an older token is
// unknown, as it was. Renewal gives such a session a family.
func TestRefreshTokensFromBeforeFamilies(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := bearerFixture(t, b)
		user := uuid.New()
		login := bearerLogin(t, f, user)
		r0 := withoutFamily(t, f, login.Tokens.RefreshToken)
		if _, err := refresh(ctx, t, f, login.Tokens.RefreshToken); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("a token with a family, of a session without one: got %v, want ErrNotFound", err)
		}
		f.Clock.Advance(time.Minute)
		q1, err := refresh(ctx, t, f, r0)
		if err != nil || !q1.Rotated {
			t.Fatalf("refresh with the earlier form: rotated %v, %v", q1.Rotated, err)
		}
		r1 := q1.Tokens.RefreshToken
		if n := strings.Count(r1, "."); n != 2 {
			t.Errorf("the successor %q has %d dots, want 2 (the earlier form)", r1, n)
		}
		f.Clock.Advance(time.Minute)
		q2, err := refresh(ctx, t, f, r1)
		if err != nil {
			t.Fatal(err)
		}
		r2 := q2.Tokens.RefreshToken
		f.Clock.Advance(time.Second)
		if _, err := refresh(ctx, t, f, r0); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("a token two rotations old, without a family: got %v, want ErrNotFound (as before families)", err)
		}
		if again, err := refresh(ctx, t, f, r1); err != nil || again.Rotated || again.Tokens.RefreshToken != r2 {
			t.Errorf("the token just superseded, within the grace window: %v %v; want the current one again", again.Tokens.RefreshToken, err)
		}
		if _, err := f.M.SessionByRefreshToken(ctx, r2); err != nil {
			t.Errorf("SessionByRefreshToken of the current token: %v", err)
		}

		// Renewal starts a family; the tokens held before it are unknown.
		renewed, err := f.M.RenewSession(ctx, q2.Session, "", "")
		if err != nil {
			t.Fatal(err)
		}
		n0 := renewed.Tokens.RefreshToken
		if n := strings.Count(n0, "."); n != 3 {
			t.Fatalf("the renewed token %q has %d dots, want 3 (a family)", n0, n)
		}
		if _, err := refresh(ctx, t, f, r2); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("the token held before renewal: got %v, want ErrNotFound", err)
		}
		f.Clock.Advance(time.Minute)
		n1, err := refresh(ctx, t, f, n0)
		if err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(time.Minute)
		if _, err := refresh(ctx, t, f, n1.Tokens.RefreshToken); err != nil {
			t.Fatal(err)
		}
		_, err = refresh(ctx, t, f, n0)
		wantReused(t, "the renewed family's token two rotations old", err)

		// Another session from before families: the token just superseded,
		// after the grace window, revokes it, as it did.
		other, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, Bearer: true})
		if err != nil {
			t.Fatal(err)
		}
		o0 := withoutFamily(t, f, other.Tokens.RefreshToken)
		if _, err := refresh(ctx, t, f, o0); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(refreshGrace + time.Second)
		_, err = refresh(ctx, t, f, o0)
		wantReused(t, "the token just superseded, after the grace window", err)
	})
}

// TestSessionByRefreshTokenChecksTheFamily: the current generation and
// secret with a family not the session's is not its current token.
func TestSessionByRefreshTokenChecksTheFamily(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := bearerFixture(t, b)
		login := bearerLogin(t, f, uuid.New())
		rt, err := token.ParseRefresh(login.Tokens.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		other := rt
		other.Family[0] ^= 1
		none := rt
		none.Family = token.Secret{}
		for name, tok := range map[string]string{"another family": other.String(), "no family": none.String()} {
			if _, err := f.M.SessionByRefreshToken(ctx, tok); !errors.Is(err, sessionkit.ErrNotFound) {
				t.Errorf("%s: got %v, want ErrNotFound", name, err)
			}
		}
		if s, err := f.M.SessionByRefreshToken(ctx, login.Tokens.RefreshToken); err != nil || s.ID != login.Session.ID {
			t.Errorf("the genuine token: got %v %v", s.ID, err)
		}
	})
}

// TestSessionByRefreshTokenAcceptsWhatRefreshAccepts: the token just
// superseded is, within the grace window, a token RefreshSession still
// accepts (it hands the current one back), so SessionByRefreshToken, by
// which a client whose refresh's reply was lost signs out, names its
// session too; after the window, or two rotations old, it does not; nor
// without a window (RefreshGrace negative).
func TestSessionByRefreshTokenAcceptsWhatRefreshAccepts(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := bearerFixture(t, b)
		login := bearerLogin(t, f, uuid.New())
		r0 := login.Tokens.RefreshToken
		f.Clock.Advance(time.Minute)
		q1, err := refresh(ctx, t, f, r0)
		if err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(refreshGrace - time.Second)
		if s, err := f.M.SessionByRefreshToken(ctx, r0); err != nil || s.ID != login.Session.ID {
			t.Errorf("the token just superseded, within the grace window: got %v %v, want session %v", s.ID, err, login.Session.ID)
		}
		f.Clock.Advance(2 * time.Second)
		if _, err := f.M.SessionByRefreshToken(ctx, r0); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("the token just superseded, after the grace window: got %v, want ErrNotFound", err)
		}
		q2, err := refresh(ctx, t, f, q1.Tokens.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.SessionByRefreshToken(ctx, r0); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("a token two rotations old: got %v, want ErrNotFound", err)
		}
		if s, err := f.M.SessionByRefreshToken(ctx, q2.Tokens.RefreshToken); err != nil || s.ID != login.Session.ID {
			t.Errorf("the current token: got %v %v", s.ID, err)
		}
		// Another family's token of the generation just superseded: unknown.
		rt, err := token.ParseRefresh(q1.Tokens.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		rt.Family[0] ^= 1
		if _, err := f.M.SessionByRefreshToken(ctx, rt.String()); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("the token just superseded, of another family: got %v, want ErrNotFound", err)
		}

		// Without a grace window, the token just superseded is done at once.
		nf := sessiontest.New(t, sessiontest.Options{Client: b.Client},
			sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: -1}))
		login = bearerLogin(t, nf, uuid.New())
		if _, err := refresh(ctx, t, nf, login.Tokens.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := nf.M.SessionByRefreshToken(ctx, login.Tokens.RefreshToken); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Errorf("the token just superseded, without a grace window: got %v, want ErrNotFound", err)
		}
	})
}

// opensToCurrent reports whether anything Redis holds for the user of rt
// (the session's record, the grace window's sealed secrets) opens, with the
// superseded token prev, to rt's secret: what a copy of Redis and a token
// that no longer works would give a thief.
func opensToCurrent(t *testing.T, f *sessiontest.Fixture, user uuid.UUID, prev, rt string) bool {
	t.Helper()
	r0, err0 := token.ParseRefresh(prev)
	r1, err1 := token.ParseRefresh(rt)
	if err0 != nil || err1 != nil {
		t.Fatalf("ParseRefresh: %v %v", err0, err1)
	}
	ctx := t.Context()
	keys := f.KeyNames(t).ForUser(user)
	var held []string
	for _, key := range []string{keys.Active, keys.Seal} {
		m, err := f.Client.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range m {
			held = append(held, strings.FieldsFunc(v, func(c rune) bool { return c == 0x1f || c == '|' })...)
		}
	}
	for _, field := range held {
		raw, err := base64.RawURLEncoding.DecodeString(field)
		if err != nil || len(raw) != token.SecretBytes {
			continue
		}
		if opened, err := token.Open(r0.ID, r0.Secret, token.Secret(raw)); err == nil && opened == r1.Secret {
			return true
		}
	}
	return false
}

// TestRefreshSealedSecretKeptForTheWindowOnly: within the grace window the
// superseded token gets the current one again, so the store keeps the
// current secret sealed with the superseded one; once the window has
// passed, Redis holds nothing that opens with it. Before, the record kept
// the sealed secret until the next rotation: a copy of Redis and a dead
// token gave the live one, which refreshed as the owner's.
func TestRefreshSealedSecretKeptForTheWindowOnly(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := bearerFixture(t, b)
		user := uuid.New()
		seal := f.KeyNames(t).ForUser(user).Seal
		create := func() string {
			t.Helper()
			res, err := f.M.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: sessiontest.LoginIP, Bearer: true})
			if err != nil {
				t.Fatal(err)
			}
			return res.Tokens.RefreshToken
		}
		a0, b0 := create(), create()
		f.Clock.Advance(time.Minute)
		a1, err := refresh(ctx, t, f, a0)
		if err != nil || !a1.Rotated {
			t.Fatalf("refresh: %+v %v", a1, err)
		}
		if !opensToCurrent(t, f, user, a0, a1.Tokens.RefreshToken) {
			t.Fatal("within the window, nothing opens to the current token: the grace window cannot hand it out")
		}
		ttl, err := f.Client.PTTL(ctx, seal).Result()
		if err != nil || ttl <= 0 || ttl > refreshGrace+time.Second {
			t.Errorf("the sealed secrets' key: PTTL %v %v, want within the window and a second", ttl, err)
		}
		if again, err := refresh(ctx, t, f, a0); err != nil || again.Rotated || again.Tokens.RefreshToken != a1.Tokens.RefreshToken {
			t.Errorf("within the window: got %+v %v, want the current token again", again, err)
		}

		// Past the window, another rotation of the user's drops the entry.
		f.Clock.Advance(refreshGrace + time.Second)
		if _, err := refresh(ctx, t, f, b0); err != nil {
			t.Fatal(err)
		}
		if opensToCurrent(t, f, user, a0, a1.Tokens.RefreshToken) {
			t.Error("past the window, Redis still holds the current refresh secret sealed with the superseded token")
		}
		if n, err := f.Client.HLen(ctx, seal).Result(); err != nil || n != 1 {
			t.Errorf("sealed secrets kept: %d %v, want 1 (the rotation just made)", n, err)
		}
		f.CheckTTLs(t)
	})
}

// TestRefreshWithoutGraceSealsNothing: with no grace window there is
// nothing to hand out again, and the store keeps no sealed secret at all.
func TestRefreshWithoutGraceSealsNothing(t *testing.T) {
	b := backends[0]
	ctx := t.Context()
	f := sessiontest.New(t, sessiontest.Options{Client: b.Client},
		sessiontest.AccessTokens(t, sessionkit.AccessTokenOptions{RefreshGrace: -1}))
	user := uuid.New()
	login := bearerLogin(t, f, user)
	f.Clock.Advance(time.Minute)
	q1, err := refresh(ctx, t, f, login.Tokens.RefreshToken)
	if err != nil || !q1.Rotated {
		t.Fatalf("refresh: %+v %v", q1, err)
	}
	if opensToCurrent(t, f, user, login.Tokens.RefreshToken, q1.Tokens.RefreshToken) {
		t.Error("without a grace window, Redis holds the current refresh secret sealed with the superseded token")
	}
	if n, err := f.Client.Exists(ctx, f.KeyNames(t).ForUser(user).Seal).Result(); err != nil || n != 0 {
		t.Errorf("the sealed secrets' key exists: %d %v", n, err)
	}
}

// claimsOf reads an access token's claims, unverified.
func claimsOf(t *testing.T, at string) map[string]any {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q: %d parts, want 3", at, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSupportSessionAccessToken: a support session's access token names
// the operator as the actor (RFC 8693 "act") and claims no authentication
// time, since the user's credentials were never checked for it; a service
// trusting the published keys could otherwise take it for the user's own,
// freshly authenticated. The session it authenticates is as stored.
func TestSupportSessionAccessToken(t *testing.T) {
	f := bearerFixture(t, backends[0])
	res, err := f.M.CreateSession(t.Context(), sessionkit.CreateSession{
		UserID: uuid.New(), IPAddress: sessiontest.LoginIP, Bearer: true, ImpersonatedBy: "support (carol)",
		ExpiresAt: f.M.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, res.Tokens.AccessToken)
	if act, _ := c["act"].(map[string]any); act["sub"] != "support (carol)" {
		t.Errorf("act claim: %v, want the operator as its sub", c["act"])
	}
	if at, ok := c["auth_time"]; ok {
		t.Errorf("auth_time %v: the user's credentials were never checked for a support session", at)
	}
	got, err := f.M.Authenticate(t.Context(), res.Tokens.AccessToken, netip.Addr{})
	if err != nil || !got.Session.AuthenticatedAt.Equal(res.Session.AuthenticatedAt) || got.Session.ImpersonatedBy != "support (carol)" {
		t.Errorf("Authenticate: %+v %v, want the session as stored", got.Session, err)
	}
}

// TestAccessTokensEndAtRenewal: RenewSession and Reauthenticate end the
// access tokens minted before them, as they end the old cookie and refresh
// token, on the next request rather than at their expiry. A refresh keeps
// the session's credentials, so the access tokens minted before it still
// work, as the one it mints does.
func TestAccessTokensEndAtRenewal(t *testing.T) {
	sessiontest.ForEachBackend(t, backends, func(t *testing.T, b sessiontest.Backend) {
		ctx := t.Context()
		f := bearerFixture(t, b)
		user := uuid.New()
		login := bearerLogin(t, f, user)
		works := func(what, at string, want bool) {
			t.Helper()
			_, err := f.M.Authenticate(ctx, at, netip.Addr{})
			switch {
			case want && err != nil:
				t.Errorf("%s: %v, want it to work", what, err)
			case !want && !errors.Is(err, sessionkit.ErrNotFound):
				t.Errorf("%s: %v, want ErrNotFound", what, err)
			}
		}
		f.Clock.Advance(time.Minute)
		q, err := refresh(ctx, t, f, login.Tokens.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		works("the login's access token, after a refresh", login.Tokens.AccessToken, true)
		works("the refresh's access token", q.Tokens.AccessToken, true)

		renewed, err := f.M.RenewSession(ctx, q.Session, "", "")
		if err != nil {
			t.Fatal(err)
		}
		works("the login's access token, after RenewSession", login.Tokens.AccessToken, false)
		works("the refresh's access token, after RenewSession", q.Tokens.AccessToken, false)
		works("RenewSession's access token", renewed.Tokens.AccessToken, true)

		re, err := f.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: login.Session.ID, UserID: user, AAL: sessionkit.AAL2})
		if err != nil {
			t.Fatal(err)
		}
		works("RenewSession's access token, after Reauthenticate", renewed.Tokens.AccessToken, false)
		works("Reauthenticate's access token", re.Tokens.AccessToken, true)
	})
}

// TestAccessTokenWithoutFamily: an access token that names no family (a
// session from before families, or a token an earlier build minted) is
// served after a re-authentication, as it was, but with the authentication
// of its own minting: it gains nothing from the re-authentication.
func TestAccessTokenWithoutFamily(t *testing.T) {
	ctx := t.Context()
	f := bearerFixture(t, backends[0])
	user := uuid.New()
	login := bearerLogin(t, f, user)
	r0 := withoutFamily(t, f, login.Tokens.RefreshToken)
	f.Clock.Advance(time.Minute)
	q, err := refresh(ctx, t, f, r0)
	if err != nil {
		t.Fatal(err)
	}
	if fam, ok := claimsOf(t, q.Tokens.AccessToken)["sk_fam"]; ok {
		t.Fatalf("the access token of a session without a family names one: %v", fam)
	}
	f.Clock.Advance(time.Minute)
	re, err := f.M.Reauthenticate(ctx, sessionkit.Reauthenticate{SessionID: login.Session.ID, UserID: user, AAL: sessionkit.AAL2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.M.Authenticate(ctx, q.Tokens.AccessToken, netip.Addr{})
	if err != nil {
		t.Fatalf("the access token without a family, after a re-authentication: %v", err)
	}
	if !got.Session.AuthenticatedAt.Equal(login.Session.AuthenticatedAt.Truncate(time.Second)) || got.Session.AAL != sessionkit.AAL1 { // auth_time is whole seconds
		t.Errorf("it authenticates as of %v at %s, want its own minting's %v at %s (not the re-authentication's %v)",
			got.Session.AuthenticatedAt, got.Session.AAL, login.Session.AuthenticatedAt, sessionkit.AAL1, re.Session.AuthenticatedAt)
	}
	if _, ok := claimsOf(t, re.Tokens.AccessToken)["sk_fam"].(string); !ok {
		t.Error("the re-authentication's access token names no family: the renewal gives the session one")
	}
}
