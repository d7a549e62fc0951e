package clientip_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sessionkit/sessionkit/internal/clientip"
)

// testProxies is the trusted list shared by the trusted-path tests and the
// fuzz target. fe80::/10 is deliberately absent so link-local clients count
// as clients.
var testProxies = []string{"10.0.0.0/8", "192.168.1.1", "2001:db8:cafe::/48", "::1"}

func mustNew(tb testing.TB, proxies []string) *clientip.Resolver {
	tb.Helper()
	r, err := clientip.New(proxies)
	if err != nil {
		tb.Fatalf("New(%q): %v", proxies, err)
	}
	return r
}

func newRequest(remoteAddr string, xff ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = remoteAddr
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	return req
}

type clientIPCase struct {
	name       string
	remoteAddr string
	xff        []string
	want       string // "" means ok=false
}

func runClientIPCases(t *testing.T, r *clientip.Resolver, cases []clientIPCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := r.ClientIP(newRequest(tc.remoteAddr, tc.xff...))
			if tc.want == "" {
				if ok {
					t.Fatalf("ClientIP(%q, %q): got %v, true, want ok=false", tc.remoteAddr, tc.xff, got)
				}
				if got.IsValid() {
					t.Errorf("ClientIP(%q): got %v with ok=false, want the zero Addr", tc.remoteAddr, got)
				}
				return
			}
			if !ok {
				t.Fatalf("ClientIP(%q, %q): got ok=false, want %s", tc.remoteAddr, tc.xff, tc.want)
			}
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Errorf("ClientIP(%q, %q): got %v, want %v", tc.remoteAddr, tc.xff, got, want)
			}
		})
	}
}

func TestClientIPDefault(t *testing.T) {
	cases := []clientIPCase{
		{"ipv4 with port", "203.0.113.7:1234", nil, "203.0.113.7"},
		{"xff ignored", "203.0.113.7:1234", []string{"1.2.3.4"}, "203.0.113.7"},
		{"xff ignored from private peer", "10.0.0.1:1234", []string{"1.2.3.4"}, "10.0.0.1"},
		{"ipv6 with port", "[::1]:1234", nil, "::1"},
		{"ipv4 without port", "192.0.2.1", nil, "192.0.2.1"},
		{"ipv6 without port", "2001:db8::1", nil, "2001:db8::1"},
		{"ipv6 in brackets without port", "[2001:db8::1]", nil, "2001:db8::1"},
		{"zone bare", "fe80::1%eth0", nil, "fe80::1"},
		{"zone with port", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"ipv4-mapped bare", "::ffff:10.1.2.3", nil, "10.1.2.3"},
		{"ipv4-mapped with port", "[::ffff:10.1.2.3]:80", nil, "10.1.2.3"},
		{"surrounding spaces", " 192.0.2.1:80 ", nil, "192.0.2.1"},
		{"garbage", "garbage", nil, ""},
		{"garbage with xff", "garbage", []string{"1.2.3.4"}, ""},
		{"empty", "", nil, ""},
		{"unix socket", "@", nil, ""},
		{"hostname", "localhost:80", nil, ""},
		{"port out of range", "1.2.3.4:65536", nil, ""},
		{"empty port", "1.2.3.4:", nil, ""},
		{"bracketed ipv4", "[1.2.3.4]:80", nil, ""},
		{"unclosed bracket", "[::1:80", nil, ""},
		{"empty zone", "fe80::1%", nil, ""},
		{"ipv4 zone", "1.2.3.4%eth0", nil, ""},
	}
	t.Run("New(nil)", func(t *testing.T) { runClientIPCases(t, mustNew(t, nil), cases) })
	t.Run("zero Resolver", func(t *testing.T) { runClientIPCases(t, &clientip.Resolver{}, cases) })
	t.Run("nil Resolver", func(t *testing.T) {
		var r *clientip.Resolver
		runClientIPCases(t, r, cases)
	})
}

