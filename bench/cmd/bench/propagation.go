package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/store"
)

// propagation measures, n times, how long a second instance that has a
// session in its cache keeps accepting it after the first revokes it: from
// the start of RevokeSession on A to B's first refusal. Each instance has
// its own client and cache, as two app servers would. With bearer, the
// sessions are API clients' and B is asked with their access tokens.
func propagation(ctx context.Context, e *env, n int, bearer bool) ([]time.Duration, error) {
	opts := []sessionkit.Option{sessionkit.WithLogger(e.quiet), sessionkit.WithLimit(sessionkit.FixedLimit(sessionkit.Unlimited))}
	if bearer {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sessionkit.WithAccessTokens(sessionkit.AccessTokenOptions{
			SigningKeys: []crypto.Signer{key}, Issuer: "https://bench.sessionkit.test", TTL: time.Hour,
		}))
	}
	mk := func() (*sessionkit.Manager, error) {
		st, err := store.NewRedis(e.client(nil), store.Options{Prefix: "bench:prop:"})
		if err != nil {
			return nil, err
		}
		cache, err := store.NewCache(st, store.CacheOptions{TTL: store.MaxCacheTTL})
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, func() { cache.Close() })
		if err := waitCacheOn(ctx, cache); err != nil {
			return nil, err
		}
		m, err := sessionkit.New(cache, opts...)
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, func() { m.Close(context.Background()) })
		return m, nil
	}
	a, err := mk()
	if err != nil {
		return nil, err
	}
	b, err := mk()
	if err != nil {
		return nil, err
	}
	ip := netip.MustParseAddr("127.0.0.1")
	user := uuid.New()
	out := make([]time.Duration, 0, n)
	for range n {
		v, err := a.CreateSession(ctx, sessionkit.CreateSession{UserID: user, IPAddress: ip.String(), UserAgent: benchUA, Bearer: bearer})
		if err != nil {
			return nil, err
		}
		tok := v.Token
		if bearer {
			tok = v.Tokens.AccessToken
		}
		for range 2 { // the second is answered from B's cache
			if _, err := b.Authenticate(ctx, tok, ip); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		if _, err := a.RevokeSession(ctx, sessionkit.RevokeSession{SessionID: v.Session.ID, UserID: user, Reason: sessionkit.ReasonLogout}); err != nil {
			return nil, err
		}
		for {
			_, err := b.Authenticate(ctx, tok, ip)
			if errors.Is(err, sessionkit.ErrRevoked) {
				break
			}
			if err != nil {
				return nil, err
			}
			if time.Since(start) > 10*time.Second {
				return nil, fmt.Errorf("the second instance still accepts a session revoked %v ago", time.Since(start))
			}
			time.Sleep(20 * time.Microsecond) // as requests would arrive; never starve the poller
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}

// pct returns the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
