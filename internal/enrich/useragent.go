package enrich

import (
	"strings"

	"github.com/mssola/useragent"
)

// MaxUserAgentBytes is the most of a User-Agent header that is kept, stored or
// parsed. Real browsers send 100 to 300 bytes; Ory Kratos uses the same limit.
const MaxUserAgentBytes = 512

// Bounds on the parts of a Device, so that a label stays short enough to show
// in a list and to store with every session whatever the client sends.
const (
	maxNameBytes     = 32  // browser, OS and platform names
	maxVersionBytes  = 16  // versions ("10.15.7", "14541.0.0")
	maxVersionDigits = 8   // one numeric component of a version
	maxLabelBytes    = 128 // Device.Label; the parts above already keep it under this
	unknownDevice    = "Unknown device"
)

// Device is what a User-Agent header says about the client, in words a person
// recognises. Every field is valid UTF-8 and bounded in length; fields the
// header does not reveal are empty.
type Device struct {
	Label          string // "Chrome 131 on macOS", "Safari on iPhone", "curl 8.5", "Unknown device"
	Browser        string
	BrowserVersion string // major version only ("131"), or major.minor for tools like curl ("8.5")
	OS             string // "macOS", "Windows", "iOS", "Android", "Linux", "ChromeOS", ...
	OSVersion      string // "10.15.7", "17.1", "14" ... (empty when unknown)
	Platform       string // "Macintosh", "Windows", "iPhone", "iPad", "Linux", ...
	Mobile         bool
	Bot            bool
}

// SanitizeUserAgent makes a client-supplied User-Agent safe to store: it keeps
// the first MaxUserAgentBytes bytes without splitting a rune, replaces each
// invalid UTF-8 byte with U+FFFD, drops NUL and every other control character
// (and the Unicode bidirectional formatting characters, which can make text
// display as something it is not), and trims surrounding white space. The
// result is at most MaxUserAgentBytes long, and its cost does not grow with
// the input's length. Applying it twice gives the same result as applying it
// once.
func SanitizeUserAgent(ua string) string {
	return cleanText(ua, MaxUserAgentBytes)
}

// ParseUserAgent describes the client behind a User-Agent header. It
// sanitizes ua itself, so the raw header may be passed. It never panics: if
// the underlying parser fails, the result is Device{Label: "Unknown device"}.
//
// Labels read "<browser> <major version> on <OS>" ("Chrome 131 on macOS");
// Safari on iOS and iPadOS names the device instead ("Safari on iPhone"),
// because its version just repeats the OS version; tools without an OS read
// "<name> <major.minor>" ("curl 8.5"); bots read as their name ("Googlebot").
func ParseUserAgent(ua string) (d Device) {
	defer func() {
		if recover() != nil {
			d = Device{Label: unknownDevice}
		}
	}()
	return parseDevice(SanitizeUserAgent(ua))
}

// parsed is what the third-party parser reports, copied out so that only
// runParser touches the parser (and only it needs to recover).
type parsed struct {
	name, version string // browser or product
	os, platform  string // raw, e.g. "Intel Mac OS X 10_15_7", "Macintosh"
	osInfoName    string // the parser's split of os: "Mac OS X"
	osInfoVersion string // and "10.15.7"
	mozilla       bool   // a browser-style "Mozilla/x.y (...)" header
	mobile, bot   bool
}

// runParser runs mssola/useragent on ua; ok is false if it panicked, as
// older releases did on some inputs (mssola/user_agent issues 3, 5, 6, 8).
func runParser(ua string) (p parsed, ok bool) {
	defer func() {
		if recover() != nil {
			p, ok = parsed{}, false
		}
	}()
	var u useragent.UserAgent
	u.Parse(ua)
	p.name, p.version = u.Browser()
	p.os, p.platform = u.OS(), u.Platform()
	if p.os != "" {
		info := u.OSInfo()
		p.osInfoName, p.osInfoVersion = info.Name, info.Version
	}
	p.mozilla = u.Mozilla() != ""
	p.mobile, p.bot = u.Mobile(), u.Bot()
	return p, true
}

