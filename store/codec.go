package store

import (
	"encoding/base64"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/token"
	"github.com/sessionkit/sessionkit/internal/uapack"
)

// A session is stored as one string: its fields joined by the unit
// separator, hot-path fields first. The scripts name the positions by
// fieldNames (see contract.go), so moving a field here moves it there.
// One string, stored as a field of the user's hash of active sessions,
// makes the hot path's read one HGET, and keeps a session in about half the
// memory of a hash per session.
const (
	pVersion = iota
	pTokenHash
	pExpires
	pLastActivity
	pIdle
	pIP
	pLastIP
	pUID
	pCreated
	pIPChanges
	pRefresh
	pLastProvider
	pLastProviderAt
	pProviders
	pDevLabel
	pDevBrowser
	pDevBrowserVersion
	pDevOS
	pDevOSVersion
	pDevPlatform
	pDevFlags
	pLocLabel
	pLocCity
	pLocRegion
	pLocCountry
	pLocCode
	pUserAgent
	// Fields are only ever appended: a record written before one existed
	// reads it as empty (see decodeSession and split in common.lua).
	pRefreshHash   // SHA-256 of the current refresh secret; empty: a cookie session
	pRefreshGen    // the current refresh token's generation
	pRefreshPrev   // SHA-256 of the secret it superseded
	pRefreshSealed // the current secret sealed with the previous one (token.Seal)
	pRefreshAt     // when it was issued, ms
	pAuthAt        // when credentials were last checked, ms (empty: at creation)
	pAAL           // authentication assurance level (empty: aal1)
	pImpersonator  // the operator a support session was opened for (empty: none)
	pRefreshFamily // SHA-256 of the refresh token family's secret, as storedHash (empty: a cookie session, or one from before families)
	fieldCount
)

// minFields is how many fields a stored record has at least: records
// leave out their trailing empty fields, and the owner is never empty.
const minFields = pUID + 1

// hotFields is how many leading fields the hot path splits: those up to
// the owner.
const hotFields = pUID + 1

// fieldNames are the stored fields' names in the scripts (F_<name>, see
// contract.go), by position.
var fieldNames = [fieldCount]string{
	pVersion: "VERSION", pTokenHash: "TOKEN_HASH", pExpires: "EXPIRES", pLastActivity: "LAST_ACTIVITY",
	pIdle: "IDLE", pIP: "IP", pLastIP: "LAST_IP", pUID: "USER_ID", pCreated: "CREATED",
	pIPChanges: "IP_CHANGES", pRefresh: "REFRESH_TOKEN", pLastProvider: "LAST_PROVIDER",
	pLastProviderAt: "LAST_PROVIDER_AT", pProviders: "PROVIDERS", pDevLabel: "DEVICE_LABEL",
	pDevBrowser: "DEVICE_BROWSER", pDevBrowserVersion: "DEVICE_BROWSER_VERSION", pDevOS: "DEVICE_OS",
	pDevOSVersion: "DEVICE_OS_VERSION", pDevPlatform: "DEVICE_PLATFORM", pDevFlags: "DEVICE_FLAGS",
	pLocLabel: "LOCATION_LABEL", pLocCity: "LOCATION_CITY", pLocRegion: "LOCATION_REGION",
	pLocCountry: "LOCATION_COUNTRY", pLocCode: "LOCATION_COUNTRY_CODE", pUserAgent: "USER_AGENT",
	pRefreshHash: "REFRESH_HASH", pRefreshGen: "REFRESH_GEN", pRefreshPrev: "REFRESH_PREV",
	pRefreshSealed: "REFRESH_SEALED", pRefreshAt: "REFRESH_AT", pAuthAt: "AUTH_AT", pAAL: "AAL", pImpersonator: "IMPERSONATED_BY",
	pRefreshFamily: "REFRESH_FAMILY",
}

const (
	formatVersion = "1"
	sep           = "\x1f"
	sepByte       = 0x1f // sep
	// maxValue bounds each enrichment string; the User-Agent arrives bounded.
	maxValue = 64
)

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(s string) time.Time {
	n, ok := parseInt(s)
	if !ok || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// parseInt is strconv.ParseInt(s, 10, 64), reporting success, with a fast
// path for what the store writes: up to 18 decimal digits, no sign.
func parseInt(s string) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	if len(s) > 18 {
		return parseIntSlow(s)
	}
	var n int64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return parseIntSlow(s)
		}
		n = n*10 + int64(d)
	}
	return n, true
}

