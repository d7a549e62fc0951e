package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/announce"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/rediskey"
)

// The contract between Go and the Lua scripts is declared here, once, by
// name; the scripts' Lua names for it are generated from these
// declarations and prepended to each script, so the two sides cannot
// disagree on a position:
//
//   - KEYS: keyNames, in the order keysOf passes them.
//   - ARGV: the header every script starts with (header, built in one place
//     from a backend.Call), then the script's own arguments: the fields of
//     its args struct, each named by its `lua` tag. Numbers and durations
//     arrive in Lua as numbers, booleans as booleans, the rest as strings.
//   - Stored sessions: the F_* field positions of codec.go's fieldNames.
//   - Audit trail entries: the E_* field names (eventFields), the EV_*
//     event types and the REASON_* reasons, from the root package's values.
//   - Replies: a status (S_*), then for S_OK the fields of the script's
//     reply struct, in order, built in Lua by reply{NAME = value, ...},
//     which refuses a missing or unknown name; decodeReply reads them back
//     strictly by type.
//
// A script that names something the contract does not declare fails on
// its first run: Redis refuses reads of undeclared globals.

// header is the ARGV every script starts with.
type header struct {
	Now            time.Time     `lua:"NOW"`
	Retention      time.Duration `lua:"RETENTION"`
	Throttle       time.Duration `lua:"THROTTLE"`
	SeenWindow     time.Duration `lua:"SEEN_WINDOW"`
	LimitTTL       time.Duration `lua:"LIMIT_TTL"`
	StreamMax      int           `lua:"STREAM_MAX"`
	MaxProviders   int           `lua:"MAX_PROVIDERS"`
	ActivityEvents bool          `lua:"ACTIVITY_EVENTS"`
	RefreshGrace   time.Duration `lua:"REFRESH_GRACE"`
	Channel        string        `lua:"CHANNEL"` // where revocations are announced
}

// headerOf is the one place the header is built.
func (r *Redis) headerOf(c backend.Call) header {
	p := c.Policy
	return header{
		Now: c.Now, Retention: p.Retention, Throttle: p.Throttle, SeenWindow: p.SeenWindow,
		LimitTTL: p.LimitTTL, StreamMax: p.StreamMax, MaxProviders: p.MaxProviders,
		ActivityEvents: p.ActivityEvents, RefreshGrace: p.RefreshGrace, Channel: r.channel,
	}
}

// keyNames are the Lua names of the keys every script receives, in order.
var keyNames = [...]struct {
	lua string
	key func(rediskey.User) string
}{
	{"ACT", func(u rediskey.User) string { return u.Active }},
	{"IDX", func(u rediskey.User) string { return u.Index }},
	{"RET", func(u rediskey.User) string { return u.Retained }},
	{"ALL", func(u rediskey.User) string { return u.All }},
	{"REV", func(u rediskey.User) string { return u.Revoked }},
	{"OWN", func(u rediskey.User) string { return u.Owners }},
	{"EV", func(u rediskey.User) string { return u.Events }},
	{"LIM", func(u rediskey.User) string { return u.Limit }},
	{"SEEN", func(u rediskey.User) string { return u.Seen }},
	{"DATA", func(u rediskey.User) string { return u.Data }},
	{"SEAL", func(u rediskey.User) string { return u.Seal }},
}

// keysOf lists u's keys in the order of keyNames.
func keysOf(u rediskey.User) []string {
	keys := make([]string, len(keyNames))
	for i, k := range keyNames {
		keys[i] = k.key(u)
	}
	return keys
}

// Reply statuses: the first element of every script reply.
const (
	statusOK        = "ok"     // done; the reply struct's fields follow
	statusNotFound  = "nf"     // no such active session (or a wrong token)
	statusExpired   = "exp"    // past its absolute lifetime
	statusIdle      = "idle"   // past its idle timeout
	statusRevoked   = "rev"    // revoked; its revocation record follows
	statusDuplicate = "dup"    // Create: the id is in use
	statusReused    = "reused" // Refresh: a superseded token; the session is revoked: the event id and the owner follow
	statusLimit     = "limit"  // Create with REJECT: the user is at the limit; the active count and the limit follow
	statusDataFull  = "full"   // session data: a bound would be passed; which one follows
)

