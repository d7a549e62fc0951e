package clientip

import (
	"net/netip"
	"strings"
)

// maxAddrLen bounds the text handed to netip: the longest IPv6 literal is 45
// bytes, and zones are cut off before that point.
const maxAddrLen = 64

// Canonical strips an IPv6 zone and unmaps IPv4-mapped IPv6 addresses, so that
// one host has one representation for comparisons, maps and GeoIP lookups.
// The invalid Addr stays invalid.
func Canonical(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

// Parse parses an address as it appears in RemoteAddr or an X-Forwarded-For
// entry and returns it in canonical form (see [Canonical]).
//
// It accepts surrounding spaces and tabs, "1.2.3.4", "1.2.3.4:5678", "::1",
// "[::1]", "[2001:db8::1]:443" and zones ("fe80::1%eth0", "[fe80::1%eth0]:80").
// Ports must be decimal and at most 65535; an IPv4 address in brackets, an
// empty zone or any other text reports false.
func Parse(s string) (netip.Addr, bool) {
	s = trimBlank(s)
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPort(s[end+1:]) {
			return netip.Addr{}, false
		}
		a, ok := parseHost(s[1:end])
		if !ok || !a.Is6() {
			return netip.Addr{}, false
		}
		return Canonical(a), true
	}
	// One colon means IPv4 with a port; IPv6 literals have at least two.
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s[:i], ':') < 0 {
		if !validPort(s[i:]) {
			return netip.Addr{}, false
		}
		a, ok := parseHost(s[:i])
		if !ok || !a.Is4() {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, ok := parseHost(s)
	if !ok {
		return netip.Addr{}, false
	}
	return Canonical(a), true
}

// trimBlank is strings.Trim(s, " \t") without building the cutset's
// lookup table on every call: Parse runs on every request.
func trimBlank(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseHost parses a bare address with an optional zone. The zone is cut off
// before netip sees it: netip interns zones, and attacker-chosen zones would
// otherwise cost an allocation each.
func parseHost(s string) (netip.Addr, bool) {
	zoned := false
	if i := strings.IndexByte(s, '%'); i >= 0 {
		if i == len(s)-1 {
			return netip.Addr{}, false
		}
		s, zoned = s[:i], true
	}
	// Filtering the charset first keeps common junk ("unknown", hostnames)
	// from reaching netip, whose error values allocate.
	if s == "" || len(s) > maxAddrLen {
		return netip.Addr{}, false
	}
	for i := 0; i < len(s); i++ {
		if !isAddrByte(s[i]) {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || (zoned && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a, true
}

func isAddrByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '.' || c == ':'
}

// validPort reports whether s is empty or ":" followed by a decimal port of
// at most 65535 (leading zeros allowed, as netip.ParseAddrPort does).
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) < 2 {
		return false
	}
	n := 0
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return false
		}
	}
	return true
}
