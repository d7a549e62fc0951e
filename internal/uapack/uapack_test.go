package uapack

import (
	"strconv"
	"strings"
	"testing"
)

// userAgents are what a consumer app's users sign in with: browsers,
// mobile apps' HTTP stacks, a bot, and text that is no User-Agent at all.
var userAgents = []string{
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
	"Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240905.003)",
	"okhttp/4.12.0",
	"MoneyApp/3.2 CFNetwork/1568.200.51 Darwin/24.1.0",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"curl/8.5.0",
	"",
	"Chrome/",
	"Mozilla/5.0 (Mozilla/5.0 (",
	"naïve — ユーザーエージェント",
}

func TestTable(t *testing.T) {
	if len(table) > maxCode {
		t.Fatalf("%d entries, more than the %d codes", len(table), maxCode)
	}
	seen := map[string]bool{}
	for i, e := range table {
		if e == "" || seen[e] {
			t.Errorf("entry %d %q: empty or repeated", i, e)
		}
		seen[e] = true
		for j := 0; j < len(e); j++ {
			if e[j] < 0x20 {
				t.Errorf("entry %d %q holds byte %#x", i, e, e[j])
			}
		}
	}
}

func TestPackRoundTrip(t *testing.T) {
	for _, ua := range userAgents {
		p := Pack(ua)
		if got := Unpack(p); got != ua {
			t.Errorf("Unpack(Pack(%q)) = %q", ua, got)
		}
		if len(p) > len(ua) || strings.IndexByte(p, 0x1f) >= 0 {
			t.Errorf("Pack(%q) = %q: longer, or holds the separator", ua, p)
		}
		if Unpack(p) != ua { // again, from what the first call kept
			t.Errorf("Unpack(Pack(%q)) differs on the second call", ua)
		}
	}
}

func TestPackShrinksBrowsers(t *testing.T) {
	for _, ua := range userAgents[:12] { // the browsers
		if p := Pack(ua); len(p) > 25 {
			t.Errorf("Pack(%.50q...) is %d bytes (from %d), want at most 25: %q", ua, len(p), len(ua), p)
		}
	}
}

func TestUnpackUnpacked(t *testing.T) {
	// A User-Agent stored before packing comes back as it is.
	for _, ua := range userAgents {
		if got := Unpack(ua); got != ua {
			t.Errorf("Unpack(%q) = %q", ua, got)
		}
	}
	// A code the table lacks (a later release's) reads as U+FFFD.
	if got, want := Unpack("\x01\x00x"), "Mozilla/5.0 (\uFFFDx"; got != want {
		t.Errorf("Unpack with unknown codes: got %q, want %q", got, want)
	}
}

func TestUnpackKeepsWhatIsInUse(t *testing.T) {
	p := Pack(userAgents[0])
	Unpack(p)
	if n := testing.AllocsPerRun(100, func() { Unpack(p) }); n != 0 {
		t.Errorf("Unpack of a packed form seen before: %v allocations, want 0", n)
	}
	for i := range 2*maxUnpacked + 10 {
		ua := userAgents[0] + " app/" + strconv.Itoa(i)
		if got := Unpack(Pack(ua)); got != ua {
			t.Fatalf("Unpack(Pack(%q)) = %q", ua, got)
		}
	}
	kept := 0
	unpacked.Range(func(any, any) bool { kept++; return true })
	if kept > maxUnpacked || kept == 0 {
		t.Errorf("%d packed forms kept, want 1 to %d", kept, maxUnpacked)
	}
	// The newest is among them: the set follows what is in use.
	newest := Pack(userAgents[0] + " app/" + strconv.Itoa(2*maxUnpacked+9))
	if _, ok := unpacked.Load(newest); !ok {
		t.Error("the newest packed form was not kept")
	}
}

func FuzzPack(f *testing.F) {
	for _, ua := range userAgents {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, s string) {
		Unpack(s) // any stored bytes: never panics
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
			return // not a cleaned User-Agent
		}
		p := Pack(s)
		if got := Unpack(p); got != s {
			t.Fatalf("Unpack(Pack(%q)) = %q (packed %q)", s, got, p)
		}
		if len(p) > len(s) || strings.IndexByte(p, 0x1f) >= 0 {
			t.Fatalf("Pack(%q) = %q: longer, or holds the separator", s, p)
		}
	})
}
