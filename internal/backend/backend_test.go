package backend

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// TestTagMatches: an access token's family tag matches the stored family
// it was made from, whole hash or the stored 132-bit prefix alike; an
// empty tag (a token from before tags) matches any; anything else, a tag
// of another family, of the wrong length, not base64url, or on a session
// without a family, does not.
func TestTagMatches(t *testing.T) {
	h := sha256.Sum256([]byte("family secret"))
	stored := h
	for i := 17; i < len(stored); i++ {
		stored[i] = 0
	}
	stored[16] &= 0xf0
	other := sha256.Sum256([]byte("another family"))
	tag := FamilyTag(&h)
	if tag != FamilyTag(&stored) {
		t.Fatalf("tag of the whole hash %q, of the stored prefix %q: want the same", tag, FamilyTag(&stored))
	}
	withFamily, without := RefreshState{Family: stored}, RefreshState{}
	// A family whose tag has the two characters base64url has of its own.
	urlish := RefreshState{Family: [32]byte{0xfb, 0xff, 0xbf}}
	urlTag := FamilyTag(&urlish.Family)
	if !strings.ContainsAny(urlTag, "-_") {
		t.Fatalf("tag %q: want - and _ in it", urlTag)
	}
	for _, tc := range []struct {
		name string
		r    RefreshState
		tag  string
		want bool
	}{
		{"its family", withFamily, tag, true},
		{"no tag", withFamily, "", true},
		{"no tag, no family", without, "", true},
		{"another family", withFamily, FamilyTag(&other), false},
		{"a session without a family", without, tag, false},
		{"one character short", withFamily, tag[:len(tag)-1], false},
		{"one character more", withFamily, tag + "A", false},
		{"padded", withFamily, tag + "==", false},
		{"not base64url", withFamily, strings.Repeat("*", len(tag)), false},
		{"base64url's own characters", urlish, urlTag, true},
		{"the same in standard base64", urlish, strings.NewReplacer("-", "+", "_", "/").Replace(urlTag), false},
	} {
		if got := tc.r.TagMatches(tc.tag); got != tc.want {
			t.Errorf("%s: TagMatches(%q) = %v, want %v", tc.name, tc.tag, got, tc.want)
		}
	}
}

func TestKeyable(t *testing.T) {
	type withSlice struct{ s []int }
	type holding struct{ v any }
	cases := []struct {
		name string
		v    any
		want bool
	}{
		{"a pointer", &withSlice{}, true},
		{"a string", "x", true},
		{"a struct of comparable fields", holding{v: 1}, true},
		{"a struct holding a slice", withSlice{s: []int{1}}, false},
		{"an interface field holding a slice", holding{v: []int{1}}, false},
		{"a slice", []int{}, false},
	}
	for _, tc := range cases {
		if got := Keyable(tc.v); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
