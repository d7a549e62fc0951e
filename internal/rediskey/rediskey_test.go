package rediskey

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestLayout(t *testing.T) {
	k, err := New("app:")
	if err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse("6f1c2a7e-1b7d-4c1e-9a55-0d3b1c2e3f40")
	sid, err := NewSessionID(uid)
	if err != nil {
		t.Fatal(err)
	}
	u := k.ForUser(uid)
	if got := k.ForSession(sid); got != u {
		t.Fatalf("ForSession: got %+v, want %+v", got, u)
	}
	tag := u.Index[len("app:{") : len("app:{")+16]
	want := map[string]string{
		u.Active:    "app:{" + tag + "}:act",
		u.Index:     "app:{" + tag + "}:idx",
		u.Retained:  "app:{" + tag + "}:ret",
		u.All:       "app:{" + tag + "}:all",
		u.Revoked:   "app:{" + tag + "}:rev",
		u.Owners:    "app:{" + tag + "}:own",
		u.Events:    "app:{" + tag + "}:ev",
		u.Limit:     "app:{" + tag + "}:lim",
		u.Seen:      "app:{" + tag + "}:seen",
		Member(sid): strings.ReplaceAll(sid.String(), "-", "")[16:],
		k.Channel(): "app:revoked",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	if !strings.HasPrefix(strings.ReplaceAll(sid.String(), "-", ""), tag) {
		t.Errorf("session id %s does not start with tag %s", sid, tag)
	}
	if !IsSessionID(sid) || sid.Version() != 8 || sid.Variant() != uuid.RFC4122 {
		t.Errorf("session id %s: version %d variant %v", sid, sid.Version(), sid.Variant())
	}
	if key, member := k.Active(sid); key != u.Active || member != Member(sid) {
		t.Errorf("Active: got %q %q, want %q %q", key, member, u.Active, Member(sid))
	}
	if n := testing.AllocsPerRun(100, func() { k.Active(sid) }); n != 1 {
		t.Errorf("Active allocations: got %v, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { k.ForSession(sid) }); n != 1 {
		t.Errorf("ForSession allocations: got %v, want 1", n)
	}
	if got, ok := SessionID(SessionTag(sid), Member(sid)); !ok || got != sid {
		t.Errorf("SessionID(Member): got %v %v, want %v", got, ok, sid)
	}
	for _, bad := range []string{"", "zz", "0123456789abcdeg", "0123456789abcdef0"} {
		if _, ok := SessionID(SessionTag(sid), bad); ok {
			t.Errorf("SessionID(%q) accepted", bad)
		}
	}
	if IsSessionID(uuid.New()) {
		t.Error("a v4 UUID passed as a session id")
	}
}

func TestTagsDifferPerUser(t *testing.T) {
	seen := map[Tag]bool{}
	for range 1000 {
		tag := UserTag(uuid.New())
		if seen[tag] {
			t.Fatal("tag collision among 1000 users")
		}
		seen[tag] = true
	}
	uid := uuid.New()
	first, again := UserTag(uid), UserTag(uid)
	if first != again {
		t.Fatal("tag is not deterministic")
	}
}

func TestSessionIDsDiffer(t *testing.T) {
	uid := uuid.New()
	seen := map[uuid.UUID]bool{}
	for range 1000 {
		sid, _ := NewSessionID(uid)
		if seen[sid] {
			t.Fatal("session id repeated")
		}
		seen[sid] = true
	}
}

func TestBadPrefix(t *testing.T) {
	for _, p := range []string{"a{b", "a}b", "sp ace", "nl\n", strings.Repeat("x", 65), "é"} {
		if _, err := New(p); !errors.Is(err, ErrBadPrefix) {
			t.Errorf("New(%q): got %v, want ErrBadPrefix", p, err)
		}
	}
	if _, err := New(""); err != nil {
		t.Errorf("empty prefix: %v", err)
	}
}

func TestParseAnnouncement(t *testing.T) {
	uid := uuid.New()
	a, _ := NewSessionID(uid)
	b, _ := NewSessionID(uid)
	msg := TagHex(UserTag(uid)) + ":" + Member(a) + "," + Member(b)
	got := ParseAnnouncement(msg)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("got %v, want [%v %v]", got, a, b)
	}
	for _, bad := range []string{"", "nocolon", "zz:" + Member(a), TagHex(UserTag(uid)) + ":", TagHex(UserTag(uid)) + ":xyz"} {
		if got := ParseAnnouncement(bad); len(got) != 0 {
			t.Errorf("ParseAnnouncement(%q): got %v, want none", bad, got)
		}
	}
}
