package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Bounds on the X-Forwarded-For work per request. A real chain is a handful
// of hops; anything beyond these is ignored from the left.
const (
	maxXFFEntries = 64
	maxXFFBytes   = 8 << 10
)

// ErrInvalidProxy is wrapped by the error [New] returns for a trusted proxy
// entry that is neither an IP address nor a CIDR range.
var ErrInvalidProxy = errors.New("clientip: invalid trusted proxy")

// mappedV4 is the IPv4-mapped IPv6 range, ::ffff:0:0/96.
var mappedV4 = netip.MustParseAddr("::ffff:0.0.0.0")

// Resolver extracts the client IP of a request. Create it with [New]; the zero
// value trusts no proxy and so always returns the peer. A Resolver is
// immutable and safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix // canonical: IPv4 ranges are 4-byte prefixes
}

// New returns a resolver that trusts X-Forwarded-For only when the direct peer
// (RemoteAddr) is inside one of trustedProxies, each a CIDR range
// ("10.0.0.0/8", "2001:db8::/32") or a single address ("10.0.0.1" is /32,
// "::1" is /128). Surrounding spaces are ignored, host bits of a range are
// cleared, and a zone on a single address is dropped.
//
// Ranges are matched against canonical addresses: an IPv4-mapped range such
// as "::ffff:10.0.0.0/104" means 10.0.0.0/8, and an IPv6 range that contains
// all of ::ffff:0:0/96 (such as "::/0") covers every IPv4 address too.
//
// An entry that does not parse gives an error that wraps [ErrInvalidProxy]
// and names the entry. With no entries the resolver ignores X-Forwarded-For.
func New(trustedProxies []string) (*Resolver, error) {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trustedProxies))}
	for i, entry := range trustedProxies {
		p, err := parseProxy(strings.TrimSpace(entry))
		if err != nil {
			return nil, fmt.Errorf("%w %q (index %d): %v", ErrInvalidProxy, entry, i, err)
		}
		r.trusted = append(r.trusted, p)
		if p.Addr().Is6() && p.Bits() < 96 && p.Contains(mappedV4) {
			r.trusted = append(r.trusted, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		}
	}
	return r, nil
}

// TrustsEveryAddress reports whether a trusted range covers every address
// of a family (0.0.0.0/0 or ::/0): X-Forwarded-For is then believed from
// any peer.
func (r *Resolver) TrustsEveryAddress() bool {
	for _, p := range r.trusted {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

func parseProxy(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = Canonical(a)
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// Trusted reports whether a, in canonical form, is inside one of the trusted
// proxy ranges. The invalid Addr is never trusted.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = Canonical(a)
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the canonical client address for req: the peer, or, when
// the peer is a trusted proxy, the rightmost X-Forwarded-For entry that is not
// a trusted proxy (see the package documentation for the full rules).
//
// ok is false only when RemoteAddr itself is unusable; the caller should treat
// that as a misconfiguration, log it and fall back.
func (r *Resolver) ClientIP(req *http.Request) (netip.Addr, bool) {
	peer, ok := Parse(req.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !r.Trusted(peer) {
		return peer, true
	}
	return r.walk(peer, req.Header.Values("X-Forwarded-For")), true
}

// walk reads the XFF lines from the right. vouched is always an address we
// can stand behind: the peer, then each trusted entry as we pass it.
func (r *Resolver) walk(peer netip.Addr, lines []string) netip.Addr {
	vouched := peer
	budget, entries := maxXFFBytes, 0
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			entry, rest, more, fits := lastEntry(line, budget)
			if !fits || entries == maxXFFEntries {
				return vouched
			}
			budget -= len(entry) + 1 // the entry and its separator
			entries++
			a, ok := Parse(entry)
			if !ok {
				return vouched
			}
			if !r.Trusted(a) {
				return a
			}
			vouched = a
			if !more {
				break
			}
			line = rest
		}
	}
	return vouched
}

// lastEntry splits the rightmost comma-separated entry off line. It looks at
// no more than budget bytes, and fits is false when the entry plus its
// separator would not fit in budget, so a truncated entry is never parsed.
func lastEntry(line string, budget int) (entry, rest string, more, fits bool) {
	window := line
	if len(window) > budget {
		window = window[len(window)-budget:]
	}
	j := strings.LastIndexByte(window, ',')
	if j < 0 {
		if len(line)+1 > budget {
			return "", "", false, false
		}
		return line, "", false, true
	}
	j += len(line) - len(window)
	return line[j+1:], line[:j], true, true
}
