package sessionkit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

const hookWorkers = 2

// dispatcher hands events to hooks off the request path. Each worker has
// its own queue and a user's events always go to the same one, so hooks see
// one user's events in the order they were emitted.
type dispatcher struct {
	hooks   []Hook
	queues  []chan hookCall
	log     *slog.Logger
	dropped atomic.Int64
	total   *atomic.Int64 // the drops of every Manager on its MeterProvider (see tally); set before the first emit
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	drained chan struct{} // closed once the workers have returned; made by close
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
	per := max(1, (size+hookWorkers-1)/hookWorkers)
	d.queues = make([]chan hookCall, hookWorkers)
	for i := range d.queues {
		d.queues[i] = make(chan hookCall, per)
		d.wg.Add(1)
		go d.run(d.queues[i])
	}
	return d
}

// emit queues events without ever blocking the caller.
func (d *dispatcher) emit(ctx context.Context, events []Event) {
	if d.queues == nil || len(events) == 0 {
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
		// A user id is random (or a hash), so its last byte spreads users evenly.
		q := d.queues[int(e.UserID[len(e.UserID)-1])%len(d.queues)]
		select {
		case q <- hookCall{ctx, e}:
		default:
			if d.total != nil {
				d.total.Add(1)
			}
			if n := d.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8, ...
				d.log.Warn("sessionkit: hook queue full, events dropped", "dropped", n)
			}
		}
	}
}

func (d *dispatcher) run(queue <-chan hookCall) {
	defer d.wg.Done()
	for c := range queue {
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
	if d.queues == nil {
		return nil
	}
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		for _, q := range d.queues {
			close(q)
		}
		d.mu.Unlock()
		d.drained = make(chan struct{})
		go func() { d.wg.Wait(); close(d.drained) }()
	})
	select {
	case <-d.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sessionkit: close: hooks still running: %w", ctx.Err())
	}
}
