package accesstoken

import (
	"crypto"
	"testing"
)

// benchKeys are the two signing algorithms, each as the set's first key.
func benchKeys(b *testing.B) []struct {
	name string
	ks   *KeySet
} {
	return []struct {
		name string
		ks   *KeySet
	}{
		{"EdDSA", newKeySet(b, newEd25519(b), crypto.Signer(newP256(b)))},
		{"ES256", newKeySet(b, newP256(b), newEd25519(b))},
	}
}

// BenchmarkVerify verifies tokens never seen before: the cost of a cache
// miss (parse, header checks, signature, claims, cache insert).
func BenchmarkVerify(b *testing.B) {
	for _, k := range benchKeys(b) {
		b.Run(k.name, func(b *testing.B) {
			tokens := make([]string, b.N)
			for i := range tokens {
				tokens[i] = mint(b, k.ks, testClaims())
			}
			opts := testOpts()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := k.ks.Verify(tokens[i], opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached verifies one token over and over from every
// processor: what a client reusing its token costs.
func BenchmarkVerifyCached(b *testing.B) {
	for _, k := range benchKeys(b) {
		b.Run(k.name, func(b *testing.B) {
			tok := mint(b, k.ks, testClaims())
			opts := testOpts()
			if _, err := k.ks.Verify(tok, opts); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := k.ks.Verify(tok, opts); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkVerifyGarbage is the cost of refusing a malformed token.
func BenchmarkVerifyGarbage(b *testing.B) {
	ks := newKeySet(b, newEd25519(b))
	tok := mint(b, ks, testClaims())
	bad := tok[:len(tok)-1] + "!" // fails the shape check
	opts := testOpts()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Verify(bad, opts); err == nil {
			b.Fatal("got nil, want an error")
		}
	}
}

func BenchmarkMint(b *testing.B) {
	for _, k := range benchKeys(b) {
		b.Run(k.name, func(b *testing.B) {
			c := testClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.ks.Mint(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
