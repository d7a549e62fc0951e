package accesstoken

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// CacheSize is the most verified tokens a KeySet keeps. Past it, an insert
// first drops the expired tokens of its shard, then an arbitrary one; a
// dropped token only costs its next Verify a signature check. At MaxLen
// per token the cache holds at most about 20 MiB, and about 4 MiB for
// tokens of usual size.
const CacheSize = 4096

const (
	cacheShards   = 32
	shardCapacity = CacheSize / cacheShards
)

// cache maps tokens that verified to what they said. The shards keep
// concurrent verifies of different tokens off each other's lock.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]shard
}

type shard struct {
	mu sync.RWMutex
	// m is keyed by the token's hash; the entry holds the token itself,
	// which a hit must equal, so a hash collision is only a miss.
	m map[uint64]cacheEntry
	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

type cacheEntry struct {
	token string
	v     verified
}

func newCache() *cache {
	c := &cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry, shardCapacity)
	}
	return c
}

// shard returns token's map key and the shard that holds it.
func (c *cache) shard(token string) (uint64, *shard) {
	h := maphash.String(c.seed, token)
	return h, &c.shards[h%cacheShards]
}

// get returns what token said when it last verified.
func (c *cache) get(token string) (verified, bool) {
	h, s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[h]
	s.mu.RUnlock()
	// Not a constant-time compare: reaching it with a token other than
	// the cached one takes a 64-bit collision under a secret seed.
	if !ok || e.token != token {
		return verified{}, false
	}
	return e.v, true
}

// put keeps a token that has just verified, making room if its shard is full.
func (c *cache) put(token string, v verified, now time.Time) {
	h, s := c.shard(token)
	// The caller's string may be a slice of a larger buffer (a request
	// header); keep only the token.
	e := cacheEntry{token: strings.Clone(token), v: v}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; !ok && len(s.m) >= shardCapacity {
		s.evict(now)
	}
	s.m[h] = e
}

// evict drops the shard's expired tokens, or, if none has expired, one
// arbitrary token (map order is randomised). Called with s.mu held.
func (s *shard) evict(now time.Time) {
	for h, e := range s.m {
		if !now.Before(e.v.claims.ExpiresAt) {
			delete(s.m, h)
		}
	}
	for h := range s.m {
		if len(s.m) < shardCapacity {
			break
		}
		delete(s.m, h)
	}
}

// len returns the number of cached tokens.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