func TestClientIPTrusted(t *testing.T) {
	const proxy = "10.0.0.1:443"
	cases := []clientIPCase{
		{"untrusted peer ignores xff", "203.0.113.7:1234", []string{"1.2.3.4"}, "203.0.113.7"},
		{"untrusted ipv6 peer ignores xff", "[2001:db8::9]:1234", []string{"1.2.3.4"}, "2001:db8::9"},
		{"trusted peer without xff", proxy, nil, "10.0.0.1"},
		{"single entry", proxy, []string{"203.0.113.7"}, "203.0.113.7"},
		{"spoof then real", proxy, []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"},
		{"chain several deep", proxy, []string{"6.6.6.6, 203.0.113.7, 10.0.0.3, 192.168.1.1, 10.9.9.9"}, "203.0.113.7"},
		{"all trusted", proxy, []string{"10.0.0.5, 10.0.0.4"}, "10.0.0.5"},
		{"all trusted single", proxy, []string{"192.168.1.1"}, "192.168.1.1"},
		{"not-an-ip rightmost", proxy, []string{"203.0.113.7, not-an-ip"}, "10.0.0.1"},
		{"not-an-ip only", proxy, []string{"not-an-ip"}, "10.0.0.1"},
		{"not-an-ip after trusted hop", proxy, []string{"6.6.6.6, not-an-ip, 10.0.0.7"}, "10.0.0.7"},
		{"not-an-ip left of client", proxy, []string{"not-an-ip, 203.0.113.7"}, "203.0.113.7"},
		{"unknown", proxy, []string{"6.6.6.6, unknown"}, "10.0.0.1"},
		{"hex-looking garbage", proxy, []string{"6.6.6.6, deadbeef"}, "10.0.0.1"},
		{"obfuscated rfc7239 node", proxy, []string{"6.6.6.6, _hidden"}, "10.0.0.1"},
		{"empty entry in middle", proxy, []string{"203.0.113.7,,10.0.0.7"}, "10.0.0.7"},
		{"trailing comma", proxy, []string{"203.0.113.7,"}, "10.0.0.1"},
		{"empty header value", proxy, []string{""}, "10.0.0.1"},
		{"whitespace", proxy, []string{"  6.6.6.6 ,  203.0.113.7\t,\t10.0.0.7  "}, "203.0.113.7"},
		{"ipv4 with port", proxy, []string{"203.0.113.7:5678"}, "203.0.113.7"},
		{"ipv6 with port", proxy, []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"ipv6 bare", proxy, []string{"2001:db8::1"}, "2001:db8::1"},
		{"zone in xff", proxy, []string{"fe80::1%eth0"}, "fe80::1"},
		{"zone in brackets in xff", proxy, []string{"[fe80::1%eth0]:80"}, "fe80::1"},
		{"ipv4-mapped client", proxy, []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"ipv4-mapped trusted hop skipped", proxy, []string{"203.0.113.7, ::ffff:10.1.2.3"}, "203.0.113.7"},
		{"ipv4-mapped all trusted", proxy, []string{"::ffff:10.1.2.3"}, "10.1.2.3"},
		{"bad port is garbage", proxy, []string{"6.6.6.6, 203.0.113.7:99999"}, "10.0.0.1"},
		{"multiple lines", proxy, []string{"6.6.6.6, 203.0.113.7", "10.0.0.3"}, "203.0.113.7"},
		{"multiple lines client in second", proxy, []string{"6.6.6.6", "203.0.113.9"}, "203.0.113.9"},
		{"multiple lines trusted spans lines", proxy, []string{"203.0.113.7", "10.0.0.3, 10.0.0.4", "192.168.1.1"}, "203.0.113.7"},
		{"multiple lines all trusted", proxy, []string{"10.0.0.8", "10.0.0.9"}, "10.0.0.8"},
		{"multiple lines empty last", proxy, []string{"203.0.113.7", ""}, "10.0.0.1"},
		{"multiple lines garbage first", proxy, []string{"not-an-ip", "203.0.113.7"}, "203.0.113.7"},
		{"ipv6 loopback peer", "[::1]:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		{"ipv6 range peer", "[2001:db8:cafe::2]:443", []string{"2001:db8::1, 2001:db8:cafe::5"}, "2001:db8::1"},
		{"ipv6 peer all trusted", "[2001:db8:cafe::2]:443", []string{"2001:db8:cafe::9"}, "2001:db8:cafe::9"},
		{"zoned loopback peer", "[::1%lo]:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"ipv4-mapped peer", "[::ffff:10.0.0.1]:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"peer without port", "10.0.0.1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"single-address proxy", "192.168.1.1:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"neighbour of single-address proxy", "192.168.1.2:80", []string{"203.0.113.7"}, "192.168.1.2"},
		{"garbage peer", "garbage", []string{"203.0.113.7"}, ""},
	}
	runClientIPCases(t, mustNew(t, testProxies), cases)
}

// TestClientIPBounds checks that the 64-entry and 8 KiB caps hold at their
// edges and that huge headers cost no allocation.
func TestClientIPBounds(t *testing.T) {
	r := mustNew(t, testProxies)
	const peer = "10.0.0.1:443"
	hops := func(n int) string { // n distinct trusted hops, 10.1.0.n ... 10.1.0.1
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("10.1.%d.%d", (n-i)/256, (n-i)%256)
		}
		return strings.Join(s, ", ")
	}
	mb := 1 << 20
	manyLines := make([]string, 100_000)
	for i := range manyLines {
		manyLines[i] = "10.0.0.2"
	}
	manyLines[0] = "6.6.6.6"
	cases := []clientIPCase{
		{"client is the 64th entry", peer, []string{"203.0.113.7, " + hops(63)}, "203.0.113.7"},
		{"client is the 65th entry", peer, []string{"203.0.113.7, " + hops(64)}, "10.1.0.64"},
		{"client is the 65th entry across lines", peer, []string{"203.0.113.7", hops(32), hops(32)}, "10.1.0.32"},
		{"client at the byte cap", peer, []string{"203.0.113.7," + strings.Repeat(" ", 8171) + "10.0.0.9"}, "203.0.113.7"},
		{"client past the byte cap", peer, []string{"203.0.113.7," + strings.Repeat(" ", 8172) + "10.0.0.9"}, "10.0.0.9"},
		{"entry past the byte cap", peer, []string{"203.0.113.7," + strings.Repeat(" ", 8184) + "10.0.0.9"}, "10.0.0.1"},
		{"1 MB single entry", peer, []string{strings.Repeat("1", mb)}, "10.0.0.1"},
		{"1 MB spoofed entries left of a trusted chain", peer, []string{strings.Repeat("6.6.6.6,", mb/8) + hops(100)}, "10.1.0.64"},
		{"1 MB of clients", peer, []string{strings.Repeat("6.6.6.6,", mb/8) + "203.0.113.7"}, "203.0.113.7"},
		{"1 MB of commas", peer, []string{strings.Repeat(",", mb)}, "10.0.0.1"},
		{"100k header lines", peer, manyLines, "10.0.0.2"},
	}
	runClientIPCases(t, r, cases)

	for _, tc := range cases {
		t.Run("allocs/"+tc.name, func(t *testing.T) {
			req := newRequest(tc.remoteAddr, tc.xff...)
			if n := testing.AllocsPerRun(10, func() { r.ClientIP(req) }); n != 0 {
				t.Errorf("ClientIP allocations: got %v, want 0", n)
			}
		})
	}
}

func TestClientIPAllocs(t *testing.T) {
	cases := []struct {
		name    string
		proxies []string
		req     *http.Request
	}{
		{"default", nil, newRequest("203.0.113.7:1234", "1.2.3.4")},
		{"default ipv6 zone", nil, newRequest("[fe80::1%eth0]:1234")},
		{"trusted xff", testProxies, newRequest("10.0.0.1:443", "6.6.6.6, 203.0.113.7, 10.0.0.2")},
		{"trusted xff with zones", testProxies, newRequest("10.0.0.1:443", "fe80::1%some-very-long-zone-name")},
		{"trusted xff garbage", testProxies, newRequest("10.0.0.1:443", "unknown")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew(t, tc.proxies)
			if n := testing.AllocsPerRun(100, func() { r.ClientIP(tc.req) }); n != 0 {
				t.Errorf("ClientIP allocations: got %v, want 0", n)
			}
		})
	}
}

