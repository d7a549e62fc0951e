package store

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/uapack"
)

// benchSession is a session as the load harness stores it: a desktop
// browser, located, with a User-Agent of ordinary length.
func benchSession() sessionkit.Session {
	user := uuid.MustParse("0b6a2c3e-8f7d-4e1a-9c5b-2d4e6f8a0b1c")
	id, err := sessionid.New(user)
	if err != nil {
		panic(err)
	}
	now := time.UnixMilli(1_780_000_000_123).UTC()
	ip := netip.MustParseAddr("203.0.113.7")
	return sessionkit.Session{
		ID: id, UserID: user,
		Device: sessionkit.Device{
			Label: "Chrome 131 on macOS", Browser: "Chrome", BrowserVersion: "131.0.0.0",
			OS: "macOS", OSVersion: "10.15.7", Platform: "Macintosh",
		},
		UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		IPAddress: ip, LastIPAddress: ip,
		Location:  sessionkit.Location{Label: "London, England, GB", City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB"},
		CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
		IdleTimeout: 7 * 24 * time.Hour, AuthenticatedAt: now, AAL: sessionkit.AAL1,
	}
}

// BenchmarkDecodePeek is what Peek does with the value its HGET returns,
// beside the reference decoder below.
func BenchmarkDecodePeek(b *testing.B) {
	s := benchSession()
	v := encodeSession(s, [32]byte{1, 2, 3}, nil, nil)
	b.Run("tuned", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got sessionkit.Session
			var pk backend.Peeked
			if !decodePeek(s.ID, v, &got, &pk) || got.UserID != s.UserID || pk.TokenHash[0] != 1 {
				b.Fatal("decode failed")
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, pk, ok := refPeek(s.ID, v)
			if !ok || got.UserID != s.UserID || pk.TokenHash[0] != 1 {
				b.Fatal("decode failed")
			}
		}
	})
}

// The reference decoder: the straightforward decoding the store used
// before the hot path's was tuned (strings.Cut per field, strconv,
// uuid.Parse, netip.ParseAddr for both addresses, one split per part).
// decodePeek and decodeSession must agree with it on every input.

func refFromMillis(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func refSplit(v string, f *[fieldCount]string) bool {
	rest := v
	for i := range fieldCount - 1 {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, sep); !ok {
			return i+1 >= minFields && f[pVersion] == formatVersion
		}
	}
	f[fieldCount-1], _, _ = strings.Cut(rest, sep) // fields of a later version may follow
	return f[pVersion] == formatVersion
}

