package store

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/metric"

	"github.com/sessionkit/sessionkit/internal/backend"
)

// instrumentationName names the cache's meter.
const instrumentationName = "github.com/sessionkit/sessionkit/store"

// cacheGroup is what the cache's observable instruments report for every
// cache on one MeterProvider: the OTel SDK adds up the observations of
// one instrument made by several callbacks, so with a callback per cache,
// closing one would make the counters fall, which Prometheus reads as a
// counter reset. A cache that leaves (closed, or attached to another
// provider) leaves its counts in retired; the callback goes once no cache
// uses the provider.
type cacheGroup struct {
	caches  map[*Cache]struct{}
	retired struct{ hits, misses, invalidations uint64 }
	reg     metric.Registration
}

// cacheGroups are the groups in use, by MeterProvider, and each cache's.
// A provider of a type that cannot be a map key gets a group per cache.
var cacheGroups struct {
	mu     sync.Mutex
	byMP   map[metric.MeterProvider]*cacheGroup
	member map[*Cache]*cacheGroup
}

// instrument reports the cache's counters to mp, in place of the provider
// of an earlier Attach, so that each is observed once. They read the
// counters Stats reads, at collection time only: the Peek path records
// nothing of its own.
func (c *Cache) instrument(mp metric.MeterProvider) error {
	shared := backend.Keyable(mp)
	cacheGroups.mu.Lock()
	defer cacheGroups.mu.Unlock()
	if c.uninstrumented {
		return nil // closed: nothing to report, and nothing would release it
	}
	g := cacheGroups.member[c]
	if g != nil && shared && cacheGroups.byMP[mp] == g {
		return nil // attached to mp already
	}
	if shared && cacheGroups.byMP[mp] != nil {
		g = cacheGroups.byMP[mp]
	} else {
		var err error
		if g, err = newCacheGroup(mp); err != nil {
			return err
		}
		if shared {
			if cacheGroups.byMP == nil {
				cacheGroups.byMP = make(map[metric.MeterProvider]*cacheGroup)
			}
			cacheGroups.byMP[mp] = g
		}
	}
	leaveGroup(c)
	g.caches[c] = struct{}{}
	if cacheGroups.member == nil {
		cacheGroups.member = make(map[*Cache]*cacheGroup)
	}
	cacheGroups.member[c] = g
	return nil
}

// newCacheGroup registers the instruments' callback for a new group on mp.
func newCacheGroup(mp metric.MeterProvider) (*cacheGroup, error) {
	meter := mp.Meter(instrumentationName)
	hits, err1 := meter.Int64ObservableCounter("sessionkit.cache.hits", metric.WithUnit("{request}"),
		metric.WithDescription("Authentications answered from memory."))
	misses, err2 := meter.Int64ObservableCounter("sessionkit.cache.misses", metric.WithUnit("{request}"),
		metric.WithDescription("Authentications sent to Redis."))
	inval, err3 := meter.Int64ObservableCounter("sessionkit.cache.invalidations", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions dropped from memory by an announcement or a local write."))
	entries, err4 := meter.Int64ObservableUpDownCounter("sessionkit.cache.entries", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions held in memory."))
	on, err5 := meter.Int64ObservableGauge("sessionkit.cache.on", metric.WithUnit("1"),
		metric.WithDescription("1 while the cache serves hits (its subscription confirmed), 0 while it is off."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	g := &cacheGroup{caches: make(map[*Cache]struct{})}
	var err error
	g.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		cacheGroups.mu.Lock()
		st := g.retired
		var held, off int64
		for c := range g.caches {
			s := c.Stats()
			st.hits += s.Hits
			st.misses += s.Misses
			st.invalidations += s.Invalidations
			held += int64(s.Entries)
			if !s.On {
				off++
			}
		}
		cacheGroups.mu.Unlock()
		o.ObserveInt64(hits, int64(st.hits))
		o.ObserveInt64(misses, int64(st.misses))
		o.ObserveInt64(inval, int64(st.invalidations))
		o.ObserveInt64(entries, held)
		var v int64
		if off == 0 {
			v = 1 // every cache on the provider serves hits
		}
		o.ObserveInt64(on, v)
		return nil
	}, hits, misses, inval, entries, on)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// leaveGroup takes c out of its group, if any, keeping its counts there;
// the group's last cache unregisters its callback. Under cacheGroups.mu.
func leaveGroup(c *Cache) {
	g := cacheGroups.member[c]
	if g == nil {
		return
	}
	delete(cacheGroups.member, c)
	st := c.Stats()
	g.retired.hits += st.Hits
	g.retired.misses += st.Misses
	g.retired.invalidations += st.Invalidations
	delete(g.caches, c)
	if len(g.caches) > 0 {
		return
	}
	for mp, og := range cacheGroups.byMP {
		if og == g {
			delete(cacheGroups.byMP, mp)
		}
	}
	_ = g.reg.Unregister() // nothing to do if it fails
}

// uninstrument stops reporting the cache's counters (Close).
func (c *Cache) uninstrument() {
	cacheGroups.mu.Lock()
	defer cacheGroups.mu.Unlock()
	c.uninstrumented = true
	leaveGroup(c)
}