func TestNew(t *testing.T) {
	valid := []struct {
		name    string
		proxies []string
	}{
		{"nil", nil},
		{"empty", []string{}},
		{"cidr v4", []string{"10.0.0.0/8"}},
		{"cidr v6", []string{"2001:db8::/32"}},
		{"plain v4", []string{"10.0.0.1"}},
		{"plain v6", []string{"::1"}},
		{"plain zoned", []string{"fe80::1%eth0"}},
		{"spaces", []string{" 10.0.0.0/8 ", "\t::1"}},
		{"host bits set", []string{"10.0.0.1/8"}},
		{"ipv4-mapped range", []string{"::ffff:10.0.0.0/104"}},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := clientip.New(tc.proxies); err != nil {
				t.Errorf("New(%q): got error %v, want nil", tc.proxies, err)
			}
		})
	}

	invalid := []struct {
		name    string
		proxies []string
		bad     string
	}{
		{"prefix too long", []string{"10.0.0.0/8", "10.0.0.0/33"}, "10.0.0.0/33"},
		{"v6 prefix too long", []string{"2001:db8::/129"}, "2001:db8::/129"},
		{"not an address", []string{"not-a-cidr"}, "not-a-cidr"},
		{"empty", []string{""}, ""},
		{"blank", []string{"  "}, "  "},
		{"empty bits", []string{"10.0.0.0/"}, "10.0.0.0/"},
		{"zone in prefix", []string{"fe80::1%eth0/64"}, "fe80::1%eth0/64"},
		{"with port", []string{"10.0.0.1:80"}, "10.0.0.1:80"},
		{"comma list as one entry", []string{"10.0.0.0/8, 192.168.0.0/16"}, "10.0.0.0/8, 192.168.0.0/16"},
		{"hostname", []string{"proxy.internal"}, "proxy.internal"},
		{"octal-looking v4", []string{"010.0.0.1"}, "010.0.0.1"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			r, err := clientip.New(tc.proxies)
			if !errors.Is(err, clientip.ErrInvalidProxy) {
				t.Fatalf("New(%q): got error %v, want ErrInvalidProxy", tc.proxies, err)
			}
			if r != nil {
				t.Errorf("New(%q): got resolver %v, want nil", tc.proxies, r)
			}
			if want := fmt.Sprintf("%q", tc.bad); !strings.Contains(err.Error(), want) {
				t.Errorf("New(%q) error: got %q, want it to name %s", tc.proxies, err, want)
			}
		})
	}
}

