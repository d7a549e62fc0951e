package sessionkit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

const hookWorkers = 2

// dispatcher hands events to hooks off the request path.
type dispatcher struct {
	hooks   []Hook
	queue   chan hookCall
	log     *slog.Logger
	dropped atomic.Int64
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
}

type hookCall struct {
	ctx context.Context
	e   Event
}

func newDispatcher(hooks []Hook, size int, log *slog.Logger) *dispatcher {
	d := &dispatcher{hooks: hooks, log: log}
	if len(hooks) == 0 {
		return d
	}
	d.queue = make(chan hookCall, size)
	for range hookWorkers {
		d.wg.Add(1)
		go d.run()
	}
	return d
}

// emit queues events without ever blocking the caller.
func (d *dispatcher) emit(ctx context.Context, events []Event) {
	if d.queue == nil || len(events) == 0 {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return
	}
	// Hooks outlive the request: keep its values, drop its cancellation.
	ctx = context.WithoutCancel(ctx)
	for _, e := range events {
		select {
		case d.queue <- hookCall{ctx, e}:
		default:
			if n := d.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8, ...
				d.log.Warn("sessionkit: hook queue full, events dropped", "dropped", n)
			}
		}
	}
}

func (d *dispatcher) run() {
	defer d.wg.Done()
	for c := range d.queue {
		for _, h := range d.hooks {
			d.call(h, c)
		}
	}
}

func (d *dispatcher) call(h Hook, c hookCall) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("sessionkit: hook panicked", "event", string(c.e.Type), "panic", fmt.Sprint(r))
		}
	}()
	h(c.ctx, c.e)
}

func (d *dispatcher) close(ctx context.Context) error {
	if d.queue == nil {
		return nil
	}
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		close(d.queue)
		d.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sessionkit: close: hooks still running: %w", ctx.Err())
	}
}
