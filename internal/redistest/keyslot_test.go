package redistest_test

import (
	"math/rand/v2"
	"testing"

	"github.com/sessionkit/sessionkit/internal/redistest"
)

// keySlotCases are keys whose slots exercise the hash tag rules; the
// cluster test checks every one against CLUSTER KEYSLOT as well.
var keySlotCases = []struct {
	key  string
	want int
}{
	{"123456789", 12739}, // the CRC-16/XMODEM check value 0x31C3
	{"", 0},
	{"foo", 12182},
	{"{foo}bar", 12182},            // tag: "foo"
	{"{user1000}.following", 3443}, // tag: "user1000"
	{"{user1000}.followers", 3443}, // same tag, same slot
	{"foo{}{bar}", 8363},           // empty first tag: whole key hashed
	{"foo{{bar}}zap", 4015},        // tag: "{bar"
	{"foo{bar}{zap}", 5061},        // first tag only: "bar"
	{"{}", 15257},                  // empty tag: whole key
	{"a{b", 13340},                 // no closing brace: whole key
	{"}{a}", 15495},                // '}' before '{' is ignored: tag "a"
}

func TestKeySlotKnownValues(t *testing.T) {
	t.Parallel()
	for _, tc := range keySlotCases {
		if got := redistest.KeySlot(tc.key); got != tc.want {
			t.Errorf("KeySlot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

// keySlotKeys returns the table's keys plus random keys rich in braces,
// for comparison with CLUSTER KEYSLOT.
func keySlotKeys() []string {
	keys := make([]string, 0, len(keySlotCases)+200)
	for _, tc := range keySlotCases {
		keys = append(keys, tc.key)
	}
	const alphabet = "ab{}:é\x00\xff"
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		keys = append(keys, string(b))
	}
	return keys
}