func TestTrusted(t *testing.T) {
	cases := []struct {
		name    string
		proxies []string
		addr    string // "" means the zero Addr
		want    bool
	}{
		{"in v4 range", []string{"10.0.0.0/8"}, "10.1.2.3", true},
		{"outside v4 range", []string{"10.0.0.0/8"}, "11.0.0.1", false},
		{"mapped address in v4 range", []string{"10.0.0.0/8"}, "::ffff:10.1.2.3", true},
		{"host bits cleared", []string{"10.0.0.1/8"}, "10.200.0.1", true},
		{"single v4", []string{"10.0.0.1"}, "10.0.0.1", true},
		{"single v4 neighbour", []string{"10.0.0.1"}, "10.0.0.2", false},
		{"single v6", []string{"::1"}, "::1", true},
		{"single v6 neighbour", []string{"::1"}, "::2", false},
		{"zoned address matches unzoned proxy", []string{"::1"}, "::1%lo", true},
		{"zoned proxy matches any zone", []string{"fe80::1%eth0"}, "fe80::1%eth1", true},
		{"mapped range means v4", []string{"::ffff:10.0.0.0/104"}, "10.1.2.3", true},
		{"mapped range outside", []string{"::ffff:10.0.0.0/104"}, "11.1.2.3", false},
		{"mapped /96 is all v4", []string{"::ffff:0:0/96"}, "203.0.113.7", true},
		{"::/0 covers v4", []string{"::/0"}, "203.0.113.7", true},
		{"::/0 covers v6", []string{"::/0"}, "2001:db8::1", true},
		{"v6 range excludes v4", []string{"2001:db8::/32"}, "1.2.3.4", false},
		{"nat64 range excludes v4", []string{"64:ff9b::/96"}, "1.2.3.4", false},
		{"v4 range excludes v6", []string{"0.0.0.0/0"}, "2001:db8::1", false},
		{"zero addr", []string{"0.0.0.0/0", "::/0"}, "", false},
		{"no proxies", nil, "10.0.0.1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			if got := mustNew(t, tc.proxies).Trusted(a); got != tc.want {
				t.Errorf("New(%q).Trusted(%v): got %v, want %v", tc.proxies, a, got, tc.want)
			}
		})
	}
	t.Run("nil resolver", func(t *testing.T) {
		var r *clientip.Resolver
		if r.Trusted(netip.MustParseAddr("10.0.0.1")) {
			t.Errorf("nil Resolver.Trusted: got true, want false")
		}
	})
}
