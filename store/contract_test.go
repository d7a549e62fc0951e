package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/redistest"
)

// The tests of the Go↔Lua contract (contract.go). They run the generated
// Lua on a real server of their own.

func contractClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// eval runs lua after the common prelude and helpers.
func eval(t *testing.T, c redis.UniversalClient, lua string, args ...any) (any, error) {
	t.Helper()
	return c.Eval(context.Background(), assemble(lua), make([]string, len(keyNames)), args...).Result()
}

// fullSession has a distinct value in every stored field.
func fullSession() (sessionkit.Session, [32]byte) {
	now := time.UnixMilli(1_780_000_000_123).UTC()
	var hash [32]byte
	for i := range hash {
		hash[i] = byte(i * 7)
	}
	return sessionkit.Session{
		ID: uuid.New(), UserID: uuid.New(),
		Device: sessionkit.Device{
			Label: "Chrome 131 on macOS", Browser: "Chrome", BrowserVersion: "131.0", OS: "macOS",
			OSVersion: "14.1", Platform: "Macintosh", Mobile: true, Bot: true,
		},
		UserAgent: "Mozilla/5.0 (test)", IPAddress: netip.MustParseAddr("203.0.113.7"),
		LastIPAddress: netip.MustParseAddr("2001:db8::1"),
		Location: sessionkit.Location{
			Label: "London, England, GB", City: "London", Region: "England", Country: "United Kingdom", CountryCode: "GB",
		},
		CreatedAt: now, LastActivityAt: now.Add(time.Second), ExpiresAt: now.Add(time.Hour),
		IdleTimeout: 15 * time.Minute, RefreshTokenID: "rt-1", IPChangeCount: 3,
		LastProviderAccessed: "schwab", LastProviderAccessAt: now.Add(2 * time.Second),
		ProvidersAccessed: []string{"fidelity", "schwab"}, Bearer: true,
		AuthenticatedAt: now.Add(3 * time.Second), AAL: sessionkit.AAL2,
	}, hash
}

// TestContractSessionFields reads every stored field in Lua by its F_ name
// and compares it with the field Go wrote at that position.
func TestContractSessionFields(t *testing.T) {
	c := contractClient(t)
	s, hash := fullSession()
	// A new session's count and providers are empty: the scripts write
	// them, so they are set by hand here.
	// The family is stored by its first 132 bits: these are all there is.
	refresh, family := [32]byte{1, 2, 3}, [32]byte{6, 7, 8, 16: 0x90}
	v := encodeSession(s, hash, &refresh, &family)
	parts := strings.Split(v, sep)
	parts = append(parts, make([]string, fieldCount-len(parts))...) // the trailing empty fields read as ''
	parts[pIPChanges] = "3"
	parts[pLastProvider], parts[pProviders] = "schwab", "fidelity,schwab"
	parts[pLastProviderAt] = fmt.Sprint(s.LastProviderAccessAt.UnixMilli())
	parts[pRefreshGen], parts[pRefreshPrev], parts[pRefreshSealed] = "7", hashText([32]byte{4}), hashText([32]byte{5})
	v = strings.Join(parts, sep)

	var lua strings.Builder
	lua.WriteString("local f = split(ARGV[#ARGV])\nif #f ~= F_COUNT then return 'count ' .. #f end\nreturn {")
	for _, name := range fieldNames {
		fmt.Fprintf(&lua, "f[F_%s], ", name)
	}
	lua.WriteString("}")
	got, err := eval(t, c, lua.String(), append((&script{}).argv(header{Now: s.CreatedAt}, nil), v)...)
	if err != nil {
		t.Fatal(err)
	}
	list, ok := got.([]any)
	if !ok || len(list) != int(fieldCount) {
		t.Fatalf("Lua read %v, want %d fields", got, fieldCount)
	}
	for p, name := range fieldNames {
		if list[p] != parts[p] {
			t.Errorf("F_%s: Lua read %q, Go wrote %q at position %d", name, list[p], parts[p], p)
		}
	}
	// And Go reads back what it wrote, by the same positions.
	back, ok := decodeSession(s.ID, v)
	if !ok {
		t.Fatal("decodeSession refused its own encoding")
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("decodeSession:\n got %+v\nwant %+v", back, s)
	}
	var peeked sessionkit.Session
	var pk backend.Peeked
	if !decodePeek(s.ID, v, &peeked, &pk) || !pk.TokenMatches(&hash) {
		t.Error("decodePeek did not read the token hash back")
	}
	var f [fieldCount]string
	splitFields(v, &f)
	st, ok := refreshFromFields(&f)
	want := refreshState{hash: refresh, prev: [32]byte{4}, gen: 7, sealed: [32]byte{5}, issuedAt: s.CreatedAt, family: family}
	if !ok || st != want {
		t.Errorf("refreshFromFields: got %+v %v, want %+v", st, ok, want)
	}
	// A record written before the refresh fields existed reads them as
	// empty, in Go and in Lua.
	old := strings.Join(parts[:pUserAgent+1], sep) // the fields the first release wrote
	if back, ok := decodeSession(s.ID, old); !ok || back.Bearer || back.UserAgent != s.UserAgent {
		t.Errorf("an older record: got %+v %v", back, ok)
	}
	got, err = eval(t, c, "local f = split(ARGV[#ARGV])\nreturn {#f, f[F_REFRESH_HASH], f[F_USER_AGENT]}",
		append((&script{}).argv(header{Now: s.CreatedAt}, nil), old)...)
	if want := []any{int64(fieldCount), "", parts[pUserAgent]}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Lua split of an older record: got %v %v, want %v", got, err, want)
	}
	// The hot path splits the fields up to the owner, and no further.
	if fieldNames[hotFields-1] != "USER_ID" {
		t.Errorf("the last hot field is %s, want USER_ID", fieldNames[hotFields-1])
	}
}