func refDecodeSession(id uuid.UUID, v string) (sessionkit.Session, bool) {
	var f [fieldCount]string
	if !refSplit(v, &f) {
		return sessionkit.Session{}, false
	}
	uid, err := uuid.Parse(f[pUID])
	if err != nil {
		return sessionkit.Session{}, false
	}
	s := sessionkit.Session{
		ID: id, UserID: uid,
		CreatedAt: refFromMillis(f[pCreated]), LastActivityAt: refFromMillis(f[pLastActivity]),
		ExpiresAt: refFromMillis(f[pExpires]), RefreshTokenID: f[pRefresh],
		Device: sessionkit.Device{
			Label: f[pDevLabel], Browser: f[pDevBrowser], BrowserVersion: f[pDevBrowserVersion],
			OS: f[pDevOS], OSVersion: f[pDevOSVersion], Platform: f[pDevPlatform],
			Mobile: strings.Contains(f[pDevFlags], "m"), Bot: strings.Contains(f[pDevFlags], "b"),
		},
		Location: sessionkit.Location{
			Label: f[pLocLabel], City: f[pLocCity], Region: f[pLocRegion],
			Country: f[pLocCountry], CountryCode: f[pLocCode],
		},
		LastProviderAccessed: f[pLastProvider], LastProviderAccessAt: refFromMillis(f[pLastProviderAt]),
		UserAgent: uapack.Unpack(f[pUserAgent]), Bearer: f[pRefreshHash] != "",
		AuthenticatedAt: refFromMillis(f[pAuthAt]), AAL: f[pAAL], ImpersonatedBy: f[pImpersonator],
	}
	if f[pCreated] == "" {
		s.CreatedAt = s.LastActivityAt
	}
	if s.AuthenticatedAt.IsZero() {
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

// refPeek is what Peek did: decodeSession, then the token hash and the
// refresh state, each from the whole value again.
func refPeek(id uuid.UUID, v string) (sessionkit.Session, backend.Peeked, bool) {
	s, ok := refDecodeSession(id, v)
	if !ok {
		return sessionkit.Session{}, backend.Peeked{}, false
	}
	var pk backend.Peeked
	if !refTokenHash(v, &pk) {
		return sessionkit.Session{}, backend.Peeked{}, false
	}
	if s.Bearer {
		var f [fieldCount]string
		refSplit(v, &f)
		st, ok := refreshFromFields(&f)
		if !ok {
			return sessionkit.Session{}, backend.Peeked{}, false
		}
		pk.Refresh = backend.RefreshState{Hash: st.hash, Generation: st.gen, Family: st.family, Previous: st.prev, RotatedAt: st.issuedAt}
	}
	return s, pk, true
}

// refTokenHash reads the second field: the token hash's text, whole or
// its first 22 characters (132 bits, the 17th byte's low half zero).
func refTokenHash(v string, pk *backend.Peeked) bool {
	_, rest, ok := strings.Cut(v, sep)
	if !ok {
		return false
	}
	text, _, _ := strings.Cut(rest, sep)
	switch len(text) {
	case 43:
		return decodeHashText(text, &pk.TokenHash)
	case 22:
		b, err := base64.RawURLEncoding.DecodeString(text + "AA")
		if err != nil || len(b) != 18 {
			return false
		}
		copy(pk.TokenHash[:], b[:17])
		pk.TokenHashPrefix = true
		return true
	}
	return false
}

// codecCases are stored values: well-formed ones of many shapes, records
// from before later fields existed, and values damaged field by field.
func codecCases(t testing.TB) []string {
	t.Helper()
	base := benchSession()
	var out []string
	add := func(s sessionkit.Session, refresh *[32]byte) {
		out = append(out, encodeSession(s, [32]byte{9, 8, 7, 6, 5}, refresh, nil))
	}
	add(base, nil)
	s := base
	s.LastIPAddress = netip.MustParseAddr("2001:db8::7")
	s.Device.Mobile, s.Device.Bot = true, true
	s.IdleTimeout = 0
	s.RefreshTokenID, s.ImpersonatedBy, s.AAL = "rt-1", "support:alice", sessionkit.AAL2
	s.AuthenticatedAt = s.CreatedAt.Add(time.Minute)
	add(s, nil)
	s = base
	s.Location, s.Device, s.UserAgent = sessionkit.Location{}, sessionkit.Device{}, ""
	add(s, nil)
	add(base, &[32]byte{1, 1, 1})
	out = append(out, encodeSession(base, [32]byte{9, 8, 7, 6, 5}, &[32]byte{1, 1, 1}, &[32]byte{2, 2, 2}))

	// Fields the scripts write later: a different last address, address
	// changes, providers, a refresh token's rotation.
	v := out[0]
	for _, edit := range []struct {
		field int
		value string
	}{
		{pLastIP, "198.51.100.9"}, {pLastIP, ""}, {pIP, ""}, {pIP, "not-an-ip"},
		{pIPChanges, "3"}, {pIPChanges, "x"}, {pIPChanges, "99999999999999999999"},
		{pProviders, "schwab,fidelity"}, {pLastProvider, "schwab"}, {pLastProviderAt, "1780000000999"},
		{pIdle, "-5"}, {pIdle, "+60000"}, {pIdle, "1e3"}, {pIdle, "9223372036854775807"}, {pIdle, "9223372036854775808"},
		{pExpires, ""}, {pExpires, "0"}, {pExpires, "000001780000000123"}, {pExpires, "1780000000123.0"},
		{pExpires, "-1780000000123"}, {pExpires, "99999999999999999999"}, {pExpires, " 1"},
		{pCreated, "17800000001234567"}, {pAuthAt, ""}, {pAAL, ""},
		{pUID, strings.ToUpper(base.UserID.String())}, {pUID, "urn:uuid:" + base.UserID.String()},
		{pUID, strings.ReplaceAll(base.UserID.String(), "-", "")}, {pUID, "0b6a2c3e-8f7d-4e1a-9c5b-2d4e6f8a0b1"},
		{pUID, "0b6a2c3e_8f7d-4e1a-9c5b-2d4e6f8a0b1c"}, {pUID, ""},
		{pTokenHash, ""}, {pTokenHash, "AAAA"}, {pTokenHash, strings.Repeat("A", 42) + "B"}, {pTokenHash, strings.Repeat("*", 43)},
		{pTokenHash, strings.Repeat("A", 44)}, {pTokenHash, strings.Repeat("A", 21)}, {pTokenHash, strings.Repeat("_", 22)},
		{pTokenHash, strings.Repeat("A", 23)}, {pTokenHash, strings.Repeat("*", 22)}, {pTokenHash, hashText([32]byte{9, 8, 7})},
		{pCreated, ""}, {pCreated, "1780000000000"},
		{pVersion, "2"}, {pVersion, ""},
		{pDevFlags, "bm"}, {pDevFlags, "x"},
		{pRefreshHash, "short"}, {pRefreshGen, "x"},
		{pRefreshFamily, "short"}, {pRefreshFamily, strings.Repeat("A", 22)}, {pRefreshFamily, strings.Repeat("*", 22)},
		{pRefreshFamily, hashText([32]byte{2})},
	} {
		var f [fieldCount]string
		if !refSplit(v, &f) {
			t.Fatal("the base case does not split")
		}
		f[edit.field] = edit.value
		out = append(out, strings.Join(f[:], sep))
	}
	// Field counts around the bounds: the shortest records, one too many.
	f := strings.Split(out[0], sep)
	f = append(f, make([]string, fieldCount-len(f))...)
	for n := minFields - 2; n <= fieldCount; n++ {
		out = append(out, strings.Join(f[:n], sep))
	}
	out = append(out, out[0]+sep, out[0]+sep+"x", "", sep, "1", "1"+sep)
	// A byte one off the separator, next to separators (a word-at-a-time
	// search must not mistake it for one).
	out = append(out, strings.ReplaceAll(out[0], sep+sep, sep+"\x1e"+sep), strings.ReplaceAll(out[0], sep, "\x1e"+sep+"\x1e"))
	return out
}

func TestDecodeMatchesReference(t *testing.T) {
	id := benchSession().ID
	cases := codecCases(t)
	// And random damage: bytes replaced by a separator, a digit or a letter.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		b := []byte(cases[rng.IntN(4)])
		for range 1 + rng.IntN(3) {
			const damage = "\x1f\x1e\x1f09aZ-.:"
			b[rng.IntN(len(b))] = damage[rng.IntN(len(damage))]
		}
		cases = append(cases, string(b))
	}
	for i, v := range cases {
		checkDecode(t, fmt.Sprintf("case %d %q", i, v), id, v)
	}
}

// FuzzDecode: the hot path's decoders agree with the reference decoder on
// any stored value, well-formed or not.
func FuzzDecode(f *testing.F) {
	for _, v := range codecCases(f) {
		f.Add(v)
	}
	id := benchSession().ID
	f.Fuzz(func(t *testing.T, v string) { checkDecode(t, fmt.Sprintf("%q", v), id, v) })
}

// checkDecode fails t unless decodeSession and decodePeek read
// v as the reference decoder does.
func checkDecode(t *testing.T, name string, id uuid.UUID, v string) {
	t.Helper()
	want, wok := refDecodeSession(id, v)
	got, ok := decodeSession(id, v)
	if ok != wok || !reflect.DeepEqual(got, want) {
		t.Errorf("%s: decodeSession\n got %v %+v\nwant %v %+v", name, ok, got, wok, want)
	}
	wantS, wantPK, wok := refPeek(id, v)
	var gotS sessionkit.Session
	var gotPK backend.Peeked
	ok = decodePeek(id, v, &gotS, &gotPK)
	if ok != wok || (ok && (!reflect.DeepEqual(gotS, wantS) || gotPK != wantPK)) {
		t.Errorf("%s: decodePeek\n got %v %+v %+v\nwant %v %+v %+v", name, ok, gotS, gotPK, wok, wantS, wantPK)
	}
}

func TestParseInt(t *testing.T) {
	for _, s := range []string{"", "0", "7", "000", "123456789012345678", "1234567890123456789", "9223372036854775807",
		"9223372036854775808", "-1", "+1", "1_000", "1e3", " 1", "1 ", "٣", "12a", strings.Repeat("9", 40)} {
		want, err := strconv.ParseInt(s, 10, 64)
		got, ok := parseInt(s)
		if ok != (err == nil) || got != want {
			t.Errorf("parseInt(%q): got %d %v, want %d %v", s, got, ok, want, err)
		}
	}
}

// TestEarlierRecordsReadTheSame: a session as earlier releases stored it
// (the User-Agent whole, the last address, the time credentials were
// checked and aal1 written out) reads exactly as the compact form this
// release writes for the same session, and the compact form is shorter.
func TestEarlierRecordsReadTheSame(t *testing.T) {
	s := benchSession()
	hash := [32]byte{9, 8, 7}
	compact := encodeSession(s, hash, nil, nil)
	f := strings.Split(compact, sep)
	f = append(f, make([]string, fieldCount-len(f))...) // trailing empty fields, written out
	f[pTokenHash] = hashText(hash)
	f[pCreated] = strconv.FormatInt(s.CreatedAt.UnixMilli(), 10)
	f[pUserAgent] = s.UserAgent
	f[pLastIP] = s.LastIPAddress.String()
	f[pAuthAt] = strconv.FormatInt(s.AuthenticatedAt.UnixMilli(), 10)
	f[pAAL] = sessionkit.AAL1
	earlier := strings.Join(f, sep)
	if len(compact) >= len(earlier)-100 {
		t.Errorf("compact form %d bytes, earlier form %d: want at least 100 fewer", len(compact), len(earlier))
	}
	a, okA := decodeSession(s.ID, compact)
	b, okB := decodeSession(s.ID, earlier)
	if !okA || !okB || !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, s) {
		t.Errorf("compact form reads\n%+v (%v)\nearlier form reads\n%+v (%v)\nwant\n%+v", a, okA, b, okB, s)
	}
	// Both hold the token's hash: its first 132 bits, or all of it.
	other := hash
	other[16] ^= 0x10 // within the 132 bits
	for name, v := range map[string]string{"compact": compact, "earlier": earlier} {
		var got sessionkit.Session
		var pk backend.Peeked
		if !decodePeek(s.ID, v, &got, &pk) || !pk.TokenMatches(&hash) || pk.TokenMatches(&other) {
			t.Errorf("%s form: the token hash does not read back", name)
		}
	}
}

// TestDecodeIgnoresLaterFields: a record written by a later version, with
// fields after the last this one knows, reads as it does without them, so
// that instances of both versions serve its sessions during a rolling
// deploy (the scripts keep fields they do not know, too).
func TestDecodeIgnoresLaterFields(t *testing.T) {
	s := benchSession()
	v := encodeSession(s, [32]byte{1, 2, 3}, &[32]byte{4, 5}, &[32]byte{6, 7}) // every field present
	want, ok := decodeSession(s.ID, v)
	if !ok {
		t.Fatalf("the record itself does not decode: %q", v)
	}
	for _, later := range []string{sep + "x", sep + sep + "later" + sep} {
		got, ok := decodeSession(s.ID, v+later)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("with %q after it: got %v %+v, want %+v", later, ok, got, want)
		}
		checkDecode(t, fmt.Sprintf("with %q after it", later), s.ID, v+later)
	}
}
