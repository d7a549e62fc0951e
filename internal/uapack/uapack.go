// Package uapack packs a User-Agent for storage: each of the common
// substrings of a fixed table is replaced by one byte below 0x20.
package uapack

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Each of the common substrings of table is replaced by one byte, 0x01 for
// the first entry, 0x02 for the second. What is packed holds no byte below
// 0x20 of its own (sessionkit stores User-Agents cleaned of control
// characters), and 0x1f, the separator of sessionkit's stored fields, is
// not a code: packing is exact and unambiguous. The User-Agent is a third
// of a session's stored length and mostly the same run of tokens in every
// browser of a family: packed, a browser's takes 7 to 18 bytes instead of
// 80 to 135. The table is part of the storage format: entries are only
// ever appended, up to maxCode (a record holding a code this release does
// not know reads it as U+FFFD).
var table = [...]string{
	"Mozilla/5.0 (",
	") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/",
	".0.0.0 Safari/537.36",
	".0.0.0 Mobile Safari/537.36",
	"Windows NT 10.0; Win64; x64",
	"Macintosh; Intel Mac OS X 10_15_7",
	") AppleWebKit/605.1.15 (KHTML, like Gecko) Version/",
	" Mobile/15E148 Safari/604.1",
	" Safari/605.1.15",
	"iPhone; CPU iPhone OS ",
	" like Mac OS X",
	"Linux; Android ",
	"X11; Linux x86_64",
	") Gecko/20100101 Firefox/",
	"; rv:",
	" Edg/",
	".0.0.0",
	"iPad; CPU OS ",
	"Macintosh; Intel Mac OS X 10.15",
	") AppleWebKit/537.36 (KHTML, like Gecko) ",
	"Chrome/",
	" Safari/537.36",
	"Mobile Safari/537.36",
	" CFNetwork/",
	" Darwin/",
	"Dalvik/2.1.0 (Linux; U; Android ",
	" Build/",
	"okhttp/",
	" OPR/",
	" Mobile",
}

// codes lists, for each byte, the codes of the entries that start with
// it, longest entry first: packing takes the longest entry that matches.
var codes = func() (idx [256][]byte) {
	for i, e := range table {
		idx[e[0]] = append(idx[e[0]], byte(i+1))
	}
	for _, codes := range idx {
		for i := 1; i < len(codes); i++ { // insertion sort, by length, longest first
			for j := i; j > 0 && len(table[codes[j]-1]) > len(table[codes[j-1]-1]); j-- {
				codes[j], codes[j-1] = codes[j-1], codes[j]
			}
		}
	}
	return idx
}()

// maxCode is the highest code: the table never grows past it.
const maxCode = 0x1e

// Pack returns the packed form of ua, which must hold no byte below 0x20;
// Unpack(Pack(ua)) == ua. It is never longer than ua.
func Pack(ua string) string {
	var b strings.Builder
	for i := 0; i < len(ua); {
		code := byte(0)
		for _, c := range codes[ua[i]] {
			if strings.HasPrefix(ua[i:], table[c-1]) {
				code = c
				break
			}
		}
		if code == 0 {
			if b.Cap() == 0 {
				b.Grow(len(ua) / 2)
			}
			b.WriteByte(ua[i])
			i++
			continue
		}
		b.WriteByte(code)
		i += len(table[code-1])
	}
	return b.String()
}

// maxUnpacked bounds how many distinct packed User-Agents Unpack keeps
// unpacked: a fleet sees a few thousand at a time. Past the bound Unpack
// starts over with an empty set, so that as browsers' versions move on
// (or a client sends User-Agents by the thousand) the set follows what is
// in use now, in about 1 MB at most.
const maxUnpacked = 4096

var (
	unpacked  sync.Map // packed form -> User-Agent
	unpackedN atomic.Int32
)

// unknownCode stands for a code this release's table does not have.
const unknownCode = "\uFFFD"

// Unpack returns the User-Agent s packs. A string with no code (one stored
// before packing) is returned as it is; a code the table lacks reads as
// U+FFFD. The User-Agents of the last few thousand distinct packed forms
// are kept, so that reading a session allocates nothing for its
// User-Agent.
func Unpack(s string) string {
	if !hasCode(s) {
		return s
	}
	if ua, ok := unpacked.Load(s); ok {
		return ua.(string)
	}
	var b strings.Builder
	b.Grow(3 * len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x20:
			b.WriteByte(c)
		case c >= 1 && int(c) <= len(table):
			b.WriteString(table[c-1])
		default:
			b.WriteString(unknownCode)
		}
	}
	ua := b.String()
	if unpackedN.Add(1) > maxUnpacked {
		unpacked.Clear()
		unpackedN.Store(1)
	}
	unpacked.Store(strings.Clone(s), ua)
	return ua
}

// hasCode reports whether s holds a byte below 0x20: a packed token.
func hasCode(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}
