package store

import (
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sessionid"
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
	fieldCount
)

// minFields is how many fields the oldest stored records have.
const minFields = pUserAgent + 1

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
}

const (
	formatVersion = "1"
	sep           = "\x1f"
	// maxValue bounds each enrichment string; the User-Agent arrives bounded.
	maxValue = 64
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

// decodeHash reads the token hash of a stored session into h.
func decodeHash(v string, h *[32]byte) bool {
	_, rest, ok := strings.Cut(v, sep)
	if !ok || len(rest) < 43 || (len(rest) > 43 && rest[43] != sep[0]) {
		return false
	}
	var src [43]byte
	copy(src[:], rest[:43])
	var dst [33]byte
	n, err := base64.RawURLEncoding.Decode(dst[:], src[:])
	if err != nil || n != 32 {
		return false
	}
	copy(h[:], dst[:32])
	return true
}

func flag(b bool, c string) string {
	if b {
		return c
	}
	return ""
}

// encodeSession returns the stored form of a new session; refresh, when
// not nil, is the hash of its first refresh secret (a bearer session).
func encodeSession(s sessionkit.Session, hash [32]byte, refresh *[32]byte) string {
	f := make([]string, fieldCount)
	f[pVersion] = formatVersion
	f[pTokenHash] = hashText(hash)
	f[pExpires] = strconv.FormatInt(millis(s.ExpiresAt), 10)
	f[pLastActivity] = strconv.FormatInt(millis(s.LastActivityAt), 10)
	if s.IdleTimeout > 0 {
		f[pIdle] = strconv.FormatInt(s.IdleTimeout.Milliseconds(), 10)
	}
	f[pIP] = s.IPAddress.String()
	f[pLastIP] = s.LastIPAddress.String()
	f[pUID] = s.UserID.String()
	f[pCreated] = strconv.FormatInt(millis(s.CreatedAt), 10)
	f[pRefresh] = clean(s.RefreshTokenID)
	d := s.Device
	f[pDevLabel], f[pDevBrowser], f[pDevBrowserVersion] = bound(d.Label), bound(d.Browser), bound(d.BrowserVersion)
	f[pDevOS], f[pDevOSVersion], f[pDevPlatform] = bound(d.OS), bound(d.OSVersion), bound(d.Platform)
	f[pDevFlags] = flag(d.Mobile, "m") + flag(d.Bot, "b")
	f[pLocLabel], f[pLocCity], f[pLocRegion], f[pLocCountry], f[pLocCode] = locationValues(s.Location)
	f[pUserAgent] = clean(s.UserAgent)
	if !s.AuthenticatedAt.IsZero() {
		f[pAuthAt] = strconv.FormatInt(millis(s.AuthenticatedAt), 10)
	}
	f[pAAL] = clean(s.AAL)
	f[pImpersonator] = clean(s.ImpersonatedBy)
	if refresh != nil {
		f[pRefreshHash], f[pRefreshGen] = hashText(*refresh), "0"
		f[pRefreshAt] = strconv.FormatInt(millis(s.CreatedAt), 10)
	}
	return strings.Join(f, sep)
}

// locationValues are the five location fields, bounded as stored.
func locationValues(l sessionkit.Location) (label, city, region, country, code string) {
	return bound(l.Label), bound(l.City), bound(l.Region), bound(l.Country), bound(l.CountryCode)
}

// splitFields splits a stored session into f: between minFields fields
// (a record written before later fields existed; the rest stay empty) and
// fieldCount.
func splitFields(v string, f *[fieldCount]string) bool {
	rest := v
	for i := range fieldCount - 1 {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, sep); !ok {
			return i+1 >= minFields && f[pVersion] == formatVersion
		}
	}
	f[fieldCount-1] = rest
	return f[pVersion] == formatVersion && !strings.Contains(rest, sep)
}

// decodeSession builds a session from its stored form; the token and
// refresh hashes stay behind.
func decodeSession(id uuid.UUID, v string) (sessionkit.Session, bool) {
	var f [fieldCount]string // on the stack: this runs on every request
	if !splitFields(v, &f) {
		return sessionkit.Session{}, false
	}
	uid, err := uuid.Parse(f[pUID])
	if err != nil {
		return sessionkit.Session{}, false
	}
	s := sessionkit.Session{
		ID:             id,
		UserID:         uid,
		CreatedAt:      fromMillis(f[pCreated]),
		LastActivityAt: fromMillis(f[pLastActivity]),
		ExpiresAt:      fromMillis(f[pExpires]),
		RefreshTokenID: f[pRefresh],
		Device: sessionkit.Device{
			Label: f[pDevLabel], Browser: f[pDevBrowser], BrowserVersion: f[pDevBrowserVersion],
			OS: f[pDevOS], OSVersion: f[pDevOSVersion], Platform: f[pDevPlatform],
			Mobile: strings.Contains(f[pDevFlags], "m"), Bot: strings.Contains(f[pDevFlags], "b"),
		},
		Location: sessionkit.Location{
			Label: f[pLocLabel], City: f[pLocCity], Region: f[pLocRegion],
			Country: f[pLocCountry], CountryCode: f[pLocCode],
		},
		LastProviderAccessed: f[pLastProvider],
		LastProviderAccessAt: fromMillis(f[pLastProviderAt]),
		UserAgent:            f[pUserAgent],
		Bearer:               f[pRefreshHash] != "",
		AuthenticatedAt:      fromMillis(f[pAuthAt]),
		AAL:                  f[pAAL],
		ImpersonatedBy:       f[pImpersonator],
	}
	if s.AuthenticatedAt.IsZero() { // a record from before the field
		s.AuthenticatedAt = s.CreatedAt
	}
	if s.AAL == "" {
		s.AAL = sessionkit.AAL1
	}
	if f[pIdle] != "" {
		if ms, err := strconv.ParseInt(f[pIdle], 10, 64); err == nil {
			s.IdleTimeout = time.Duration(ms) * time.Millisecond
		}
	}
	s.IPAddress, _ = netip.ParseAddr(f[pIP])
	s.LastIPAddress = s.IPAddress
	if f[pLastIP] != "" {
		s.LastIPAddress, _ = netip.ParseAddr(f[pLastIP])
	}
	if f[pIPChanges] != "" {
		s.IPChangeCount, _ = strconv.Atoi(f[pIPChanges])
	}
	if f[pProviders] != "" {
		s.ProvidersAccessed = strings.Split(f[pProviders], ",")
	}
	return s, true
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
}

// decodeRefresh reads the refresh state of a stored session; false for a
// cookie session or a malformed record.
func decodeRefresh(v string) (refreshState, bool) {
	var f [fieldCount]string
	var st refreshState
	if !splitFields(v, &f) || f[pRefreshHash] == "" {
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
	return st, true
}

// decodeHashText reads hashText's form.
func decodeHashText(s string, h *[32]byte) bool {
	if len(s) != 43 {
		return false
	}
	var dst [33]byte
	n, err := base64.RawURLEncoding.Decode(dst[:], []byte(s))
	if err != nil || n != 32 {
		return false
	}
	copy(h[:], dst[:32])
	return true
}
