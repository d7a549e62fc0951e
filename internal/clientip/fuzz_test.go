package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sessionkit/sessionkit/internal/clientip"
)

// Mirrors of the package's caps, so the oracle fails if they drift.
const (
	capEntries = 64
	capBytes   = 8 << 10
)

// examined returns the XFF entries the rules allow ClientIP to read, rightmost
// first: the joined header split on commas, cut at capEntries entries and at
// capBytes (each entry costs its length plus one separator).
// It shares no code with the package.
func examined(lines []string) []string {
	if len(lines) == 0 {
		return nil
	}
	all := strings.Split(strings.Join(lines, ","), ",")
	var out []string
	budget := capBytes
	for i := len(all) - 1; i >= 0 && len(out) < capEntries; i-- {
		if len(all[i])+1 > budget {
			break
		}
		budget -= len(all[i]) + 1
		out = append(out, all[i])
	}
	return out
}

// xffLines turns one fuzz string into header lines: "\n" separates lines and
// the empty string means no header at all.
func xffLines(xff string) []string {
	if xff == "" {
		return nil
	}
	return strings.Split(xff, "\n")
}

func request(remoteAddr string, lines []string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = remoteAddr
	for _, l := range lines {
		req.Header.Add("X-Forwarded-For", l)
	}
	return req
}

func checkCanonical(t *testing.T, what string, a netip.Addr) {
	t.Helper()
	if !a.IsValid() || clientip.Canonical(a) != a || a.Zone() != "" || a.Is4In6() {
		t.Fatalf("%s: got %#v, want a valid canonical address", what, a)
	}
	if b, ok := clientip.Parse(a.String()); !ok || b != a {
		t.Fatalf("%s: Parse(%q) got %v, %v, want %v, true", what, a.String(), b, ok, a)
	}
}

func FuzzClientIP(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzClientIP; a few inline ones keep plain
	// `go test` useful if that directory is missing.
	f.Add("10.0.0.1:443", "6.6.6.6, 203.0.113.7")
	f.Add("[::1]:1234", "fe80::1%eth0\n10.0.0.2")
	f.Add("203.0.113.7:80", "1.2.3.4")

	trusted := mustNew(f, testProxies)
	def := mustNew(f, nil)
	f.Fuzz(func(t *testing.T, remoteAddr, xff string) {
		lines := xffLines(xff)
		req := request(remoteAddr, lines)
		got, ok := trusted.ClientIP(req)
		peer, peerOK := clientip.Parse(remoteAddr)

		// ok reflects RemoteAddr alone, and the default resolver is the peer.
		if ok != peerOK {
			t.Fatalf("ok: got %v, want %v (Parse of RemoteAddr %q)", ok, peerOK, remoteAddr)
		}
		if d, dok := def.ClientIP(req); dok != peerOK || d != peer {
			t.Fatalf("default resolver: got %v, %v, want peer %v, %v", d, dok, peer, peerOK)
		}
		if !ok {
			if got.IsValid() {
				t.Fatalf("got %v with ok=false, want the zero Addr", got)
			}
			return
		}

		// Canonical and idempotent.
		checkCanonical(t, "ClientIP", got)
		if again, _ := trusted.ClientIP(req); again != got {
			t.Fatalf("second ClientIP: got %v, want %v", again, got)
		}
		if d, _ := def.ClientIP(request(got.String(), nil)); d != got {
			t.Fatalf("resolving the result as RemoteAddr: got %v, want %v", d, got)
		}

		if !trusted.Trusted(peer) {
			if got != peer {
				t.Fatalf("untrusted peer %v: got %v, want the peer", peer, got)
			}
			return
		}

		// The exact rule: walk the examined entries right to left. Before the
		// first unparsable entry, the first untrusted address is the answer;
		// if there is none, the answer is the last trusted hop (or the peer).
		// So a trusted result means no untrusted address stood right of the
		// first garbage, and an untrusted result has only trusted hops right
		// of it.
		want, reachedEnd := peer, true
		for _, e := range examined(lines) {
			a, valid := clientip.Parse(e)
			if !valid {
				reachedEnd = false
				break
			}
			want = a
			if !trusted.Trusted(a) {
				reachedEnd = false
				break
			}
		}
		if got != want {
			t.Fatalf("trusted peer %v, XFF %q: got %v, want %v", peer, lines, got, want)
		}
		if trusted.Trusted(got) && !reachedEnd {
			// Walk stopped at garbage: nothing untrusted was right of it.
			for _, e := range examined(lines) {
				a, valid := clientip.Parse(e)
				if !valid {
					break
				}
				if !trusted.Trusted(a) {
					t.Fatalf("got trusted %v although untrusted %v precedes the garbage", got, a)
				}
			}
		}

		// Spoofing: text a client prepends cannot change the answer unless
		// the walk used up every entry (an all-trusted chain).
		spoofed := append([]string{"6.6.6.6"}, lines...)
		if s, _ := trusted.ClientIP(request(remoteAddr, spoofed)); s != got && !reachedEnd {
			t.Fatalf("prepending a spoofed line changed %v to %v for XFF %q", got, s, lines)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "[fe80::1%eth0]:443", "::ffff:1.2.3.4", "unknown"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := clientip.Parse(s)
		if !ok {
			if a.IsValid() {
				t.Fatalf("Parse(%q): got %v with ok=false, want the zero Addr", s, a)
			}
		} else {
			checkCanonical(t, "Parse("+s+")", a)
			if b, ok := clientip.Parse(netip.AddrPortFrom(a, 8080).String()); !ok || b != a {
				t.Fatalf("Parse with port of %v: got %v, %v, want %v, true", a, b, ok, a)
			}
		}

		// Whatever netip accepts as an address or address:port, Parse
		// accepts too, canonically (netip literals are at most 45 bytes, so
		// Parse's length cap never bites). Zones holding ']' are the one
		// form netip allows and Parse deliberately does not.
		trimmed := strings.Trim(s, " \t")
		if strings.Count(trimmed, "]") > 1 {
			return
		}
		if n, err := netip.ParseAddr(trimmed); err == nil {
			if !ok || a != clientip.Canonical(n) {
				t.Fatalf("Parse(%q): got %v, %v, want %v, true (netip.ParseAddr)", s, a, ok, clientip.Canonical(n))
			}
		}
		if n, err := netip.ParseAddrPort(trimmed); err == nil {
			if want := clientip.Canonical(n.Addr()); !ok || a != want {
				t.Fatalf("Parse(%q): got %v, %v, want %v, true (netip.ParseAddrPort)", s, a, ok, want)
			}
		}
	})
}
