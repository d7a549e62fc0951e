package announce

import (
	"testing"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/sessionid"
)

func TestParse(t *testing.T) {
	uid := uuid.New()
	a, _ := sessionid.New(uid)
	b, _ := sessionid.New(uid)
	head := Head(sessionid.TagOf(uid))
	got := Parse(head + sessionid.Member(a) + Separator + sessionid.Member(b))
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("got %v, want [%v %v]", got, a, b)
	}
	for _, bad := range []string{"", "nocolon", "zz:" + sessionid.Member(a), head, head + "xyz"} {
		if got := Parse(bad); len(got) != 0 {
			t.Errorf("Parse(%q): got %v, want none", bad, got)
		}
	}
	if got, want := Channel("app:"), "app:revoked"; got != want {
		t.Errorf("Channel: got %q, want %q", got, want)
	}
}