func parseIntSlow(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// clean makes s valid UTF-8 without control characters (the separator is one).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsFunc(s, isControl) {
		s = strings.Map(func(r rune) rune {
			if isControl(r) {
				return -1
			}
			return r
		}, s)
	}
	return s
}

// bound cleans s and truncates it to maxValue bytes on a rune boundary.
func bound(s string) string {
	s = clean(s)
	if len(s) <= maxValue {
		return s
	}
	cut := maxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func hashText(h [32]byte) string { return base64.RawURLEncoding.EncodeToString(h[:]) }

// storedHashLen is how many characters of a token hash's text a record
// stores: the first 132 bits of SHA-256 of a 256-bit random secret, beyond
// any search for a secret that matches, in half the bytes. Records written
// before keep all 43 (fullHashLen); both read.
const (
	storedHashLen = 22
	fullHashLen   = 43
)

// storedHash is the stored form of a token's hash.
func storedHash(h [32]byte) string { return hashText(h)[:storedHashLen] }

func flag(b bool, c string) string {
	if b {
		return c
	}
	return ""
}

// encodeSession returns the stored form of a new session; refresh, when
// not nil, is the hash of its first refresh secret (a bearer session), and
// family the hash of its refresh token family's (nil: a session as stored
// before families). A cookie session's record has no family field at all:
// it is the last, and trailing empty fields are left out.
func encodeSession(s sessionkit.Session, hash [32]byte, refresh, family *[32]byte) string {
	f := make([]string, fieldCount)
	f[pVersion] = formatVersion
	f[pTokenHash] = storedHash(hash)
	f[pExpires] = strconv.FormatInt(millis(s.ExpiresAt), 10)
	f[pLastActivity] = strconv.FormatInt(millis(s.LastActivityAt), 10)
	if s.IdleTimeout > 0 {
		f[pIdle] = strconv.FormatInt(s.IdleTimeout.Milliseconds(), 10)
	}
	f[pIP] = s.IPAddress.String()
	if s.LastIPAddress != s.IPAddress { // empty: the address at sign-in
		f[pLastIP] = s.LastIPAddress.String()
	}
	f[pUID] = s.UserID.String()
	if millis(s.CreatedAt) != millis(s.LastActivityAt) { // empty: the last activity (common.lua's touched)
		f[pCreated] = strconv.FormatInt(millis(s.CreatedAt), 10)
	}
	f[pRefresh] = clean(s.RefreshTokenID)
	d := s.Device
	f[pDevLabel], f[pDevBrowser], f[pDevBrowserVersion] = bound(d.Label), bound(d.Browser), bound(d.BrowserVersion)
	f[pDevOS], f[pDevOSVersion], f[pDevPlatform] = bound(d.OS), bound(d.OSVersion), bound(d.Platform)
	f[pDevFlags] = flag(d.Mobile, "m") + flag(d.Bot, "b")
	f[pLocLabel], f[pLocCity], f[pLocRegion], f[pLocCountry], f[pLocCode] = locationValues(s.Location)
	f[pUserAgent] = uapack.Pack(clean(s.UserAgent))
	// The fields that most sessions hold at their defaults are left empty:
	// the last address is the first, the creation is the last activity,
	// credentials were checked at creation, at aal1; and so are the
	// trailing empty fields. Each byte counts: Redis allocates in steps
	// (see internal/uapack).
	if !s.AuthenticatedAt.IsZero() && millis(s.AuthenticatedAt) != millis(s.CreatedAt) {
		f[pAuthAt] = strconv.FormatInt(millis(s.AuthenticatedAt), 10)
	}
	if s.AAL != sessionkit.AAL1 {
		f[pAAL] = clean(s.AAL)
	}
	f[pImpersonator] = clean(s.ImpersonatedBy)
	if refresh != nil {
		f[pRefreshHash], f[pRefreshGen] = hashText(*refresh), "0"
		f[pRefreshAt] = strconv.FormatInt(millis(s.CreatedAt), 10)
		if family != nil {
			f[pRefreshFamily] = storedHash(*family)
		}
	}
	n := len(f)
	for n > minFields && f[n-1] == "" {
		n--
	}
	return strings.Join(f[:n], sep)
}

// locationValues are the five location fields, bounded as stored.
func locationValues(l sessionkit.Location) (label, city, region, country, code string) {
	return bound(l.Label), bound(l.City), bound(l.Region), bound(l.Country), bound(l.CountryCode)
}

// splitFields splits a stored session into f: between minFields fields
// (a record written before later fields existed; the rest stay empty) and
// fieldCount; fields after those, a later version's, are ignored, so that
// a record stays readable to the version before during a rolling deploy
// (the scripts keep them when they write). It runs on every request, so it
// looks for separators eight bytes at a time rather than calling IndexByte
// per field (most fields are a few bytes long, and a call costs more than
// the search).
func splitFields(v string, f *[fieldCount]string) bool {
	n, start, i := 0, 0, 0
	for ; i+8 <= len(v); i += 8 {
		// The high bit of each byte of m is set where v's byte is the
		// separator, exactly: no carry crosses bytes (x&low7 + low7 is at
		// most 0xfe per byte).
		const low7 = 0x7f7f7f7f7f7f7f7f
		x := load64(v, i) ^ (sepByte * 0x0101010101010101)
		for m := ^((x&low7 + low7) | x | low7); m != 0; m &= m - 1 {
			j := i + bits.TrailingZeros64(m)>>3
			if n == fieldCount-1 {
				f[n] = v[start:j] // fields of a later version follow
				return f[pVersion] == formatVersion
			}
			f[n], start = v[start:j], j+1
			n++
		}
	}
	for ; i < len(v); i++ {
		if v[i] == sepByte {
			if n == fieldCount-1 {
				f[n] = v[start:i]
				return f[pVersion] == formatVersion
			}
			f[n], start = v[start:i], i+1
			n++
		}
	}
	f[n] = v[start:]
	return n+1 >= minFields && f[pVersion] == formatVersion
}

// load64 reads the eight bytes of s at i, little-endian (one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// decodeSession builds a session from its stored form; the token and
// refresh hashes stay behind.
func decodeSession(id uuid.UUID, v string) (sessionkit.Session, bool) {
	var f [fieldCount]string // on the stack: this runs on every request
	var s sessionkit.Session
	if !splitFields(v, &f) || !sessionFromFields(id, &f, &s) {
		return sessionkit.Session{}, false
	}
	return s, true
}

// decodePeek decodes what Peek reads, splitting it once: the session, its
// token hash and, for a bearer session, its refresh state.
func decodePeek(id uuid.UUID, v string, s *sessionkit.Session, pk *backend.Peeked) bool {
	var f [fieldCount]string
	if !splitFields(v, &f) || !sessionFromFields(id, &f, s) || !decodeTokenHash(f[pTokenHash], pk) {
		return false
	}
	if s.Bearer {
		st, ok := refreshFromFields(&f)
		if !ok {
			return false
		}
		pk.Refresh = backend.RefreshState{Hash: st.hash, Generation: st.gen, Family: st.family, Previous: st.prev, RotatedAt: st.issuedAt}
	}
	return true
}

// sessionFromFields fills s from the fields of a stored session. The
// strings are the stored value's own bytes (the User-Agent unpacked, see
// uapack.Unpack): nothing is copied.
func sessionFromFields(id uuid.UUID, f *[fieldCount]string, s *sessionkit.Session) bool {
	uid, ok := parseUUID(f[pUID])
	if !ok {
		return false
	}
	flags := f[pDevFlags]
	*s = sessionkit.Session{
		ID:             id,
		UserID:         uid,
		LastActivityAt: fromMillis(f[pLastActivity]),
		ExpiresAt:      fromMillis(f[pExpires]),
		RefreshTokenID: f[pRefresh],
		Device: sessionkit.Device{
			Label: f[pDevLabel], Browser: f[pDevBrowser], BrowserVersion: f[pDevBrowserVersion],
			OS: f[pDevOS], OSVersion: f[pDevOSVersion], Platform: f[pDevPlatform],
			Mobile: strings.IndexByte(flags, 'm') >= 0, Bot: strings.IndexByte(flags, 'b') >= 0,
		},
		Location: sessionkit.Location{
			Label: f[pLocLabel], City: f[pLocCity], Region: f[pLocRegion],
			Country: f[pLocCountry], CountryCode: f[pLocCode],
		},
		LastProviderAccessed: f[pLastProvider],
		LastProviderAccessAt: fromMillis(f[pLastProviderAt]),
		UserAgent:            uapack.Unpack(f[pUserAgent]),
		Bearer:               f[pRefreshHash] != "",
		AuthenticatedAt:      fromMillis(f[pAuthAt]),
		AAL:                  f[pAAL],
		ImpersonatedBy:       f[pImpersonator],
	}
	s.CreatedAt = s.LastActivityAt // empty: not active since
	if f[pCreated] != "" {
		s.CreatedAt = fromMillis(f[pCreated])
	}
	if s.AuthenticatedAt.IsZero() { // a record from before the field
		s.AuthenticatedAt = s.CreatedAt
	}
	if s.AAL == "" {
		s.AAL = sessionkit.AAL1
	}
	if f[pIdle] != "" {
		if ms, ok := parseInt(f[pIdle]); ok {
			s.IdleTimeout = time.Duration(ms) * time.Millisecond
		}
	}
	s.IPAddress, _ = netip.ParseAddr(f[pIP])
	s.LastIPAddress = s.IPAddress
	if f[pLastIP] != "" && f[pLastIP] != f[pIP] {
		s.LastIPAddress, _ = netip.ParseAddr(f[pLastIP])
	}
	if f[pIPChanges] != "" {
		s.IPChangeCount, _ = strconv.Atoi(f[pIPChanges])
	}
	if f[pProviders] != "" {
		s.ProvidersAccessed = strings.Split(f[pProviders], ",")
	}
	return true
}

// parseUUID reads a user id as stored (uuid.UUID.String's canonical
// form) without uuid.Parse's generality, which it falls back to for any
// other spelling.
func parseUUID(s string) (uuid.UUID, bool) {
	if id, ok := token.ParseID(s); ok {
		return id, true
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// sessionOf names the session of a member in t's slot.
func sessionOf(t sessionid.Tag, member string) (uuid.UUID, bool) {
	return sessionid.FromMember(t, member)
}

// refreshState is a bearer session's refresh token state, as stored.
type refreshState struct {
	hash, prev [32]byte
	gen        uint32
	sealed     [32]byte
	issuedAt   time.Time
	family     [32]byte // its first 132 bits (storedHash), the rest zero; zero: none
}

// refreshFromFields reads the refresh state from a stored session's fields.
func refreshFromFields(f *[fieldCount]string) (refreshState, bool) {
	var st refreshState
	if f[pRefreshHash] == "" {
		return st, false
	}
	gen, err := strconv.ParseUint(f[pRefreshGen], 10, 32)
	if err != nil || !decodeHashText(f[pRefreshHash], &st.hash) {
		return st, false
	}
	st.gen = uint32(gen)
	if f[pRefreshPrev] != "" && !decodeHashText(f[pRefreshPrev], &st.prev) {
		return st, false
	}
	if f[pRefreshSealed] != "" && !decodeHashText(f[pRefreshSealed], &st.sealed) {
		return st, false
	}
	st.issuedAt = fromMillis(f[pRefreshAt])
	if f[pRefreshFamily] != "" && !decodeStoredHash(f[pRefreshFamily], &st.family) {
		return st, false
	}
	return st, true
}

// decodeTokenHash reads a stored token hash into pk: storedHash's form
// or, from records written before it, hashText's.
func decodeTokenHash(s string, pk *backend.Peeked) bool {
	if len(s) != storedHashLen {
		pk.TokenHashPrefix = false
		return decodeHashText(s, &pk.TokenHash)
	}
	pk.TokenHashPrefix = true
	return decodeStoredHash(s, &pk.TokenHash)
}

// decodeStoredHash reads storedHash's form into h: the first 132 bits,
// the rest zero.
func decodeStoredHash(s string, h *[32]byte) bool {
	if len(s) != storedHashLen {
		return false
	}
	// 22 characters are 132 bits: with two more of zero bits they decode
	// to 18 bytes, the 17th holding the last four bits high.
	var src [storedHashLen + 2]byte // on the stack: no allocation
	copy(src[:], s)
	src[storedHashLen], src[storedHashLen+1] = 'A', 'A'
	var dst [18]byte
	n, err := base64.RawURLEncoding.Decode(dst[:], src[:])
	if err != nil || n != len(dst) {
		return false
	}
	*h = [32]byte{}
	copy(h[:17], dst[:17])
	return true
}

// decodeHashText reads hashText's form.
func decodeHashText(s string, h *[32]byte) bool {
	if len(s) != fullHashLen {
		return false
	}
	var src [fullHashLen]byte // a stack copy: no allocation
	copy(src[:], s)
	var dst [33]byte
	n, err := base64.RawURLEncoding.Decode(dst[:], src[:])
	if err != nil || n != 32 {
		return false
	}
	copy(h[:], dst[:32])
	return true
}
