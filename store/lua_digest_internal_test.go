package store

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// luaDigestNames are the scripts' names of digests and secrets: the
// stored fields, and the arguments that carry hashes or sealed secrets.
var luaDigestNames = []string{
	"F_TOKEN_HASH", "F_REFRESH_HASH", "F_REFRESH_PREV", "F_REFRESH_FAMILY", "F_REFRESH_SEALED",
	"TOKEN_HASH", "PRESENTED", "NEXT", "FAMILY", "SEALED", "REFRESH_HASH", "REFRESH_FAMILY",
	"hash", // lookup's parameter: the presented token's hash
}

// TestScriptsCompareDigestsThroughDigests is the Lua side of
// TestDigestsComparedInConstantTime (in the root package): Lua's == on
// strings may end at the first byte that differs, so the scripts compare
// a presented hash with a stored one only through digests of both
// (redis.sha1hex, or same() in common.lua), whose first differing byte
// tells nothing of where the hashes differ. Any == or ~= one of whose
// operands holds a digest (a name of luaDigestNames, or a local assigned
// from one) fails the test, unless it compares with ” (set or not), a
// length (#), a digest of a digest, or a boolean (a comparison in
// parentheses).
func TestScriptsCompareDigestsThroughDigests(t *testing.T) {
	sources := map[string]string{"common.lua": luaCommon}
	for _, s := range scripts {
		sources[s.name+".lua"] = s.body
	}
	for name, src := range sources {
		for _, found := range luaDigestComparisons(src) {
			t.Errorf("%s:%d: %q compares a digest with ==/~=; compare redis.sha1hex of both (same())", name, found.line, found.text)
		}
	}

	// The check itself finds what it is for, and lets the rest be.
	example := `local stored = h[F_TOKEN_HASH]
if stored ~= TOKEN_HASH then return nil end
if f[F_REFRESH_HASH] == PRESENTED then x() end
local fam = f[F_REFRESH_FAMILY]
if FAMILY == fam or n == 1 then y() end
if stored == '' or #stored ~= 22 then return nil end
if redis.sha1hex(stored) ~= redis.sha1hex(hash) then return nil end
if (FAMILY == '') ~= (fam == '') then return nil end
if same(PRESENTED, f[F_REFRESH_PREV]) and gen == 2 then z() end -- a == in a comment: FAMILY == x
`
	var lines []int
	for _, found := range luaDigestComparisons(example) {
		lines = append(lines, found.line)
	}
	if want := []int{2, 3, 5}; !slices.Equal(lines, want) {
		t.Errorf("the check flagged lines %v of its own example, want %v", lines, want)
	}
}

// luaFinding is a comparison of a digest by == or ~= in a script.
type luaFinding struct {
	line int
	text string
}

var (
	luaLocalAssign = regexp.MustCompile(`^\s*local\s+([A-Za-z_][\w\s,]*?)\s*=\s*(.+)$`)
	luaCompare     = regexp.MustCompile(`==|~=`)
	// luaOperandEnd ends an operand: a keyword, a separator or an operator.
	luaOperandEnd = regexp.MustCompile(`\b(and|or|not|then|do|if|elseif|return|local)\b|[,;{}=<>]|\.\.`)
)

// luaDigestComparisons returns src's comparisons that may end early on a
// digest (see TestScriptsCompareDigestsThroughDigests), by line.
func luaDigestComparisons(src string) []luaFinding {
	tainted := slices.Clone(luaDigestNames)
	var names *regexp.Regexp
	compile := func() { names = regexp.MustCompile(`\b(` + strings.Join(tainted, "|") + `)\b`) }
	compile()
	mentions := func(s string) bool { return names.MatchString(s) }
	var out []luaFinding
	for i, line := range strings.Split(src, "\n") {
		line = stripLuaComment(line)
		// A local holding a digest as read: NAME, or t[NAME], maybe "or ''".
		if m := luaLocalAssign.FindStringSubmatch(line); m != nil && luaDigestValue(names, m[2]) {
			for _, n := range strings.Split(m[1], ",") {
				tainted = append(tainted, strings.TrimSpace(n))
			}
			compile()
		}
		for _, loc := range luaCompare.FindAllStringIndex(line, -1) {
			left, right := luaOperandBefore(line[:loc[0]]), luaOperandAfter(line[loc[1]:])
			if (mentions(left) || mentions(right)) && !safeLuaOperand(left) && !safeLuaOperand(right) {
				out = append(out, luaFinding{line: i + 1, text: strings.TrimSpace(left + " " + line[loc[0]:loc[1]] + " " + right)})
			}
		}
	}
	return out
}

// luaDigestValue reports whether rhs, an assignment's right side, is a
// digest as read: a name of names, or a table indexed by one, maybe
// followed by "or ”". A value computed from one (a call's result) is not.
func luaDigestValue(names *regexp.Regexp, rhs string) bool {
	rhs = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rhs), "or ''"))
	if i := strings.IndexByte(rhs, '['); i > 0 && strings.HasSuffix(rhs, "]") && isLuaIdent(rhs[:i]) {
		rhs = rhs[i+1 : len(rhs)-1]
	}
	loc := names.FindStringIndex(rhs)
	return loc != nil && loc[0] == 0 && loc[1] == len(rhs)
}

func isLuaIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLuaWord(s[i]) {
			return false
		}
	}
	return s != ""
}

// safeLuaOperand reports whether comparing with operand tells nothing of
// where a digest differs: the empty string, a length, a digest of a
// digest, or a boolean.
func safeLuaOperand(s string) bool {
	s = strings.TrimSpace(s)
	return s == "''" || s == `""` || strings.HasPrefix(s, "#") || strings.HasPrefix(s, "redis.sha1hex(") ||
		(strings.HasPrefix(s, "(") && luaCompare.MatchString(s))
}

// luaOperandBefore is the operand that ends where s does.
func luaOperandBefore(s string) string {
	depth := 0
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ')', ']':
			depth++
		case '(', '[':
			if depth == 0 {
				return strings.TrimSpace(s[i+1:])
			}
			depth--
		}
		if depth == 0 {
			if n := luaOperandEndAt(s, i); n > 0 {
				return strings.TrimSpace(s[i+n:])
			}
		}
	}
	return strings.TrimSpace(s)
}

// luaOperandAfter is the operand that starts where s does.
func luaOperandAfter(s string) string {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[':
			depth++
		case ')', ']':
			if depth == 0 {
				return strings.TrimSpace(s[:i])
			}
			depth--
		}
		if depth == 0 && luaOperandEndAt(s, i) > 0 {
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// luaOperandEndAt is the length of the keyword, separator or operator
// that ends an operand at s[i:], or 0. A keyword must stand alone.
func luaOperandEndAt(s string, i int) int {
	loc := luaOperandEnd.FindStringIndex(s[i:])
	if loc == nil || loc[0] != 0 || (isLuaWord(s[i]) && i > 0 && isLuaWord(s[i-1])) {
		return 0
	}
	return loc[1]
}

func isLuaWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// stripLuaComment drops a -- comment outside a string literal.
func stripLuaComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '-' && i+1 < len(line) && line[i+1] == '-':
			return line[:i]
		}
	}
	return line
}
