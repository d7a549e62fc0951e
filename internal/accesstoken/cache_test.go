package accesstoken

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCacheKeepsVerifiedTokens(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	tok := mint(t, ks, testClaims())
	if _, err := ks.Verify(tok, testOpts()); err != nil {
		t.Fatal(err)
	}
	if got := ks.cache.len(); got != 1 {
		t.Fatalf("cache size after one verify: got %d, want 1", got)
	}
	if _, ok := ks.cache.get(tok); !ok {
		t.Fatal("cache lookup: got a miss, want a hit")
	}

	// The last character of a signature carries 2 bits: A, Q, g or w. Swap it
	// for another of them, so the token changes and stays well-formed.
	last := "A"
	if tok[len(tok)-1] == 'A' {
		last = "Q"
	}
	refused := []string{"", "x.y.z", tok + "x", tok[:len(tok)-1] + last}
	for _, bad := range refused {
		if _, err := ks.Verify(bad, testOpts()); err == nil {
			t.Errorf("Verify(%q): got nil, want an error", bad)
		}
	}
	if got := ks.cache.len(); got != 1 {
		t.Errorf("cache size after refusals: got %d, want 1 (refusals are not cached)", got)
	}
}

// TestCacheHitStillChecks verifies a token once to cache it, then checks
// that every claim check still runs on a hit.
func TestCacheHitStillChecks(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	c := testClaims()
	c.Audience = []string{"https://api.example"}
	tok := mint(t, ks, c)
	if _, err := ks.Verify(tok, testOpts()); err != nil {
		t.Fatal(err)
	}

	exp := c.ExpiresAt
	tests := []struct {
		name    string
		opts    VerifyOptions
		wantErr error // nil: accepted
	}{
		{"before exp", VerifyOptions{Issuer: testIssuer, Now: exp.Add(-time.Second)}, nil},
		{"at exp", VerifyOptions{Issuer: testIssuer, Now: exp}, ErrExpired},
		{"after exp", VerifyOptions{Issuer: testIssuer, Now: exp.Add(time.Hour)}, ErrExpired},
		{"after exp within leeway", VerifyOptions{Issuer: testIssuer, Now: exp.Add(time.Second), Leeway: 2 * time.Second}, nil},
		{"negative leeway counts as none", VerifyOptions{Issuer: testIssuer, Now: exp.Add(-time.Second), Leeway: -time.Hour}, nil},
		{"before iat", VerifyOptions{Issuer: testIssuer, Now: testNow.Add(-time.Second)}, ErrInvalid},
		{"another issuer", VerifyOptions{Issuer: "https://other.example", Now: testNow}, ErrInvalid},
		{"no issuer", VerifyOptions{Now: testNow}, ErrInvalid},
		{"another audience", VerifyOptions{Issuer: testIssuer, Audience: "https://other.example", Now: testNow}, ErrInvalid},
		{"the audience", VerifyOptions{Issuer: testIssuer, Audience: "https://api.example", Now: testNow}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := ks.cache.get(tok); !ok {
				t.Fatal("cache lookup: got a miss, want a hit")
			}
			_, err := ks.Verify(tok, tt.opts)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	c := testClaims()
	c.Audience = []string{"https://api.example"}
	tok := mint(t, ks, c)
	first, err := ks.Verify(tok, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	first.Audience[0] = "https://evil.example"
	second, err := ks.Verify(tok, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if second.Audience[0] != "https://api.example" {
		t.Errorf("aud after the caller edited an earlier result: got %q, want %q", second.Audience[0], "https://api.example")
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache()
	live := verified{claims: Claims{ExpiresAt: testNow.Add(time.Hour)}}
	for i := range 10 * CacheSize {
		c.put(fmt.Sprintf("token-%d", i), live, testNow)
	}
	if got := c.len(); got > CacheSize {
		t.Errorf("size after %d puts: got %d, want at most %d", 10*CacheSize, got, CacheSize)
	}
	for i := range c.shards {
		if got := len(c.shards[i].m); got > shardCapacity {
			t.Errorf("shard %d: got %d entries, want at most %d", i, got, shardCapacity)
		}
	}
	// The most recent token of each shard is never the one evicted.
	last := fmt.Sprintf("token-%d", 10*CacheSize-1)
	if _, ok := c.get(last); !ok {
		t.Errorf("the last token put: got a miss, want a hit")
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	c := newCache()
	dead := verified{claims: Claims{ExpiresAt: testNow}}
	live := verified{claims: Claims{ExpiresAt: testNow.Add(time.Hour)}}
	for i := range 4 * CacheSize {
		c.put(fmt.Sprintf("dead-%d", i), dead, testNow.Add(-time.Minute))
	}
	var keep []string
	for i := range CacheSize / 2 {
		tok := fmt.Sprintf("live-%d", i)
		c.put(tok, live, testNow)
		keep = append(keep, tok)
	}
	for _, tok := range keep {
		if _, ok := c.get(tok); !ok {
			t.Errorf("%s: got a miss, want the live tokens kept while expired ones remain", tok)
		}
	}
}

func TestCacheMissOnHashCollision(t *testing.T) {
	c := newCache()
	c.put("token-a", verified{claims: Claims{Subject: "a"}}, testNow)
	// Force another token into token-a's slot, as a 64-bit collision would.
	h, s := c.shard("token-a")
	s.m[h] = cacheEntry{token: "token-b", v: verified{claims: Claims{Subject: "b"}}}
	if v, ok := c.get("token-a"); ok {
		t.Errorf("got a hit with sub %q for another token's entry, want a miss", v.claims.Subject)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	ks := newKeySet(t, newEd25519(t), newP256(t))
	var tokens []string
	for range 8 {
		tokens = append(tokens, mint(t, ks, testClaims()))
	}
	expired := testClaims()
	expired.IssuedAt, expired.ExpiresAt = testNow.Add(-time.Hour), testNow.Add(-time.Minute)
	dead := mint(t, ks, expired)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				tok := tokens[(g+i)%len(tokens)]
				if _, err := ks.Verify(tok, testOpts()); err != nil {
					errs <- fmt.Errorf("valid token: got %v, want nil", err)
					return
				}
				if _, err := ks.Verify(dead, testOpts()); !errors.Is(err, ErrExpired) {
					errs <- fmt.Errorf("expired token: got %v, want ErrExpired", err)
					return
				}
				if i%50 == 0 {
					fresh, err := ks.Mint(testClaims())
					if err == nil {
						_, err = ks.Verify(fresh, testOpts())
					}
					if err != nil {
						errs <- fmt.Errorf("fresh token: got %v, want nil", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVerifyCachedAllocs(t *testing.T) {
	ks := newKeySet(t, newEd25519(t))
	tok := mint(t, ks, testClaims())
	opts := testOpts()
	if _, err := ks.Verify(tok, opts); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ks.Verify(tok, opts); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("cached Verify: got %v allocations, want 0", allocs)
	}
}

// TestCacheBoundedThroughVerify feeds Verify more distinct valid tokens
// than the cache holds.
func TestCacheBoundedThroughVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("mints and verifies thousands of tokens")
	}
	ks := newKeySet(t, newEd25519(t))
	n := CacheSize + CacheSize/2
	for i := range n {
		c := testClaims()
		c.Subject = fmt.Sprintf("user-%d", i)
		if _, err := ks.Verify(mint(t, ks, c), testOpts()); err != nil {
			t.Fatal(err)
		}
	}
	if got := ks.cache.len(); got > CacheSize {
		t.Errorf("size after %d distinct tokens: got %d, want at most %d", n, got, CacheSize)
	}
}
