package clientip_test

import (
	"strings"
	"testing"
)

func BenchmarkClientIPDefault(b *testing.B) {
	r := mustNew(b, nil)
	req := newRequest("203.0.113.7:54321")
	b.ReportAllocs()
	for b.Loop() {
		r.ClientIP(req)
	}
}

func BenchmarkClientIPDefaultIPv6(b *testing.B) {
	r := mustNew(b, nil)
	req := newRequest("[2001:db8::1]:54321")
	b.ReportAllocs()
	for b.Loop() {
		r.ClientIP(req)
	}
}

func BenchmarkClientIPTrustedXFF(b *testing.B) {
	r := mustNew(b, testProxies)
	req := newRequest("10.0.0.1:443", "6.6.6.6, 203.0.113.7, 10.0.0.3", "192.168.1.1")
	b.ReportAllocs()
	for b.Loop() {
		r.ClientIP(req)
	}
}

// BenchmarkClientIPHugeXFF shows that a 1 MB header costs the same as the
// capped 64 entries.
func BenchmarkClientIPHugeXFF(b *testing.B) {
	r := mustNew(b, testProxies)
	req := newRequest("10.0.0.1:443", strings.Repeat("10.0.0.2,", 1<<20/9)+"10.0.0.3")
	b.ReportAllocs()
	for b.Loop() {
		r.ClientIP(req)
	}
}
