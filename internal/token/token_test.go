package token

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestNewParseRoundTrip(t *testing.T) {
	id := uuid.New()
	tok, hash, err := New(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != Len {
		t.Fatalf("got len %d, want %d", len(tok), Len)
	}
	gotID, gotHash, err := Parse(tok)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if gotID != id || gotHash != hash {
		t.Fatalf("got (%v, %x), want (%v, %x)", gotID, gotHash, id, hash)
	}
	secret, _ := base64.RawURLEncoding.DecodeString(tok[37:])
	if sha256.Sum256(secret) != hash {
		t.Fatal("hash is not SHA-256 of the secret")
	}
	if !Plausible(tok) {
		t.Fatal("a minted token is not plausible")
	}
}

func TestNewIsRandom(t *testing.T) {
	id := uuid.New()
	seen := map[string]bool{}
	for range 100 {
		tok, _, err := New(id)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("token repeated: %s", tok[:36])
		}
		seen[tok] = true
	}
}

func TestParseRejects(t *testing.T) {
	id := uuid.MustParse("0190b5f4-8c3a-8d2e-9f10-1234567890ab")
	good, _, err := New(id)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"empty":              "",
		"10KB":               strings.Repeat("a", 10<<10),
		"only id":            good[:36],
		"no dot":             strings.Replace(good, ".", "x", 1),
		"two dots":           good[:36] + "." + good[37:78] + ".x",
		"upper-case id":      strings.ToUpper(good[:36]) + good[36:],
		"bad base64":         good[:37] + strings.Repeat("*", 43),
		"padding":            good[:78] + "=",
		"NUL":                good[:40] + "\x00" + good[41:],
		"non-ASCII":          good[:40] + "é" + good[42:],
		"non-canonical tail": good[:79] + "B", // last char carries 2 unused bits
		"short secret":       good[:70],
		"bad uuid":           "zzzzzzzz-8c3a-8d2e-9f10-1234567890ab" + good[36:],
		"dash misplaced":     "0190b5f48-c3a-8d2e-9f10-1234567890ab" + good[36:],
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Parse(in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseAllocs(t *testing.T) {
	tok, _, _ := New(uuid.New())
	if n := testing.AllocsPerRun(100, func() { Parse(tok) }); n != 0 {
		t.Fatalf("got %v allocs, want 0", n)
	}
}

func BenchmarkParse(b *testing.B) {
	tok, _, _ := New(uuid.New())
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	tok, _, _ := New(uuid.MustParse("0190b5f4-8c3a-8d2e-9f10-1234567890ab"))
	f.Add(tok)
	f.Add("")
	f.Add(tok[:36] + "." + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, h, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			return
		}
		if !Plausible(s) || len(s) != Len {
			t.Fatalf("accepted implausible %q", s)
		}
		if id.String() != s[:36] {
			t.Fatalf("id %v does not match %q", id, s[:36])
		}
		secret, err := base64.RawURLEncoding.Strict().DecodeString(s[37:])
		if err != nil || sha256.Sum256(secret) != h {
			t.Fatalf("hash mismatch for %q", s)
		}
	})
}

func BenchmarkPlausible(b *testing.B) {
	tok, _, _ := New(uuid.New())
	for b.Loop() {
		if !Plausible(tok) {
			b.Fatal("implausible")
		}
	}
}

func TestParseID(t *testing.T) {
	for range 100 {
		id := uuid.New()
		if got, ok := ParseID(id.String()); !ok || got != id {
			t.Fatalf("ParseID(%s): got %v %v", id, got, ok)
		}
	}
	id := uuid.New().String()
	for _, s := range []string{
		"", id[:35], id + "0", strings.ToUpper(id), "urn:uuid:" + id, "{" + id + "}",
		strings.ReplaceAll(id, "-", ""), id[:8] + "_" + id[9:], id[:35] + "g",
	} {
		if got, ok := ParseID(s); ok {
			t.Errorf("ParseID(%q): got %v, want a refusal", s, got)
		}
	}
}