var statuses = [...]struct{ lua, value string }{
	{"S_OK", statusOK}, {"S_NOT_FOUND", statusNotFound}, {"S_EXPIRED", statusExpired},
	{"S_IDLE", statusIdle}, {"S_REVOKED", statusRevoked}, {"S_DUPLICATE", statusDuplicate},
	{"S_REUSED", statusReused}, {"S_LIMIT_REACHED", statusLimit},
	{"S_DATA_FULL", statusDataFull},
}

// Audit trail entry fields, as stored in the user's trail (and the stream earlier releases wrote).
const (
	evType            = "t"
	evUser            = "u"
	evSession         = "s"
	evAt              = "at"
	evReason          = "r"
	evIP              = "ip"
	evPreviousIP      = "pip"
	evCountry         = "cc"
	evPreviousCountry = "pcc"
	evDevice          = "dl"
	evNewDevice       = "nd"
	evNewCountry      = "nc"
	evProvider        = "p"
	evRefreshToken    = "rt"
	evBy              = "by"
	evActor           = "a"
	evCall            = "k"
)

var eventFields = [...]struct{ lua, value string }{
	{"E_TYPE", evType}, {"E_USER", evUser}, {"E_SESSION", evSession}, {"E_AT", evAt},
	{"E_REASON", evReason}, {"E_IP", evIP}, {"E_PREVIOUS_IP", evPreviousIP},
	{"E_COUNTRY", evCountry}, {"E_PREVIOUS_COUNTRY", evPreviousCountry},
	{"E_DEVICE", evDevice}, {"E_NEW_DEVICE", evNewDevice}, {"E_NEW_COUNTRY", evNewCountry},
	{"E_PROVIDER", evProvider}, {"E_REFRESH_TOKEN", evRefreshToken}, {"E_BY", evBy}, {"E_ACTOR", evActor},
	{"E_CALL", evCall},
}

// eventTypes are the audit trail's event types: each is stored as its
// one-letter code (a sign-in's entry then fits a smaller allocation), read
// back by decodeEntry; earlier releases stored the type in full, which
// reads as itself.
var eventTypes = [...]struct {
	lua   string
	value sessionkit.EventType
	code  string
}{
	{"EV_CREATED", sessionkit.EventCreated, "c"}, {"EV_REVOKED", sessionkit.EventRevoked, "r"},
	{"EV_EVICTED", sessionkit.EventEvicted, "e"}, {"EV_IP_CHANGED", sessionkit.EventIPChanged, "i"},
	{"EV_PROVIDER_ACCESSED", sessionkit.EventProviderAccessed, "p"},
	{"EV_REFRESH_LINKED", sessionkit.EventRefreshLinked, "l"}, {"EV_ACTIVITY", sessionkit.EventActivity, "a"},
}

// eventTypeOf reads a stored event type: a code, or a type in full.
func eventTypeOf(stored string) sessionkit.EventType {
	for _, e := range eventTypes {
		if e.code == stored {
			return e.value
		}
	}
	return sessionkit.EventType(stored)
}

var reasons = [...]struct{ lua, value string }{
	{"REASON_LIMIT_EXCEEDED", sessionkit.ReasonLimitExceeded},
	{"REASON_REFRESH_REUSED", sessionkit.ReasonRefreshReused},
	{"REASON_IP_CHANGED", sessionkit.ReasonIPChanged},
}

