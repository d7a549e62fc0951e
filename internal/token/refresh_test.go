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
	fam, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range []Secret{fam, {}} { // the zero family: the earlier form
		for _, gen := range []uint32{0, 1, 9, 10, 12345, MaxGeneration} {
			want := Refresh{ID: id, Generation: gen, Family: family, Secret: s}
			tok := want.String()
			if dots := strings.Count(tok, "."); dots != 2+btoi(want.HasFamily()) {
				t.Errorf("%q: %d dots, want %d", tok, dots, 2+btoi(want.HasFamily()))
			}
			if got, err := ParseRefresh(tok); err != nil || got != want {
				t.Errorf("ParseRefresh(%q): got %+v %v, want %+v", tok, got, err, want)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestParseRefreshEarlierForm: a token issued before families, spelled as
// then, parses with no family.
func TestParseRefreshEarlierForm(t *testing.T) {
	const tok = "0190b5f4-8c3a-8d2e-9f10-1234567890ab.7.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	r, err := ParseRefresh(tok)
	if err != nil || r.HasFamily() || r.Generation != 7 || r.ID.String() != tok[:36] || r.Secret[31] != 31 {
		t.Fatalf("ParseRefresh(%q): got %+v %v", tok, r, err)
	}
	if got := r.String(); got != tok {
		t.Errorf("String: got %q, want %q", got, tok)
	}
}

func TestParseRefreshRefuses(t *testing.T) {
	id := uuid.New()
	s, _ := NewSecret()
	fam, _ := NewSecret()
	good := Refresh{ID: id, Generation: 7, Family: fam, Secret: s}.String()
	old := Refresh{ID: id, Generation: 7, Secret: s}.String()
	session, _, _ := New(id)
	secret := good[len(good)-secretLen:]
	family := good[len(good)-2*secretLen-1 : len(good)-secretLen-1]
	zero := strings.Repeat("A", secretLen)
	cases := map[string]string{
		"empty":                "",
		"a session token":      session,
		"a JWT":                "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
		"a long JWT":           "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0." + secret + secret,
		"no generation":        id.String() + ".." + secret,
		"no generation, fam":   id.String() + ".." + family + "." + secret,
		"leading zero":         id.String() + ".07." + secret,
		"leading zero, fam":    id.String() + ".07." + family + "." + secret,
		"negative":             id.String() + ".-7." + secret,
		"too large":            id.String() + ".2147483648." + secret,
		"too large, fam":       id.String() + ".2147483648." + family + "." + secret,
		"huge":                 id.String() + ".99999999999." + secret,
		"upper-case id":        strings.ToUpper(id.String()) + ".7." + secret,
		"short secret":         good[:len(good)-1],
		"long secret":          good + "A",
		"short secret, old":    old[:len(old)-1],
		"long secret, old":     old + "A",
		"short family":         id.String() + ".7." + family[1:] + "." + secret,
		"long family":          id.String() + ".7." + family + "A." + secret,
		"zero family":          id.String() + ".7." + zero + "." + secret,
		"padded secret":        id.String() + ".7." + secret[:42] + "=",
		"padded family":        id.String() + ".7." + family[:42] + "=." + secret,
		"non-canonical bits":   id.String() + ".7." + secret[:42] + "B",
		"non-canonical family": id.String() + ".7." + family[:42] + "B." + secret,
		"bad byte":             id.String() + ".7." + "!" + secret[1:],
		"bad family byte":      id.String() + ".7.!" + family[1:] + "." + secret,
		"plus sign":            id.String() + ".+7." + secret,
		"space":                id.String() + ". 7." + secret,
		"secret first":         id.String() + ".7." + secret + ".." + family,
		"two families":         id.String() + ".7." + family + "." + family + "." + secret,
		"no secret":            id.String() + ".7." + family + ".",
	}
	for name, tok := range cases {
		if _, err := ParseRefresh(tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%q): got %v, want ErrMalformed", name, tok, err)
		}
	}
	for _, tok := range []string{good, old} {
		if _, _, err := Parse(tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("a refresh token parsed as a session token: %v", err)
		}
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
	fam, _ := NewSecret()
	id := uuid.New()
	f.Add(Refresh{ID: id, Generation: 3, Family: fam, Secret: s}.String())
	f.Add(Refresh{ID: id, Generation: MaxGeneration, Family: fam, Secret: s}.String())
	f.Add(Refresh{ID: id, Generation: 3, Secret: s}.String()) // the earlier form
	session, _, _ := New(id)
	f.Add(session)
	f.Add(id.String() + ".3." + strings.Repeat("A", secretLen) + "." + strings.Repeat("A", secretLen)) // zero family
	f.Add("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := ParseRefresh(tok)
		if err != nil {
			return
		}
		if again := r.String(); again != tok {
			t.Fatalf("ParseRefresh(%q) accepted a second spelling of %q", tok, again)
		}
		if _, _, err := Parse(tok); err == nil {
			t.Fatalf("%q parsed as a refresh token and as a session token", tok)
		}
	})
}
