package redistest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// maxPrefixName bounds the test-name part of a prefix, to keep keys short.
const maxPrefixName = 32

// Prefix returns a key prefix unique to this test run, such as
// "t:TestLogin/bob:3fa9c1:". Tests sharing a server keep to their own prefix
// instead of flushing the database. The prefix holds no '{' or '}', so it
// never forms a hash tag of its own; characters other than letters, digits
// and "_-./" become '_', and long names keep their last characters, where
// subtest names are.
func Prefix(tb testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '_', r == '-', r == '.', r == '/':
			return r
		}
		return '_'
	}, tb.Name())
	if len(name) > maxPrefixName {
		name = name[len(name)-maxPrefixName:]
	}
	return fmt.Sprintf("t:%s:%06x:", name, rand.Uint32()&0xffffff)
}
