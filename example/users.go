package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
)

// user is a demo account.
type user struct {
	ID   uuid.UUID
	Name string
	Tier string // "plus" or "free"
	// Support marks a support agent: the /admin page and the JSON admin
	// routes act on other users' sessions in their name (authorizeSupport).
	Support bool
	// pwHash is SHA-256 of the password. That is fine for a demo with a
	// published password and wrong for anything else: a real app stores a
	// slow, salted password hash (argon2id, bcrypt or scrypt) and compares
	// with that library's function.
	pwHash [sha256.Size]byte
}

// userNamespace makes the demo users' ids stable across restarts, so with a
// persistent REDIS_URL their sessions survive a restart of the example.
var userNamespace = uuid.MustParse("6f1d2c58-7d55-4b8e-9a51-3c0f4a2b9e10")

// users is the example's user database: alice, bob, dave and the support
// agent carol, password "password".
type users struct {
	byName map[string]*user
	byID   map[uuid.UUID]*user
	// dummy is compared against when the name is unknown, so an unknown
	// name costs the same as a wrong password.
	dummy [sha256.Size]byte
}

// sessionTiers are the session limits per tier: a "free" user may be signed
// in on one device, a "duo" user on two, a "plus" user on ten.
var sessionTiers = sessionkit.Tiers{"free": 1, "duo": 2, "plus": 10}

// rejectingTiers refuse a sign-in past the limit instead of signing the
// device that expires first out (sessionkit.RejectNew).
var rejectingTiers = map[string]bool{"duo": true}

func demoUsers() *users {
	u := &users{byName: map[string]*user{}, byID: map[uuid.UUID]*user{}, dummy: sha256.Sum256([]byte("not a password"))}
	for _, d := range []struct {
		name, tier string
		support    bool
	}{{"alice", "plus", false}, {"bob", "free", false}, {"dave", "duo", false}, {"carol", "plus", true}} {
		usr := &user{
			ID:      uuid.NewSHA1(userNamespace, []byte(d.name)),
			Name:    d.name,
			Tier:    d.tier,
			Support: d.support,
			pwHash:  sha256.Sum256([]byte("password")),
		}
		u.byName[usr.Name] = usr
		u.byID[usr.ID] = usr
	}
	return u
}

// check returns the user whose name and password these are. The password
// comparison is constant-time over fixed-size hashes, and an unknown name
// does the same work as a known one.
func (u *users) check(name, password string) (*user, bool) {
	got := sha256.Sum256([]byte(password))
	usr, known := u.byName[name]
	want := u.dummy
	if known {
		want = usr.pwHash
	}
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !known {
		return nil, false
	}
	return usr, true
}

// named returns the user called name, or nil.
func (u *users) named(name string) *user { return u.byName[name] }

// byUserID returns the user with id, or nil.
func (u *users) byUserID(id uuid.UUID) *user { return u.byID[id] }

// limitPolicy is each user's sessionkit.LimitPolicy, by tier.
func (u *users) limitPolicy(ctx context.Context, id uuid.UUID) (sessionkit.LimitPolicy, error) {
	tier, err := u.tierOf(ctx, id)
	if err != nil || !rejectingTiers[tier] {
		return sessionkit.EvictOldest, err
	}
	return sessionkit.RejectNew, nil
}

// tierOf is the lookup behind the session limit: sessionTiers.Limit(u.tierOf).
func (u *users) tierOf(_ context.Context, id uuid.UUID) (string, error) {
	usr, ok := u.byID[id]
	if !ok {
		return "", fmt.Errorf("sessionkit example: unknown user %s", id)
	}
	return usr.Tier, nil
}
