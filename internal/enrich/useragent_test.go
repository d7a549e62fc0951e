package enrich

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Real User-Agent headers, as browsers and tools sent them in late 2024.
const (
	uaChromeWindows   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaChromeMac       = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaSafariIPhone    = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	uaChromeAndroid   = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	uaFirefoxWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaGooglebot       = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaCurl            = "curl/8.5.0"
	uaSamsungInternet = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
)

// Fields: Label, Browser, BrowserVersion, OS, OSVersion, Platform, Mobile, Bot.
var userAgentTests = []struct {
	name string
	ua   string
	want Device
}{
	// Desktop browsers.
	{"Chrome on Windows", uaChromeWindows,
		Device{"Chrome 131 on Windows", "Chrome", "131", "Windows", "10", "Windows", false, false}},
	{"Chrome on Windows 7", "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
		Device{"Chrome 109 on Windows", "Chrome", "109", "Windows", "7", "Windows", false, false}},
	{"Chrome on macOS", uaChromeMac,
		Device{"Chrome 131 on macOS", "Chrome", "131", "macOS", "10.15.7", "Macintosh", false, false}},
	{"Chrome on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Device{"Chrome 131 on Linux", "Chrome", "131", "Linux", "", "Linux", false, false}},
	{"Chrome on ChromeOS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Device{"Chrome 131 on ChromeOS", "Chrome", "131", "ChromeOS", "14541.0.0", "Chromebook", false, false}},
	{"Firefox on Windows", uaFirefoxWindows,
		Device{"Firefox 133 on Windows", "Firefox", "133", "Windows", "10", "Windows", false, false}},
	{"Firefox on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
		Device{"Firefox 133 on macOS", "Firefox", "133", "macOS", "10.15", "Macintosh", false, false}},
	{"Firefox on Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		Device{"Firefox 133 on Linux", "Firefox", "133", "Linux", "", "Linux", false, false}},
	{"Firefox on Ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		Device{"Firefox 133 on Linux", "Firefox", "133", "Linux", "", "Linux", false, false}},
	{"Firefox on Fedora", "Mozilla/5.0 (X11; Fedora; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		Device{"Firefox 133 on Linux", "Firefox", "133", "Linux", "", "Linux", false, false}},
	{"Firefox on FreeBSD", "Mozilla/5.0 (X11; FreeBSD amd64; rv:133.0) Gecko/20100101 Firefox/133.0",
		Device{"Firefox 133 on FreeBSD", "Firefox", "133", "FreeBSD", "", "X11", false, false}},
	{"Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		Device{"Safari 18 on macOS", "Safari", "18", "macOS", "10.15.7", "Macintosh", false, false}},
	{"Safari on macOS 14", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		Device{"Safari 18 on macOS", "Safari", "18", "macOS", "14.7.1", "Macintosh", false, false}},
	{"Edge on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		Device{"Edge 131 on Windows", "Edge", "131", "Windows", "10", "Windows", false, false}},
	{"Edge on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
		Device{"Edge 131 on macOS", "Edge", "131", "macOS", "10.15.7", "Macintosh", false, false}},
	{"Opera on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
		Device{"Opera 115 on Windows", "Opera", "115", "Windows", "10", "Windows", false, false}},
	{"Opera on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
		Device{"Opera 115 on macOS", "Opera", "115", "macOS", "10.15.7", "Macintosh", false, false}},
	{"Opera on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
		Device{"Opera 115 on Linux", "Opera", "115", "Linux", "", "Linux", false, false}},
	{"Opera Presto", "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.12.388 Version/12.16",
		Device{"Opera 12 on Windows", "Opera", "12", "Windows", "7", "Windows", false, false}},
	{"Vivaldi on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
		Device{"Vivaldi 7 on Windows", "Vivaldi", "7", "Windows", "10", "Windows", false, false}},
	{"Yandex on Windows", "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 YaBrowser/24.10.0.0 Safari/537.36",
		Device{"Yandex Browser 24 on Windows", "Yandex Browser", "24", "Windows", "10", "Windows", false, false}},
	{"Internet Explorer 11", "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
		Device{"Internet Explorer 11 on Windows", "Internet Explorer", "11", "Windows", "10", "Windows", false, false}},
	{"Headless Chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
		Device{"Headless Chrome 131 on Linux", "Headless Chrome", "131", "Linux", "", "Linux", false, false}},

	// Phones and tablets.
	{"Safari on iPhone", uaSafariIPhone,
		Device{"Safari on iPhone", "Safari", "17", "iOS", "17.1", "iPhone", true, false}},
	{"Chrome on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
		Device{"Chrome 131 on iOS", "Chrome", "131", "iOS", "17.1", "iPhone", true, false}},
	{"Firefox on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
		Device{"Firefox 133 on iOS", "Firefox", "133", "iOS", "17.1", "iPhone", true, false}},
	{"Edge on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15",
		Device{"Edge 131 on iOS", "Edge", "131", "iOS", "17.1", "iPhone", true, false}},
	{"in-app browser on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		Device{"In-app browser on iOS", "In-app browser", "", "iOS", "17.1", "iPhone", true, false}},
	{"Safari on iPad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
		Device{"Safari on iPad", "Safari", "16", "iPadOS", "16.6", "iPad", true, false}},
	{"Safari on iPod touch", "Mozilla/5.0 (iPod touch; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6 Mobile/15E148 Safari/604.1",
		Device{"Safari on iPod", "Safari", "15", "iOS", "15.8", "iPod", true, false}},
	{"Chrome on Android", uaChromeAndroid,
		Device{"Chrome 131 on Android", "Chrome", "131", "Android", "10", "Android", true, false}},
	{"Chrome on Pixel", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
		Device{"Chrome 131 on Android", "Chrome", "131", "Android", "14", "Android", true, false}},
	{"Samsung Internet", uaSamsungInternet,
		Device{"Samsung Internet 26 on Android", "Samsung Internet", "26", "Android", "14", "Android", true, false}},
	{"Firefox on Android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
		Device{"Firefox 133 on Android", "Firefox", "133", "Android", "14", "Android", true, false}},
	{"Firefox on Android tablet", "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
		Device{"Firefox 133 on Android", "Firefox", "133", "Android", "14", "Android", true, false}},
	{"Chrome on Android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Device{"Chrome 131 on Android", "Chrome", "131", "Android", "13", "Android", true, false}},
	{"Edge on Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
		Device{"Edge 131 on Android", "Edge", "131", "Android", "10", "Android", true, false}},
	{"Opera on Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
		Device{"Opera 86 on Android", "Opera", "86", "Android", "10", "Android", true, false}},
	{"Android WebView", "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP1A.240305.019; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36",
		Device{"Android WebView 131 on Android", "Android WebView", "131", "Android", "14", "Android", true, false}},
	{"Android app (Dalvik)", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP1A.240305.019)",
		Device{"Android app on Android", "Android app", "", "Android", "14", "Android", true, false}},
	{"Edge on Windows Phone", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
		Device{"Edge 15 on Windows Phone", "Edge", "15", "Windows Phone", "10.0", "Windows Phone", true, false}},

	// Bots.
	{"Googlebot", uaGooglebot,
		Device{"Googlebot", "Googlebot", "2.1", "", "", "", false, true}},
	{"Googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		Device{"Googlebot", "Googlebot", "2.1", "", "", "", true, true}},
	{"Googlebot desktop", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36",
		Device{"Googlebot", "Googlebot", "2.1", "", "", "", false, true}},
	{"Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		Device{"Bingbot", "Bingbot", "2.0", "", "", "", false, true}},
	{"Bingbot desktop", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/131.0.0.0 Safari/537.36",
		Device{"Bingbot", "Bingbot", "2.0", "", "", "", false, true}},
	{"YandexBot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
		Device{"YandexBot", "YandexBot", "3.0", "", "", "", false, true}},
	{"facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		Device{"facebookexternalhit", "facebookexternalhit", "1.1", "", "", "", false, true}},
	{"MJ12bot with a v-prefixed version", "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
		Device{"MJ12bot", "MJ12bot", "1.4", "", "", "", false, true}},

	// Tools.
	{"curl", uaCurl,
		Device{"curl 8.5", "curl", "8.5", "", "", "", false, false}},
	{"Go-http-client/1.1", "Go-http-client/1.1",
		Device{"Go-http-client 1.1", "Go-http-client", "1.1", "", "", "", false, false}},
	{"Go-http-client/2.0", "Go-http-client/2.0",
		Device{"Go-http-client 2.0", "Go-http-client", "2.0", "", "", "", false, false}},
	{"python-requests", "python-requests/2.32.3",
		Device{"python-requests 2.32", "python-requests", "2.32", "", "", "", false, false}},
	{"Wget", "Wget/1.21.4",
		Device{"Wget 1.21", "Wget", "1.21", "", "", "", false, false}},
	{"Postman", "PostmanRuntime/7.42.0",
		Device{"PostmanRuntime 7.42", "PostmanRuntime", "7.42", "", "", "", false, false}},
	{"OkHttp", "okhttp/4.12.0",
		Device{"OkHttp 4.12", "OkHttp", "4.12", "", "", "", true, false}},
	{"Java", "Java/17.0.2",
		Device{"Java 17.0", "Java", "17.0", "", "", "", false, false}},
	{"OkHttp without a version", "okhttp",
		Device{"Unknown device", "", "", "", "", "", false, false}},

	// Nothing useful, hostile or broken.
	{"empty", "",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"only spaces", "   ",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"bare Mozilla", "Mozilla/5.0",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"unclosed comment", "Mozilla/5.0 (",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"OS but no browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
		Device{"Unknown browser on Windows", "", "", "Windows", "10", "Windows", false, false}},
	{"game console", "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
		Device{"Unknown browser on PlayStation", "", "", "PlayStation", "", "PlayStation", false, false}},
	{"words without version", "garbage string with spaces",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"markup as product", "<script>alert(1)</script>/1.0",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"markup after a real header", uaChromeAndroid + " <script>/1",
		Device{"Chrome 131 on Android", "Chrome", "131", "Android", "10", "Android", true, false}},
	{"non-ASCII product", "Zürich-Client/1.0",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"100 KB of one letter", strings.Repeat("A", 100<<10),
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"real header padded to 100 KB", uaChromeWindows + " " + strings.Repeat("x", 100<<10),
		Device{"Chrome 131 on Windows", "Chrome", "131", "Windows", "10", "Windows", false, false}},
	{"invalid UTF-8 only", "\xff\xfe\xfd",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"invalid UTF-8 at the end", uaChromeWindows + "\xff\xfe",
		Device{"Chrome 131 on Windows", "Chrome", "131", "Windows", "10", "Windows", false, false}},
	{"NUL bytes only", "\x00\x00\x00",
		Device{"Unknown device", "", "", "", "", "", false, false}},
	{"NUL bytes after a tool", "curl/8.5.0\x00\x00",
		Device{"curl 8.5", "curl", "8.5", "", "", "", false, false}},
	{"NUL byte inside the comment", "Mozilla/5.0 (iPhone;\x00 CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		Device{"Safari on iPhone", "Safari", "17", "iOS", "17.1", "iPhone", true, false}},
	{"bidi override", "curl\u202e/8.5.0",
		Device{"curl 8.5", "curl", "8.5", "", "", "", false, false}},
}

func TestParseUserAgent(t *testing.T) {
	for _, tt := range userAgentTests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseUserAgent(tt.ua)
			if got != tt.want {
				t.Errorf("ParseUserAgent(%.80q):\n got %#v,\nwant %#v", tt.ua, got, tt.want)
			}
			checkDevice(t, got)
		})
	}
}

// checkDevice asserts what holds for every Device.
func checkDevice(t testing.TB, d Device) {
	t.Helper()
	fields := []struct {
		name, value string
		limit       int
	}{
		{"Label", d.Label, maxLabelBytes},
		{"Browser", d.Browser, maxNameBytes},
		{"BrowserVersion", d.BrowserVersion, maxVersionBytes},
		{"OS", d.OS, maxNameBytes},
		{"OSVersion", d.OSVersion, maxVersionBytes},
		{"Platform", d.Platform, maxNameBytes},
	}
	for _, f := range fields {
		if !utf8.ValidString(f.value) {
			t.Errorf("%s %q: got invalid UTF-8, want valid", f.name, f.value)
		}
		if len(f.value) > f.limit {
			t.Errorf("%s: got %d bytes, want at most %d", f.name, len(f.value), f.limit)
		}
		if strings.ContainsFunc(f.value, isDropped) {
			t.Errorf("%s %q: got control characters, want none", f.name, f.value)
		}
	}
	if d.Label == "" {
		t.Error("Label: got empty, want a label")
	}
}

func TestSanitizeUserAgent(t *testing.T) {
	max := strings.Repeat("a", MaxUserAgentBytes)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain header unchanged", uaChromeMac, uaChromeMac},
		{"exactly the limit", max, max},
		{"one byte over", max + "b", max},
		{"100 KB", strings.Repeat("abc ", 25<<10), strings.TrimSpace(strings.Repeat("abc ", 128))},
		{"multi-byte rune across the limit", max[:MaxUserAgentBytes-1] + "é", max[:MaxUserAgentBytes-1]},
		{"three-byte rune across the limit", max[:MaxUserAgentBytes-2] + "€", max[:MaxUserAgentBytes-2]},
		{"invalid bytes become U+FFFD", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
		{"NUL dropped", "cu\x00rl/8.5.0", "curl/8.5.0"},
		{"controls dropped", "a\tb\r\nc\x7fd\u0085e\x1b[31m", "abcde[31m"},
		{"bidi controls dropped", "abc\u202edcba\u2066x\u2069\u200f", "abcdcbax"},
		{"valid non-ASCII kept", "Zürich 東京 ☃", "Zürich 東京 ☃"},
		{"literal U+FFFD kept", "a\uFFFDb", "a\uFFFDb"},
		{"surrounding space trimmed", "  curl/8.5.0  ", "curl/8.5.0"},
		{"invalid bytes near the limit", max[:MaxUserAgentBytes-2] + "\xff", max[:MaxUserAgentBytes-2]},
		{"controls count against the limit", strings.Repeat("\x00", MaxUserAgentBytes) + "curl/8.5.0", ""},
		{"stray continuation bytes", strings.Repeat("\x80", 600), strings.Repeat("\uFFFD", MaxUserAgentBytes/3)},
		{"100 KB of NUL", strings.Repeat("\x00", 100<<10), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeUserAgent(tt.in)
			if got != tt.want {
				t.Errorf("SanitizeUserAgent(%.60q): got %.60q (%d bytes), want %.60q (%d bytes)", tt.in, got, len(got), tt.want, len(tt.want))
			}
			if again := SanitizeUserAgent(got); again != got {
				t.Errorf("not idempotent: got %.60q, want %.60q", again, got)
			}
		})
	}
}

func TestSanitizeUserAgentDoesNotCopyCleanInput(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = SanitizeUserAgent(uaChromeMac) }); n != 0 {
		t.Errorf("got %v allocations, want 0", n)
	}
}

func TestVersionHelpers(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) string
		in   string
		want string
	}{
		{"majorMinor", majorMinor, "8.5.0", "8.5"},
		{"majorMinor", majorMinor, "1.1", "1.1"},
		{"majorMinor", majorMinor, "7", "7"},
		{"majorMinor", majorMinor, "2.x", "2"},
		{"majorMinor", majorMinor, "2.", "2"},
		{"majorMinor", majorMinor, "v2.1", "2.1"},
		{"majorMinor", majorMinor, "version", ""},
		{"majorMinor", majorMinor, "", ""},
		{"majorMinor", majorMinor, "123456789012.3", "12345678"},
		{"leadingDigits", leadingDigits, "131.0.0.0", "131"},
		{"leadingDigits", leadingDigits, "131<script>", "131"},
		{"leadingDigits", leadingDigits, "abc", ""},
		{"dottedVersion", dottedVersion, "10_15_7", "10.15.7"},
		{"dottedVersion", dottedVersion, " 14", "14"},
		{"dottedVersion", dottedVersion, "17.1", "17.1"},
		{"dottedVersion", dottedVersion, "10..15", ""},
		{"dottedVersion", dottedVersion, "10.15.", ""},
		{"dottedVersion", dottedVersion, ".10", ""},
		{"dottedVersion", dottedVersion, "x86_64", ""},
		{"dottedVersion", dottedVersion, "1.2.3.4.5.6.7.8.9", ""},
		{"windowsVersion", windowsVersion, "Windows 10", "10"},
		{"windowsVersion", windowsVersion, "Windows XP x64 Edition", "XP"},
		{"windowsVersion", windowsVersion, "Windows 2000, Service Pack 1 (SP1)", "2000"},
		{"windowsVersion", windowsVersion, "Windows NT 4.0", "NT 4.0"},
		{"windowsVersion", windowsVersion, "Windows", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.in, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Errorf("%s(%q): got %q, want %q", tt.name, tt.in, got, tt.want)
			}
		})
	}
}

func TestProductVersion(t *testing.T) {
	tests := []struct {
		ua, token, want string
		ok              bool
	}{
		{uaSamsungInternet, "SamsungBrowser/", "26.0", true},
		{uaSamsungInternet, "Chrome/", "122.0.0.0", true},
		{"XChrome/1 Chrome/2", "Chrome/", "2", true}, // only at a token boundary
		{"XChrome/1", "Chrome/", "", false},
		{"Chrome/3;x", "Chrome/", "3", true},
		{"Chrome/", "Chrome/", "", true},
		{uaCurl, "Chrome/", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.token+tt.ua, func(t *testing.T) {
			got, ok := productVersion(tt.ua, tt.token)
			if got != tt.want || ok != tt.ok {
				t.Errorf("productVersion(%q, %q): got %q, %v, want %q, %v", tt.ua, tt.token, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestLabelBounded builds devices from the longest parts the parser can
// produce and checks the label stays within its bound.
func TestLabelBounded(t *testing.T) {
	long := strings.Repeat("n", maxNameBytes)
	d := Device{Browser: long, BrowserVersion: strings.Repeat("9", maxVersionDigits), OS: long}
	if got := label(d); len(got) > maxLabelBytes || got == "" {
		t.Errorf("got a %d-byte label, want 1 to %d", len(got), maxLabelBytes)
	}
	tests := []struct {
		d    Device
		want string
	}{
		{Device{Bot: true}, "Unknown bot"},
		{Device{OS: "Linux"}, "Unknown browser on Linux"},
		{Device{Browser: "Safari", OS: "macOS"}, "Safari on macOS"},
		{Device{Browser: "Safari", BrowserVersion: "17", OS: "iOS"}, "Safari 17 on iOS"}, // no platform to show
		{Device{Browser: "Lynx", BrowserVersion: "2"}, "Lynx 2"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := label(tt.d); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