// echoArgs has one argument of each kind a script can take.
type echoArgs struct {
	S  string        `lua:"A_STRING"`
	N  int           `lua:"A_INT"`
	B  bool          `lua:"A_BOOL"`
	F  bool          `lua:"A_FALSE"`
	D  time.Duration `lua:"A_DURATION"`
	T2 string        `lua:"A_LAST"`
}

type echoReply struct {
	S    string   `lua:"R_STRING"`
	N    int64    `lua:"R_INT"`
	B    bool     `lua:"R_BOOL"`
	List []string `lua:"R_LIST"`
}

// TestContractArgv sends the header and a script's arguments through argv
// and reads each back in Lua by its generated name and type.
func TestContractArgv(t *testing.T) {
	c := contractClient(t)
	s := newScript[echoArgs, echoReply]("echo", "")
	p := &backend.Policy{
		Retention: 7 * time.Hour, Throttle: time.Minute, SeenWindow: 90 * time.Hour, LimitTTL: 365 * time.Hour,
		StreamMax: 1000, MaxProviders: 16, ActivityEvents: true,
	}
	now := time.UnixMilli(1_780_000_000_123)
	r := &Redis{channel: "app:revoked"}
	h := r.headerOf(backend.Call{Now: now, Policy: p})
	args := echoArgs{S: "x\x1fy", N: -1, B: true, F: false, D: 1500 * time.Millisecond, T2: "last"}
	lua := scriptPrelude(s.args, s.reply) + `
return {type(NOW), NOW, RETENTION, THROTTLE, SEEN_WINDOW, LIMIT_TTL, STREAM_MAX, MAX_PROVIDERS,
  tostring(ACTIVITY_EVENTS), CHANNEL, A_STRING, A_INT, tostring(A_BOOL), tostring(A_FALSE), A_DURATION, A_LAST}`
	got, err := c.Eval(context.Background(), assemble(lua), make([]string, len(keyNames)), s.argv(h, args)...).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"number", now.UnixMilli(), p.Retention.Milliseconds(), p.Throttle.Milliseconds(),
		p.SeenWindow.Milliseconds(), p.LimitTTL.Milliseconds(), int64(1000), int64(16), "true", "app:revoked",
		"x\x1fy", int64(-1), "true", "false", int64(1500), "last"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lua read\n %#v\nwant\n %#v", got, want)
	}
}

// TestContractReply checks both ends of a reply: Lua's reply{} refuses a
// missing or undeclared name, and decodeReply refuses a reply of another
// shape or type.
func TestContractReply(t *testing.T) {
	c := contractClient(t)
	s := newScript[echoArgs, echoReply]("echo", "")
	run := func(body string) (any, error) {
		lua := scriptPrelude(s.args, s.reply) + body
		return c.Eval(context.Background(), assemble(lua), make([]string, len(keyNames)),
			s.argv(header{Now: time.UnixMilli(1)}, echoArgs{})...).Result()
	}
	v, err := run(`return reply{R_STRING = 'a', R_INT = 7, R_BOOL = true, R_LIST = {'x', 'y'}}`)
	if err != nil {
		t.Fatal(err)
	}
	var out echoReply
	if err := decodeReply(v.([]any), s.reply, &out); err != nil {
		t.Fatal(err)
	}
	if want := (echoReply{S: "a", N: 7, B: true, List: []string{"x", "y"}}); !reflect.DeepEqual(out, want) {
		t.Errorf("decoded %+v, want %+v", out, want)
	}
	for _, bad := range []string{
		`return reply{R_STRING = 'a', R_INT = 7, R_BOOL = true}`,                                      // missing
		`return reply{R_STRING = 'a', R_INT = 7, R_BOOL = true, R_LIST = {}, R_EXTRA = 1}`,            // undeclared
		`return reply{R_STRING = 'a', R_INT = 7, R_BOOL = true, R_LIST = {}, r_string = 'lowercase'}`, // undeclared
	} {
		if _, err := run(bad); err == nil || !strings.Contains(err.Error(), "sessionkit: reply field") {
			t.Errorf("%s: got %v, want a reply field error", bad, err)
		}
	}
	for name, reply := range map[string][]any{
		"short":              {statusOK, "a", int64(7), int64(1)},
		"long":               {statusOK, "a", int64(7), int64(1), []any{}, "extra"},
		"a number as string": {statusOK, int64(1), int64(7), int64(1), []any{}},
		"a string as number": {statusOK, "a", "7", int64(1), []any{}},
		"a bool of 2":        {statusOK, "a", int64(7), int64(2), []any{}},
		"a list of numbers":  {statusOK, "a", int64(7), int64(1), []any{int64(1)}},
		"no list":            {statusOK, "a", int64(7), int64(1), "x"},
	} {
		if err := decodeReply(reply, s.reply, &out); !errors.Is(err, errReply) {
			t.Errorf("%s: got %v, want errReply", name, err)
		}
	}
}

