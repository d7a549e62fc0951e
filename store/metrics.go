package store

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// instrumentationName names the cache's meter.
const instrumentationName = "github.com/sessionkit/sessionkit/store"

// instrument registers the cache's observable instruments with mp, in
// place of any registered by an earlier Attach, so that each is observed
// once. They read the counters Stats reads, at collection time only: the
// Peek path records nothing of its own.
func (c *Cache) instrument(mp metric.MeterProvider) error {
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
		return err
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := c.Stats()
		o.ObserveInt64(hits, int64(st.Hits))
		o.ObserveInt64(misses, int64(st.Misses))
		o.ObserveInt64(inval, int64(st.Invalidations))
		o.ObserveInt64(entries, int64(st.Entries))
		var v int64
		if st.On {
			v = 1
		}
		o.ObserveInt64(on, v)
		return nil
	}, hits, misses, inval, entries, on)
	if err != nil {
		return err
	}
	c.metricsMu.Lock()
	defer c.metricsMu.Unlock()
	if c.metrics != nil {
		_ = c.metrics.Unregister() // the earlier provider's: nothing to do if it fails
	}
	c.metrics = reg
	return nil
}

// uninstrument unregisters the cache's instruments.
func (c *Cache) uninstrument() {
	c.metricsMu.Lock()
	defer c.metricsMu.Unlock()
	if c.metrics != nil {
		_ = c.metrics.Unregister()
		c.metrics = nil
	}
}
