package sessionid

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestFormat(t *testing.T) {
	uid := uuid.MustParse("6f1c2a7e-1b7d-4c1e-9a55-0d3b1c2e3f40")
	sid, err := New(uid)
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.ReplaceAll(sid.String(), "-", "")
	if got, want := TagIn(sid), TagOf(uid); got != want {
		t.Errorf("TagIn: got %x, want %x", got, want)
	}
	if !strings.HasPrefix(plain, TagOf(uid).Hex()) {
		t.Errorf("session id %s does not start with tag %s", sid, TagOf(uid).Hex())
	}
	if got, want := Member(sid), plain[16:]; got != want {
		t.Errorf("Member: got %q, want %q", got, want)
	}
	if !Valid(sid) || sid.Version() != 8 || sid.Variant() != uuid.RFC4122 {
		t.Errorf("session id %s: version %d variant %v", sid, sid.Version(), sid.Variant())
	}
	if got, ok := FromMember(TagIn(sid), Member(sid)); !ok || got != sid {
		t.Errorf("FromMember(Member): got %v %v, want %v", got, ok, sid)
	}
	for _, bad := range []string{"", "zz", "0123456789abcdeg", "0123456789abcdef0", "0123456789abcdef"} {
		if _, ok := FromMember(TagIn(sid), bad); ok {
			t.Errorf("FromMember(%q) accepted", bad)
		}
	}
	if Valid(uuid.New()) {
		t.Error("a v4 UUID passed as a session id")
	}
	if got, ok := ParseTag(TagOf(uid).Hex()); !ok || got != TagOf(uid) {
		t.Errorf("ParseTag(Hex): got %x %v", got, ok)
	}
	for _, bad := range []string{"", "zz", "0123456789abcdeg", "0123456789abcdef0"} {
		if _, ok := ParseTag(bad); ok {
			t.Errorf("ParseTag(%q) accepted", bad)
		}
	}
}

func TestTagsDifferPerUser(t *testing.T) {
	seen := map[Tag]bool{}
	for range 1000 {
		tag := TagOf(uuid.New())
		if seen[tag] {
			t.Fatal("tag collision among 1000 users")
		}
		seen[tag] = true
	}
	uid := uuid.New()
	first, again := TagOf(uid), TagOf(uid)
	if first != again {
		t.Fatal("tag is not deterministic")
	}
}

func TestIDsDiffer(t *testing.T) {
	uid := uuid.New()
	seen := map[uuid.UUID]bool{}
	for range 1000 {
		sid, _ := New(uid)
		if seen[sid] {
			t.Fatal("session id repeated")
		}
		seen[sid] = true
	}
}