// luaIdent finds identifiers of the kinds the contract declares.
var luaIdent = regexp.MustCompile(`\b[A-Z][A-Z0-9_]*\b`)

// TestContractNames checks the hand-written Lua against the declarations:
// every upper-case name a script uses is declared (generated, or a
// constant of common.lua); every argument a script declares is used; no
// script reads KEYS or ARGV by position, or a session field by number.
func TestContractNames(t *testing.T) {
	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^local ([A-Z][A-Z0-9_]*) =`).FindAllStringSubmatch(commonPrelude()+luaCommon, -1) {
		declared[m[1]] = true
	}
	position := regexp.MustCompile(`\b(KEYS|ARGV)\s*\[|\b[a-z_]+\[\d+\]`)
	check := func(t *testing.T, name, body string, own map[string]bool) {
		for _, id := range luaIdent.FindAllString(stripLuaComments(body), -1) {
			if !declared[id] && !own[id] {
				t.Errorf("%s uses %s, which the contract does not declare", name, id)
			}
		}
		for _, m := range position.FindAllString(stripLuaComments(body), -1) {
			if m != "top[2]" { // a ZRANGE WITHSCORES pair: member, score
				t.Errorf("%s reads %q by position; name it in contract.go", name, m)
			}
		}
	}
	check(t, "common.lua", luaCommon, nil)
	for _, s := range scripts {
		t.Run(s.name, func(t *testing.T) {
			own := map[string]bool{"REPLY_FIELDS": true}
			for _, f := range s.args {
				own[f.name] = true
				if declared[f.name] {
					t.Errorf("argument %s shadows a common name", f.name)
				}
				if !slices.Contains(luaIdent.FindAllString(stripLuaComments(s.body), -1), f.name) {
					t.Errorf("argument %s is declared but never used", f.name)
				}
			}
			for _, f := range s.reply {
				own[f.name] = true
			}
			check(t, s.name, s.body, own)
		})
	}
}

var luaNoise = regexp.MustCompile(`--[^\n]*|'[^'\n]*'|"[^"\n]*"`)

// stripLuaComments leaves the code: no comments, no string literals.
func stripLuaComments(s string) string { return luaNoise.ReplaceAllString(s, "") }

// TestContractScriptsCompile loads every script, so that a syntax error or
// a prelude that does not fit fails here rather than on first use.
func TestContractScriptsCompile(t *testing.T) {
	c := contractClient(t)
	for _, s := range scripts {
		if err := s.run.Load(context.Background(), c).Err(); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
}

// TestFoldConstants: the constants are written in place where code reads
// them, and nowhere else; their declarations go.
func TestFoldConstants(t *testing.T) {
	consts := []luaConst{{"F_A", "4"}, {"SEP", "'\\031'"}, {"S_OK", "'OK'"}}
	for _, tc := range []struct{ name, src, want string }{
		{"declarations go", "local x = 1\nlocal F_A = 4\nlocal SEP = '\\031'\nreturn x\n", "local x = 1\nreturn x\n"},
		{"an index", "return h[F_A]", "return h[(4)]"},
		{"a concatenation", "return a..SEP..b .. S_OK", "return a..('\\031')..b .. ('OK')"},
		{"a number after", "return F_A..1", "return (4)..1"},
		{"a method on a string", "return SEP:len()", "return ('\\031'):len()"},
		{"fields and methods", "return t.F_A, t:SEP(), t . S_OK", "return t.F_A, t:SEP(), t . S_OK"},
		{"longer names", "return F_AB, XF_A, F_A2, _F_A", "return F_AB, XF_A, F_A2, _F_A"},
		{"comments", "-- F_A SEP\nreturn F_A --[[ SEP\n F_A ]] -- S_OK", "-- F_A SEP\nreturn (4) --[[ SEP\n F_A ]] -- S_OK"},
		{"long comment of a level", "--[==[ F_A ]] F_A ]==] return F_A", "--[==[ F_A ]] F_A ]==] return (4)"},
		{"strings", `return 'F_A', "SEP \" S_OK", 'it\'s F_A', [[F_A]], [=[SEP]=]`, `return 'F_A', "SEP \" S_OK", 'it\'s F_A', [[F_A]], [=[SEP]=]`},
		{"an index is not a long bracket", "return t[ [[x]] ], t[F_A]", "return t[ [[x]] ], t[(4)]"},
		{"numbers", "return 1e5, 0x1F, 2.5, F_A", "return 1e5, 0x1F, 2.5, (4)"},
	} {
		if got := foldConstants(tc.src, consts); got != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestFoldedMisuseDoesNotLoad: code that would use a constant as a
// variable does not load once folded, rather than run with another
// meaning.
func TestFoldedMisuseDoesNotLoad(t *testing.T) {
	c := contractClient(t)
	for _, body := range []string{
		"F_EXPIRES = 1\nreturn 1",
		"local F_EXPIRES = 1\nreturn 1",
		"return {F_EXPIRES = 1}",
		"local function f(S_OK) return S_OK end\nreturn f(1)",
	} {
		if err := c.Eval(context.Background(), assemble(body), make([]string, len(keyNames))).Err(); err == nil || !strings.Contains(err.Error(), "compiling") {
			t.Errorf("%q: got %v, want a compile error", body, err)
		}
	}
	// And the folded script reads each constant's value.
	got, err := eval(t, c, "return {F_EXPIRES, F_COUNT, S_OK, SEP}", (&script{}).argv(header{}, nil)...)
	want := []any{int64(pExpires + 1), int64(fieldCount), statusOK, sep}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("constants: got %#v %v, want %#v", got, err, want)
	}
}

// TestLookupComparesTheStoredHash: the scripts' token check accepts the
// presented hash only against a stored hash of one of the two lengths
// records hold (22 characters, or 43 from earlier records), whole; a
// stored hash of any other length, a prefix shorter than 22 characters
// included, refuses every token.
func TestLookupComparesTheStoredHash(t *testing.T) {
	c := contractClient(t)
	s, hash := fullSession()
	other := hash
	other[5] ^= 1
	full := hashText(hash)
	lua := `redis.call('HSET', ACT, 'm', ARGV[#ARGV - 1])
local v, refused = lookup('m', ARGV[#ARGV], NOW)
redis.call('DEL', ACT)
if v then return 'ok' end
return refused[1]`
	for _, tc := range []struct {
		name, stored, presented, want string
	}{
		{"the stored prefix", full[:storedHashLen], full, statusOK},
		{"an earlier record's whole hash", full, full, statusOK},
		{"another secret, stored prefix", full[:storedHashLen], hashText(other), statusNotFound},
		{"another secret, whole hash", full, hashText(other), statusNotFound},
		{"a prefix of 21", full[:21], full, statusNotFound},
		{"a prefix of 5", full[:5], full, statusNotFound},
		{"an empty hash", "", full, statusNotFound},
		{"23 characters", full[:23], full, statusNotFound},
	} {
		v := encodeSession(s, hash, nil, nil)
		f := strings.SplitN(v, sep, 3)
		f[pTokenHash] = tc.stored
		got, err := eval(t, c, lua, append((&script{}).argv(header{Now: s.CreatedAt}, nil), strings.Join(f, sep), tc.presented)...)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v %v, want %s", tc.name, got, err, tc.want)
		}
	}
}

// BenchmarkScriptPrelude is what every script pays before its own code:
// the generated prelude and common.lua, run to a bare return, with the
// contract's constants folded in (as scripts run) and declared as locals
// (as they were), in Redis CPU per call (commandstats).
func BenchmarkScriptPrelude(b *testing.B) {
	c := contractClient(b)
	ctx := context.Background()
	args := (&script{}).argv(header{}, nil)
	for _, tc := range []struct{ name, src string }{
		{"folded", assemble("return 1")},
		{"locals", commonPrelude() + luaCommon + "return 1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := redis.NewScript(tc.src)
			if err := s.Load(ctx, c).Err(); err != nil {
				b.Fatal(err)
			}
			keys := make([]string, len(keyNames))
			before := redistest.ScriptMicros(b, c)
			for b.Loop() {
				if err := s.EvalSha(ctx, c, keys, args...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((redistest.ScriptMicros(b, c)-before)/float64(b.N), "redis-cpu-µs/op")
		})
	}
}
