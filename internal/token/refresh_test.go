package token

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestRefreshRoundTrip(t *testing.T) {
	id := uuid.New()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []uint32{0, 1, 9, 10, 12345, MaxGeneration} {
		tok := FormatRefresh(id, gen, s)
		gotID, gotGen, gotS, err := ParseRefresh(tok)
		if err != nil || gotID != id || gotGen != gen || gotS != s {
			t.Errorf("ParseRefresh(%q): got %v %d %x %v, want %v %d %x", tok, gotID, gotGen, gotS, err, id, gen, s)
		}
	}
}

func TestParseRefreshRefuses(t *testing.T) {
	id := uuid.New()
	s, _ := NewSecret()
	good := FormatRefresh(id, 7, s)
	session, _, _ := New(id)
	secret := good[len(good)-secretLen:]
	cases := map[string]string{
		"empty":              "",
		"a session token":    session,
		"a JWT":              "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
		"no generation":      id.String() + ".." + secret,
		"leading zero":       id.String() + ".07." + secret,
		"negative":           id.String() + ".-7." + secret,
		"too large":          id.String() + ".2147483648." + secret,
		"huge":               id.String() + ".99999999999." + secret,
		"upper-case id":      strings.ToUpper(id.String()) + ".7." + secret,
		"short secret":       good[:len(good)-1],
		"long secret":        good + "A",
		"padded secret":      id.String() + ".7." + secret[:42] + "=",
		"non-canonical bits": id.String() + ".7." + secret[:42] + "B",
		"bad byte":           id.String() + ".7." + "!" + secret[1:],
		"plus sign":          id.String() + ".+7." + secret,
		"space":              id.String() + ". 7." + secret,
	}
	for name, tok := range cases {
		if _, _, _, err := ParseRefresh(tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%q): got %v, want ErrMalformed", name, tok, err)
		}
	}
	if _, _, err := Parse(good); !errors.Is(err, ErrMalformed) {
		t.Errorf("a refresh token parsed as a session token: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	id := uuid.New()
	prev, _ := NewSecret()
	next, _ := NewSecret()
	sealed, err := Seal(id, prev, next)
	if err != nil {
		t.Fatal(err)
	}
	if sealed == next {
		t.Fatal("sealed equals the secret")
	}
	if got, err := Open(id, prev, sealed); err != nil || got != next {
		t.Fatalf("Open: got %x %v, want %x", got, err, next)
	}
	other, _ := NewSecret()
	if got, _ := Open(id, other, sealed); got == next {
		t.Error("another secret opened the successor")
	}
	if got, _ := Open(uuid.New(), prev, sealed); got == next {
		t.Error("another session's id opened the successor")
	}
}

func FuzzParseRefresh(f *testing.F) {
	s, _ := NewSecret()
	f.Add(FormatRefresh(uuid.New(), 3, s))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, gen, sec, err := ParseRefresh(tok)
		if err != nil {
			return
		}
		if again := FormatRefresh(id, gen, sec); again != tok {
			t.Fatalf("ParseRefresh(%q) accepted a second spelling of %q", tok, again)
		}
	})
}