// parseDevice maps an already sanitized user agent to a Device. It recovers
// only from the third-party parser, so that fuzzing finds bugs in this file.
func parseDevice(ua string) Device {
	if ua == "" {
		return Device{Label: unknownDevice}
	}
	p, ok := runParser(ua)
	if !ok {
		return Device{Label: unknownDevice}
	}
	var d Device
	d.Mobile, d.Bot = p.mobile, p.bot
	switch {
	case p.bot:
		d.Browser = botName(cleanName(p.name, maxNameBytes))
		if d.Browser != "" {
			d.BrowserVersion = majorMinor(p.version)
		}
	case !p.mozilla && p.os == "":
		// A tool such as curl: "name/version" and nothing else. A bare word
		// without a version is more likely garbage than a product.
		if name := cleanName(p.name, maxNameBytes); name != "" && name != "Mozilla" {
			if v := majorMinor(p.version); v != "" {
				d.Browser, d.BrowserVersion = name, v
			}
		}
	default:
		d.OS, d.OSVersion, d.Platform = classifyOS(p)
		d.Browser, d.BrowserVersion = classifyBrowser(ua, p, d.OS)
	}
	d.Label = label(d)
	if d.Label == unknownDevice {
		// Nothing recognisable: do not keep stray flags either.
		return Device{Label: unknownDevice}
	}
	return d
}

// botName gives the usual spelling of well-known crawlers.
func botName(name string) string {
	if name == "bingbot" {
		return "Bingbot"
	}
	return name
}

// classifyBrowser names the browser, correcting what the parser misses: it
// reports Samsung Internet and Android WebView as "Android", Edge for Android
// or iOS, Vivaldi and some Yandex builds as Chrome or Safari, and nothing at
// all for Android apps.
func classifyBrowser(ua string, p parsed, os string) (name, version string) {
	name, version = p.name, p.version
	for _, o := range browserOverrides {
		if v, ok := productVersion(ua, o.token); ok {
			name, version = o.name, v
			break
		}
	}
	switch {
	case os == "Android" && strings.Contains(ua, "; wv)"):
		name = "Android WebView"
		version, _ = productVersion(ua, "Chrome/")
	case name == "" && strings.HasPrefix(ua, "Dalvik/"):
		// An Android app's own HTTP client: the app is not named.
		name, version = "Android app", ""
	case name == "Opera" && strings.HasPrefix(ua, "Opera/"):
		// Presto-era Opera froze its product version at 9.80.
		if v, ok := productVersion(ua, "Version/"); ok {
			version = v
		}
	}
	if friendly, ok := browserNames[name]; ok {
		name = friendly
	}
	name = cleanName(name, maxNameBytes)
	if name == "" {
		return "", ""
	}
	return name, leadingDigits(version)
}

// browserOverrides are product tokens that identify a browser better than the
// parser does, checked in order.
var browserOverrides = []struct{ token, name string }{
	{"SamsungBrowser/", "Samsung Internet"},
	{"EdgA/", "Edge"},
	{"EdgiOS/", "Edge"},
	{"Vivaldi/", "Vivaldi"},
	{"YaBrowser/", "Yandex Browser"},
}

// browserNames maps the parser's names to the ones people know; "" means the
// name says nothing about the browser.
var browserNames = map[string]string{
	"Mozilla":    "",
	"Android":    "Android Browser",
	"YaBrowser":  "Yandex Browser",
	"Mobile App": "In-app browser",
}

