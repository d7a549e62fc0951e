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
// Once done is closed it measures no more revocations, and returns those
// it measured (at least one).
func propagation(ctx context.Context, e *env, n int, bearer bool, done <-chan struct{}) ([]time.Duration, error) {
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
	for len(out) < n {
		if len(out) > 0 {
			select {
			case <-done:
				slices.Sort(out)
				return out, nil
			default:
			}
		}
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

// loadedPropagation is revocations' propagation timed under load.
type loadedPropagation struct {
	row   string          // the row that served the load
	load  loadResult      // its run
	times []time.Duration // sorted
}

// propagationUnderLoad times revocations reaching a second instance (see
// propagation) while the realistic mode's warm cache row serves a run of
// the mix (run): the two instances then share the machine and Redis with a
// loaded server, wrk and that row's activity writes, as a revocation's
// announcement does in production. It starts timing once the load has
// run for a moment, and stops when the load ends. It returns nil when
// there is no warm cache row.
func propagationUnderLoad(ctx context.Context, e *env, rows []*row, c config, run func(*row) (loadResult, error)) (*loadedPropagation, error) {
	i := slices.IndexFunc(rows, func(r *row) bool { return r.key == "cached" })
	if i < 0 {
		return nil, nil
	}
	fmt.Printf("timing revocations seen by a second instance while %s serves the mix\n", rows[i].name)
	done := make(chan struct{})
	var load loadResult
	var loadErr error
	go func() {
		defer close(done)
		load, loadErr = run(rows[i])
	}()
	select {
	case <-time.After(min(c.duration/5, time.Second)):
	case <-done:
	}
	times, err := propagation(ctx, e, c.revocations, false, done)
	<-done
	if err != nil {
		return nil, err
	}
	if loadErr != nil {
		return nil, loadErr
	}
	if load.statusErrors > 0 {
		return nil, fmt.Errorf("row %s, under revocations: %d of %d responses were not 2xx or 3xx", rows[i].key, load.statusErrors, load.requests)
	}
	return &loadedPropagation{row: rows[i].name, load: load, times: times}, nil
}
