package redistest

import (
	"sync"
	"time"
)

// Clock is a settable clock for sessionkit.WithClock. It starts at the real
// time (to the millisecond), so the absolute expiries the store gives Redis
// stay meaningful, and moves only when told. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at the current time, truncated to the millisecond.
func NewClock() *Clock { return &Clock{t: time.UnixMilli(time.Now().UnixMilli())} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