// productVersion finds the product token (such as "Chrome/") in ua, at the
// start or after a space, and returns the version that follows it.
func productVersion(ua, token string) (string, bool) {
	for i := 0; ; {
		j := strings.Index(ua[i:], token)
		if j < 0 {
			return "", false
		}
		j += i
		if j == 0 || ua[j-1] == ' ' {
			v := ua[j+len(token):]
			if end := strings.IndexAny(v, " ;)"); end >= 0 {
				v = v[:end]
			}
			return v, true
		}
		i = j + len(token)
	}
}

// classifyOS maps the parser's OS and platform strings to an OS family, its
// version and the kind of device.
func classifyOS(p parsed) (os, version, platform string) {
	raw, plat := p.os, p.platform
	switch {
	case plat == "iPhone" || strings.HasPrefix(plat, "iPod"):
		if plat != "iPhone" {
			plat = "iPod"
		}
		return "iOS", dottedVersion(p.osInfoVersion), plat
	case plat == "iPad":
		// Firefox on iPad sends a Mac header; its version is macOS's, not iPadOS's.
		if !strings.Contains(raw, "like Mac OS X") {
			return "iPadOS", "", "iPad"
		}
		return "iPadOS", dottedVersion(p.osInfoVersion), "iPad"
	case strings.HasPrefix(raw, "Windows Phone"):
		return "Windows Phone", dottedVersion(strings.TrimPrefix(raw, "Windows Phone")), "Windows Phone"
	case strings.HasPrefix(raw, "Windows"):
		return "Windows", windowsVersion(raw), "Windows"
	case strings.Contains(raw, "Mac OS X"):
		return "macOS", dottedVersion(p.osInfoVersion), "Macintosh"
	case strings.HasPrefix(raw, "Android"):
		return "Android", dottedVersion(strings.TrimPrefix(raw, "Android")), "Android"
	case strings.HasPrefix(raw, "CrOS"):
		fields := strings.Fields(raw)
		return "ChromeOS", dottedVersion(fields[len(fields)-1]), "Chromebook"
	case isLinux(raw):
		return "Linux", "", "Linux"
	case raw == "":
		return "", "", ""
	}
	version = dottedVersion(p.osInfoVersion)
	return cleanName(p.osInfoName, maxNameBytes), version, cleanName(plat, maxNameBytes)
}

// windowsVersion turns the parser's "Windows 10", "Windows XP x64 Edition" or
// "Windows NT 4.0" into "10", "XP" or "NT 4.0". Windows 11 sends the same
// header as Windows 10, so it reads as "10".
func windowsVersion(raw string) string {
	rest := strings.TrimSpace(strings.TrimPrefix(raw, "Windows"))
	if strings.HasPrefix(rest, "NT ") {
		return cleanName(rest, maxVersionBytes)
	}
	if i := strings.IndexAny(rest, " ,"); i >= 0 {
		rest = rest[:i]
	}
	return cleanName(rest, maxVersionBytes)
}

// linuxNames are what Linux desktops put where the OS goes.
var linuxNames = []string{"Linux", "Ubuntu", "Fedora", "Debian", "Mint", "Arch", "openSUSE", "CentOS", "Manjaro", "Gentoo"}

func isLinux(raw string) bool {
	for _, n := range linuxNames {
		if strings.HasPrefix(raw, n) {
			return true
		}
	}
	return false
}

// label builds Device.Label from the other fields.
func label(d Device) string {
	var s string
	switch {
	case d.Bot && d.Browser != "":
		s = d.Browser
	case d.Bot:
		s = "Unknown bot"
	case d.Browser == "" && d.OS == "":
		return unknownDevice
	case d.Browser == "":
		s = "Unknown browser on " + d.OS
	case d.Browser == "Safari" && (d.OS == "iOS" || d.OS == "iPadOS") && d.Platform != "":
		s = "Safari on " + d.Platform
	default:
		s = d.Browser
		if d.BrowserVersion != "" {
			s += " " + d.BrowserVersion
		}
		if d.OS != "" {
			s += " on " + d.OS
		}
	}
	return truncateUTF8(s, maxLabelBytes)
}