// luaField is one declared ARGV or reply field.
type luaField struct {
	name  string       // its Lua name
	index int          // its Go struct field
	typ   reflect.Type // its Go type
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// fieldsOf reads the `lua` tags of struct type t; every field needs one.
func fieldsOf(t reflect.Type) []luaField {
	out := make([]luaField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("lua")
		if name == "" {
			panic(fmt.Sprintf("store: %s.%s has no lua tag", t.Name(), f.Name))
		}
		out[i] = luaField{name: name, index: i, typ: f.Type}
	}
	return out
}

// luaLocals declares one Lua local per field, read from ARGV starting at
// first (1-based), converted by Go type.
func luaLocals(fields []luaField, first int) string {
	var b strings.Builder
	for i, f := range fields {
		arg := "ARGV[" + strconv.Itoa(first+i) + "]"
		switch {
		case f.typ == timeType || f.typ == durationType, f.typ.Kind() == reflect.Int, f.typ.Kind() == reflect.Int64:
			arg = "tonumber(" + arg + ")"
		case f.typ.Kind() == reflect.Bool:
			arg = "(" + arg + " == '1')"
		}
		fmt.Fprintf(&b, "local %s = %s\n", f.name, arg)
	}
	return b.String()
}

// argValue is f's value as sent in ARGV.
func argValue(v reflect.Value) any {
	switch {
	case v.Type() == timeType:
		return v.Interface().(time.Time).UnixMilli()
	case v.Type() == durationType:
		return time.Duration(v.Int()).Milliseconds()
	case v.Kind() == reflect.Bool:
		if v.Bool() {
			return "1"
		}
		return "0"
	case v.Kind() == reflect.Int, v.Kind() == reflect.Int64:
		return v.Int()
	case v.Kind() == reflect.String:
		return v.String()
	}
	panic("store: unsupported script argument type " + v.Type().String())
}

// script is one Lua script with its declared arguments and reply.
type script struct {
	name  string
	args  []luaField // after the header
	reply []luaField
	body  string // as written, without the generated prelude
	run   *redis.Script
}

var headerFields = fieldsOf(reflect.TypeFor[header]())

// commonPrelude names the keys, the header, the stored session's fields,
// the audit trail's names and the reply statuses for every script.
func commonPrelude() string {
	var b strings.Builder
	b.WriteString("-- Generated by store/contract.go from the Go declarations.\n")
	for i, k := range keyNames {
		fmt.Fprintf(&b, "local %s = KEYS[%d]\n", k.lua, i+1)
	}
	b.WriteString(luaLocals(headerFields, 1))
	for _, c := range luaConstants {
		fmt.Fprintf(&b, "local %s = %s\n", c.name, c.value)
	}
	return b.String()
}

// luaConst is a constant of the contract: its Lua name and literal.
type luaConst struct{ name, value string }

// luaConstants are the constants every script declares after the keys and
// the header: the stored session's field numbers, then the strings.
var luaConstants = func() []luaConst {
	var cs []luaConst
	for i, name := range fieldNames {
		cs = append(cs, luaConst{"F_" + name, strconv.Itoa(i + 1)})
	}
	cs = append(cs, luaConst{"F_COUNT", strconv.Itoa(fieldCount)}, luaConst{"HOT", strconv.Itoa(hotFields)})
	constant := func(name, value string) { cs = append(cs, luaConst{name, luaString(value)}) }
	constant("SEP", sep)
	constant("FORMAT", formatVersion)
	for _, e := range eventFields {
		constant(e.lua, e.value)
	}
	for _, e := range eventTypes {
		constant(e.lua, e.code)
	}
	for _, r := range reasons {
		constant(r.lua, r.value)
	}
	for _, s := range statuses {
		constant(s.lua, s.value)
	}
	constant("ANNOUNCE_SEP", announce.Separator)
	constant("REV_SEP", revSep)
	constant("IMP_SUFFIX", impSuffix)
	return cs
}()

// assemble is the whole source Redis runs for body (a script's own
// prelude and code): the common prelude, common.lua and body, with the
// contract's constants written in place (see foldConstants).
func assemble(body string) string {
	return foldConstants(commonPrelude()+luaCommon+body, luaConstants)
}

// foldConstants writes each constant's literal, in parentheses, where src
// names it, and drops its declaration. In Lua 5.1 every function that
// reads a local of the chunk holds it as an upvalue, which each call of
// the script creates anew for each of common.lua's functions: a literal
// is compiled into the function instead, and costs nothing per call
// (about 1 µs of Redis CPU a call less: BenchmarkScriptPrelude). Names in
// comments and string literals, and fields (t.NAME, t:NAME), are left
// alone. Anything else that would read a constant as a variable
// (assigning it, declaring it, a table key NAME = v) becomes a syntax
// error, which loading the script reports (TestContractScriptsCompile).
func foldConstants(src string, consts []luaConst) string {
	value := make(map[string]string, len(consts))
	for _, c := range consts {
		value[c.name] = c.value
		decl := "\nlocal " + c.name + " = " + c.value + "\n"
		src = strings.Replace(src, decl, "\n", 1)
	}
	var b strings.Builder
	b.Grow(len(src))
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			n := 2
			if l := longBracket(src[i+2:]); l > 0 {
				n += l
			} else if j := strings.IndexByte(src[i:], '\n'); j >= 0 {
				n = j
			} else {
				n = len(src) - i
			}
			b.WriteString(src[i : i+n])
			i += n
		case c == '[' && longBracket(src[i:]) > 0:
			n := longBracket(src[i:])
			b.WriteString(src[i : i+n])
			i += n
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			b.WriteString(src[i:j])
			i = j
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || 'a' <= src[j] && src[j] <= 'z' || 'A' <= src[j] && src[j] <= 'Z' || '0' <= src[j] && src[j] <= '9') {
				j++
			}
			id := src[i:j]
			if v, ok := value[id]; ok && !afterMember(src[:i]) {
				b.WriteString("(" + v + ")")
			} else {
				b.WriteString(id)
			}
			i = j
		case '0' <= c && c <= '9':
			// A number, 1e5 and 0x1F included: its letters are not a name.
			j := i + 1
			for j < len(src) && (src[j] == '.' || src[j] == '_' || 'a' <= src[j] && src[j] <= 'z' || 'A' <= src[j] && src[j] <= 'Z' || '0' <= src[j] && src[j] <= '9') {
				j++
			}
			b.WriteString(src[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// longBracket is the length of the long bracket (a long string, or a long
// comment after its --) at the start of s, or 0: [[...]], [=[...]=], ...
func longBracket(s string) int {
	level := 1
	for level < len(s) && s[level] == '=' {
		level++
	}
	if len(s) <= level || s[0] != '[' || s[level] != '[' {
		return 0
	}
	end := "]" + strings.Repeat("=", level-1) + "]"
	if j := strings.Index(s[level+1:], end); j >= 0 {
		return level + 1 + j + len(end)
	}
	return len(s)
}

// afterMember reports whether a name that follows code is a field or a
// method (t.NAME, t:NAME), not a variable.
func afterMember(code string) bool {
	code = strings.TrimRight(code, " \t\r\n")
	if code == "" {
		return false
	}
	last := code[len(code)-1]
	// "a..NAME" is a concatenation, not a field.
	return (last == '.' && !strings.HasSuffix(code, "..")) || (last == ':' && !strings.HasSuffix(code, "::"))
}

// luaString quotes s as a Lua 5.1 string literal, which knows decimal
// escapes only.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '\'' || c == '\\' {
			fmt.Fprintf(&b, "\\%03d", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	return b.String()
}

// scriptPrelude names a script's own arguments and builds its reply.
func scriptPrelude(args, reply []luaField) string {
	var b strings.Builder
	b.WriteString(luaLocals(args, len(headerFields)+1))
	b.WriteString("local REPLY_FIELDS = {")
	for i, f := range reply {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(luaString(f.name))
	}
	b.WriteString("}\n")
	b.WriteString(`-- reply builds the S_OK reply from t, by the declared names.
local function reply(t)
  local out = {S_OK}
  for i, k in ipairs(REPLY_FIELDS) do
    local v = t[k]
    if v == nil then error('sessionkit: reply field ' .. k .. ' missing') end
    if v == true then v = 1 elseif v == false then v = 0 end
    out[i + 1] = v
    t[k] = nil
  end
  local extra = next(t)
  if extra then error('sessionkit: reply field ' .. tostring(extra) .. ' undeclared') end
  return out
end
`)
	return b.String()
}

// newScript declares a script taking args (a struct type) and replying
// reply (a struct type) on success.
func newScript[A, R any](name, body string) *script {
	s := &script{
		name:  name,
		args:  fieldsOf(reflect.TypeFor[A]()),
		reply: fieldsOf(reflect.TypeFor[R]()),
		body:  body,
	}
	s.run = redis.NewScript(assemble(scriptPrelude(s.args, s.reply) + body))
	return s
}

// argv is the header followed by args' fields.
func (s *script) argv(h header, args any) []any {
	hv, av := reflect.ValueOf(h), reflect.ValueOf(args)
	out := make([]any, 0, len(headerFields)+len(s.args))
	for _, f := range headerFields {
		out = append(out, argValue(hv.Field(f.index)))
	}
	for _, f := range s.args {
		out = append(out, argValue(av.Field(f.index)))
	}
	return out
}

var errReply = errors.New("unexpected script reply")

// decodeReply reads an S_OK reply into out (a pointer to the script's
// reply struct): exactly its declared fields, each of its Go type.
func decodeReply(reply []any, fields []luaField, out any) error {
	if len(reply) != len(fields)+1 {
		return fmt.Errorf("%w: %d values, want %d", errReply, len(reply)-1, len(fields))
	}
	v := reflect.ValueOf(out).Elem()
	for i, f := range fields {
		if err := decodeValue(reply[i+1], v.Field(f.index)); err != nil {
			return fmt.Errorf("%w: %s: %v", errReply, f.name, err)
		}
	}
	return nil
}

func decodeValue(x any, v reflect.Value) error {
	switch v.Kind() {
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("got %T, want a string", x)
		}
		v.SetString(s)
	case reflect.Int64:
		n, ok := x.(int64)
		if !ok {
			return fmt.Errorf("got %T, want an integer", x)
		}
		v.SetInt(n)
	case reflect.Bool:
		n, ok := x.(int64)
		if !ok || n < 0 || n > 1 {
			return fmt.Errorf("got %v, want 0 or 1", x)
		}
		v.SetBool(n == 1)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported reply type %s", v.Type())
		}
		list, ok := x.([]any)
		if !ok {
			return fmt.Errorf("got %T, want a list", x)
		}
		ss := make([]string, len(list))
		for i, e := range list {
			if ss[i], ok = e.(string); !ok {
				return fmt.Errorf("element %d: got %T, want a string", i, e)
			}
		}
		v.Set(reflect.ValueOf(ss))
	default:
		return fmt.Errorf("unsupported reply type %s", v.Type())
	}
	return nil
}

// exec runs s over u's keys with the header of c and args (s's args
// struct). For S_OK it decodes the reply into out (a pointer to s's reply
// struct) and returns nil; a refusal is returned as its error (see
// refusal); anything else wraps sessionkit.ErrUnavailable.
func (r *Redis) exec(ctx context.Context, s *script, u rediskey.User, c backend.Call, args, out any) error {
	v, err := s.run.Run(ctx, r.c, keysOf(u), s.argv(r.headerOf(c), args)...).Result()
	return s.result(v, err, out)
}

// result reads one run of s, its reply v or its failure err, as exec
// returns it.
func (s *script) result(v any, err error, out any) error {
	if err != nil {
		return unavailable(s.name, err)
	}
	reply, _ := v.([]any)
	if len(reply) == 0 {
		return unavailable(s.name, errReply)
	}
	status, _ := reply[0].(string)
	if status != statusOK {
		if err := refusal(status, reply[1:]); err != nil {
			return err
		}
		return unavailable(s.name, fmt.Errorf("%w: status %q", errReply, status))
	}
	if err := decodeReply(reply, s.reply, out); err != nil {
		return unavailable(s.name, err)
	}
	return nil
}

// refusal turns a script's refusal into the matching error; nil for an
// unknown status.
func refusal(status string, rest []any) error {
	switch status {
	case statusNotFound:
		return sessionkit.ErrNotFound
	case statusExpired:
		return sessionkit.ErrExpired
	case statusIdle:
		return sessionkit.ErrIdle
	case statusRevoked:
		rec := ""
		if len(rest) > 0 {
			rec, _ = rest[0].(string)
		}
		return revokedError(rec)
	case statusDuplicate:
		return backend.ErrDuplicateID
	case statusLimit:
		e := &sessionkit.LimitError{}
		if len(rest) == 2 {
			active, _ := rest[0].(int64)
			limit, _ := rest[1].(int64)
			e.Active, e.Limit = int(active), int(limit)
		}
		return e
	case statusDataFull:
		bound := ""
		if len(rest) > 0 {
			bound, _ = rest[0].(string)
		}
		return fmt.Errorf("%w: session data: more than %s", sessionkit.ErrInvalid, bound)
	case statusReused:
		e := &reusedError{}
		if len(rest) == 2 {
			e.eventID, _ = rest[0].(string)
			owner, _ := rest[1].(string)
			e.userID, _ = uuid.Parse(owner)
		}
		return e
	}
	return nil
}

// reusedError is Refresh's S_REUSED: the session was revoked just now.
type reusedError struct {
	eventID string
	userID  uuid.UUID
}

func (e *reusedError) Error() string { return "store: refresh token reused" }

// impSuffix marks an impersonation session's owner record (OWN): the
// owner's id followed by it, so limits never count the session.
const impSuffix = "|imp"

// revSep separates the time and the reason of a REV record.
const revSep = "|"

// revokedError decodes a REV record "<ms>|<reason>".
func revokedError(v string) error {
	ms, reason, ok := strings.Cut(v, revSep)
	if !ok {
		return &sessionkit.RevokedError{}
	}
	return &sessionkit.RevokedError{Reason: reason, At: fromMillis(ms)}
}
