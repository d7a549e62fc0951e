package store

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/rediskey"
)

// Positions in the FIELDS list of lua/common.lua (0-based).
const (
	fUID = iota
	fTokenHash
	fCreated
	fLastActivity
	fExpires
	fIdle
	fIP
	fLastIP
	fIPChanges
	fRefresh
	fLastProvider
	fLastProviderAt
	fProviders
	fDevLabel
	fDevBrowser
	fDevBrowserVersion
	fDevOS
	fDevOSVersion
	fDevPlatform
	fDevFlags
	fLocLabel
	fLocCity
	fLocRegion
	fLocCountry
	fLocCode
	fUA0
	fieldCount = fUA0 + uaChunks
)

// hashFields is FIELDS for pipelined reads; keep in step with lua/common.lua.
var hashFields = []string{"uid", "th", "ca", "la", "ea", "it", "ip", "lip", "ic", "rt", "lp", "lpa", "pa",
	"dl", "db", "dbv", "do", "dov", "dp", "df", "ll", "lci", "lr", "lco", "cc",
	"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"}

// Redis keeps a small hash in the compact listpack encoding only while every
// value is at most 64 bytes (hash-max-listpack-value), so each stored string
// is bounded to that and the User-Agent is split into 64-byte chunks.
const (
	maxValue = 64
	uaChunks = 8
)

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// bound truncates s to maxValue bytes of valid UTF-8 without control
// characters (the unit separator packs replies; see lua/common.lua).
func bound(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsFunc(s, isControl) {
		s = strings.Map(func(r rune) rune {
			if isControl(r) {
				return -1
			}
			return r
		}, s)
	}
	if len(s) <= maxValue {
		return s
	}
	cut := maxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// sessionFields returns the field/value pairs of a new session's hash,
// leaving out empty values (a missing field reads as empty).
func sessionFields(s sessionkit.Session, hash [32]byte) []any {
	f := make([]any, 0, 2*fieldCount)
	add := func(k, v string) {
		if v != "" {
			f = append(f, k, v)
		}
	}
	add("uid", s.UserID.String())
	add("th", string(hash[:]))
	add("ea", strconv.FormatInt(millis(s.ExpiresAt), 10))
	if s.IdleTimeout > 0 {
		add("it", strconv.FormatInt(s.IdleTimeout.Milliseconds(), 10))
	}
	add("ip", s.IPAddress.String())
	add("rt", s.RefreshTokenID)
	d := s.Device
	add("dl", bound(d.Label))
	add("db", bound(d.Browser))
	add("dbv", bound(d.BrowserVersion))
	add("do", bound(d.OS))
	add("dov", bound(d.OSVersion))
	add("dp", bound(d.Platform))
	flags := ""
	if d.Mobile {
		flags += "m"
	}
	if d.Bot {
		flags += "b"
	}
	add("df", flags)
	f = append(f, locationFields(s.Location)...)
	ua := s.UserAgent
	if strings.ContainsFunc(ua, isControl) {
		ua = strings.Map(func(r rune) rune {
			if isControl(r) {
				return -1
			}
			return r
		}, ua)
	}
	for i := 0; i < uaChunks && ua != ""; i++ {
		n := min(maxValue, len(ua))
		add("u"+strconv.Itoa(i), ua[:n])
		ua = ua[n:]
	}
	return f
}

// locationFields returns all five location fields, empty ones included, so
// a location update can clear what the new address does not have.
func locationFields(l sessionkit.Location) []any {
	return []any{"ll", bound(l.Label), "lci", bound(l.City), "lr", bound(l.Region),
		"lco", bound(l.Country), "cc", bound(l.CountryCode)}
}

// unpack splits a packed reply of touch.lua into hashFields values.
func unpack(packed string) []string { return strings.Split(packed, "\x1f") }

// strs converts an HMGET reply; missing fields become "".
func strs(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = asString(x)
	}
	return out
}

// decodeSession builds a session from the values of hashFields.
func decodeSession(id uuid.UUID, v []string) (sessionkit.Session, bool) {
	if len(v) < fieldCount || v[fUID] == "" {
		return sessionkit.Session{}, false
	}
	get := func(i int) string { return v[i] }
	uid, err := uuid.Parse(get(fUID))
	if err != nil {
		return sessionkit.Session{}, false
	}
	s := sessionkit.Session{
		ID:             id,
		UserID:         uid,
		CreatedAt:      fromMillis(get(fCreated)),
		LastActivityAt: fromMillis(get(fLastActivity)),
		ExpiresAt:      fromMillis(get(fExpires)),
		RefreshTokenID: get(fRefresh),
		Device: sessionkit.Device{
			Label: get(fDevLabel), Browser: get(fDevBrowser), BrowserVersion: get(fDevBrowserVersion),
			OS: get(fDevOS), OSVersion: get(fDevOSVersion), Platform: get(fDevPlatform),
			Mobile: strings.Contains(get(fDevFlags), "m"), Bot: strings.Contains(get(fDevFlags), "b"),
		},
		Location: sessionkit.Location{
			Label: get(fLocLabel), City: get(fLocCity), Region: get(fLocRegion),
			Country: get(fLocCountry), CountryCode: get(fLocCode),
		},
		LastProviderAccessed: get(fLastProvider),
		LastProviderAccessAt: fromMillis(get(fLastProviderAt)),
	}
	if v := get(fIdle); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.IdleTimeout = time.Duration(ms) * time.Millisecond
		}
	}
	s.IPAddress, _ = netip.ParseAddr(get(fIP))
	if v := get(fLastIP); v != "" {
		s.LastIPAddress, _ = netip.ParseAddr(v)
	}
	if !s.LastIPAddress.IsValid() {
		s.LastIPAddress = s.IPAddress
	}
	if v := get(fIPChanges); v != "" {
		s.IPChangeCount, _ = strconv.Atoi(v)
	}
	if p := get(fProviders); p != "" {
		s.ProvidersAccessed = strings.Split(p, ",")
	}
	s.UserAgent = get(fUA0)
	if get(fUA0+1) != "" {
		s.UserAgent = strings.Join(v[fUA0:fUA0+uaChunks], "")
	}
	return s, true
}

// sessionOf names the session of a member in t's slot.
func sessionOf(t rediskey.Tag, member string) (uuid.UUID, bool) {
	return rediskey.SessionID(t, member)
}
