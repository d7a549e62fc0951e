package enrich

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// truncateUTF8 cuts s to at most limit bytes without splitting a rune. It
// backs off at most utf8.UTFMax-1 bytes looking for the start of a rune, so
// on invalid input (stray continuation bytes) it still keeps almost limit
// bytes, which later become U+FFFD.
func truncateUTF8(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	for cut := limit; cut > limit-utf8.UTFMax && cut > 0; cut-- {
		if utf8.RuneStart(s[cut]) {
			return s[:cut]
		}
	}
	return s[:limit]
}

// isDropped reports whether r is removed from untrusted text: C0 and C1
// controls (NUL included) and the bidirectional formatting characters, which
// can make a stored string display as something it is not.
func isDropped(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u200e' || r == '\u200f' || r == '\u061c':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// cleanText keeps the first limit bytes of s without splitting a rune, makes
// them valid UTF-8 (each invalid byte becomes U+FFFD), drops the characters
// isDropped rejects, cuts again to limit bytes (a U+FFFD is longer than the
// byte it replaces) and trims surrounding white space. Cutting first bounds
// the work by limit however long s is. The result is a fixed point:
// cleanText(cleanText(s, n), n) == cleanText(s, n).
func cleanText(s string, limit int) string {
	s = truncateUTF8(s, limit)
	if isPlainASCII(s) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // range yields U+FFFD for every invalid byte
		if isDropped(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > limit {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// isPlainASCII reports whether s holds only printable ASCII, the common case
// that needs no copying.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isNameByte reports whether c may appear in a product, OS or platform name
// taken from a user agent. The set is deliberately small: these names end up
// in labels shown to users, and anything outside it is more likely an attack
// or garbage than a real name.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == ' ' || c == '.' || c == '-' || c == '_' || c == '+'
}

// cleanName returns s trimmed if it is a plausible name of at most limit
// bytes made only of isNameByte characters, and "" otherwise.
func cleanName(s string, limit int) string {
	s = strings.TrimSpace(s)
	if len(s) > limit {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return ""
		}
	}
	return s
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// leadingDigits returns the run of decimal digits at the start of s, at most
// maxVersionDigits long ("131.0.0.0" → "131").
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && i < maxVersionDigits && isDigit(s[i]) {
		i++
	}
	return s[:i]
}

// majorMinor returns the first two numeric components of v ("8.5.0" → "8.5",
// "1.1" → "1.1", "7" → "7", "v1.4.8" → "1.4") and "" when v does not start
// with a digit (after an optional "v").
func majorMinor(v string) string {
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && isDigit(v[1]) {
		v = v[1:]
	}
	major := leadingDigits(v)
	if major == "" {
		return ""
	}
	rest := v[len(major):]
	if len(rest) > 1 && rest[0] == '.' {
		if minor := leadingDigits(rest[1:]); minor != "" {
			return v[:len(major)+1+len(minor)]
		}
	}
	return major
}

// dottedVersion returns v with underscores turned into dots ("10_15_7" →
// "10.15.7") if the result is digits separated by single dots and short, and
// "" otherwise.
func dottedVersion(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > maxVersionBytes {
		return ""
	}
	prevDot := true
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case isDigit(c):
			prevDot = false
		case (c == '.' || c == '_') && !prevDot:
			prevDot = true
		default:
			return ""
		}
	}
	if prevDot {
		return ""
	}
	return strings.ReplaceAll(v, "_", ".")
}
