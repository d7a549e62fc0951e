package clientip_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sessionkit/sessionkit/internal/clientip"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" means not ok
	}{
		{"1.2.3.4", "1.2.3.4"},
		{"1.2.3.4:5678", "1.2.3.4"},
		{"1.2.3.4:0", "1.2.3.4"},
		{"1.2.3.4:65535", "1.2.3.4"},
		{"1.2.3.4:000080", "1.2.3.4"},
		{" \t1.2.3.4\t ", "1.2.3.4"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[::1]:443", "::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"[fe80::1%25eth0]", "fe80::1"},
		{"::ffff:1.2.3.4", "1.2.3.4"},
		{"::ffff:102:304", "1.2.3.4"},
		{"[::ffff:1.2.3.4]:80", "1.2.3.4"},
		{"::ffff:1.2.3.4%eth0", "1.2.3.4"},
		{"::", "::"},
		{"0.0.0.0", "0.0.0.0"},
		{"", ""},
		{" ", ""},
		{"not-an-ip", ""},
		{"unknown", ""},
		{"deadbeef", ""},
		{"1.2.3", ""},
		{"1.2.3.4.5", ""},
		{"256.1.1.1", ""},
		{"01.2.3.4", ""},
		{"1.2.3.4:", ""},
		{"1.2.3.4:65536", ""},
		{"1.2.3.4:-1", ""},
		{"1.2.3.4:+80", ""},
		{"1.2.3.4:http", ""},
		{"1.2.3.4%eth0", ""},
		{"[1.2.3.4]", ""},
		{"[1.2.3.4]:80", ""},
		{"[::1", ""},
		{"::1]", ""},
		{"[::1]:", ""},
		{"[::1]80", ""},
		{"[[::1]]", ""},
		{"[]", ""},
		{"[]:80", ""},
		{"fe80::1%", ""},
		{"[fe80::1%]:80", ""},
		{"%eth0", ""},
		{"1.2.3.4 5.6.7.8", ""},
		{"1.2.3.4,5.6.7.8", ""},
		{"\n1.2.3.4", ""},
		{"localhost", ""},
		{"_hidden", ""},
		{strings.Repeat("0", 100) + "::1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := clientip.Parse(tc.in)
			if tc.want == "" {
				if ok || got.IsValid() {
					t.Errorf("Parse(%q): got %v, %v, want invalid, false", tc.in, got, ok)
				}
				return
			}
			if want := netip.MustParseAddr(tc.want); !ok || got != want {
				t.Errorf("Parse(%q): got %v, %v, want %v, true", tc.in, got, ok, want)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	cases := []struct {
		in, want string // "" is the zero Addr
	}{
		{"1.2.3.4", "1.2.3.4"},
		{"::ffff:1.2.3.4", "1.2.3.4"},
		{"fe80::1%eth0", "fe80::1"},
		{"::ffff:1.2.3.4%eth0", "1.2.3.4"},
		{"2001:db8::1", "2001:db8::1"},
		{"64:ff9b::1.2.3.4", "64:ff9b::102:304"},
		{"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var in, want netip.Addr
			if tc.in != "" {
				in, want = netip.MustParseAddr(tc.in), netip.MustParseAddr(tc.want)
			}
			if got := clientip.Canonical(in); got != want {
				t.Errorf("Canonical(%v): got %v, want %v", in, got, want)
			}
		})
	}
}
