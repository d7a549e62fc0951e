package rediskey

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/sessionid"
)

func TestLayout(t *testing.T) {
	k, err := New("app:")
	if err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse("6f1c2a7e-1b7d-4c1e-9a55-0d3b1c2e3f40")
	sid, err := sessionid.New(uid)
	if err != nil {
		t.Fatal(err)
	}
	u := k.ForUser(uid)
	if got := k.ForSession(sid); got != u {
		t.Fatalf("ForSession: got %+v, want %+v", got, u)
	}
	tag := sessionid.TagOf(uid).Hex()
	want := map[string]string{
		u.Active:   "app:{" + tag + "}:act",
		u.Index:    "app:{" + tag + "}:idx",
		u.Retained: "app:{" + tag + "}:ret",
		u.All:      "app:{" + tag + "}:all",
		u.Revoked:  "app:{" + tag + "}:rev",
		u.Owners:   "app:{" + tag + "}:own",
		u.Events:   "app:{" + tag + "}:log",
		u.EventsV1: "app:{" + tag + "}:ev",
		u.Limit:    "app:{" + tag + "}:lim",
		u.Seen:     "app:{" + tag + "}:seen",
		u.Data:     "app:{" + tag + "}:data",
		u.Seal:     "app:{" + tag + "}:seal",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	if key, member := k.Active(sid); key != u.Active || member != sessionid.Member(sid) {
		t.Errorf("Active: got %q %q, want %q %q", key, member, u.Active, sessionid.Member(sid))
	}
	if n := testing.AllocsPerRun(100, func() { k.Active(sid) }); n != 1 {
		t.Errorf("Active allocations: got %v, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { k.ForSession(sid) }); n != 1 {
		t.Errorf("ForSession allocations: got %v, want 1", n)
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
