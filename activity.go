package sessionkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// DefaultActivityWriteDelay is how long Authenticate's activity writes wait
// to be sent together when no WithActivityWriteDelay option is given.
//
// At 25 ms, a server taking a few thousand activity writes a second sends
// them in a few dozen pipelines a second rather than a couple of hundred,
// which costs Redis about a quarter less CPU per request over the
// verified-session cache (docs/performance.md); the activity still lands
// within the delay and a round trip, and nothing that decides a request
// waits on it.
const DefaultActivityWriteDelay = 25 * time.Millisecond

const (
	// maxActivityQueued bounds the sessions the writer holds; past it,
	// Authenticate writes on the request path, as it does with no writer.
	maxActivityQueued = 16384
	// maxActivityBatch bounds the writes of one pipeline.
	maxActivityBatch = 256
	// activityWriteTimeout bounds one pipeline of writes.
	activityWriteTimeout = 5 * time.Second
	// idleWriteMargin: a session with less idle time left than this is
	// written on the request path, so that a write that fails or lands
	// late cannot let an active session reach its idle deadline.
	idleWriteMargin = 10 * time.Second
	// activityLogEvery spaces the warnings of failed writes.
	activityLogEvery = time.Minute
)

// activityWriter takes Authenticate's common activity write (the throttle
// has passed, the address is unchanged, no activity event is recorded) off
// the request path. Written there, each costs its request a round trip of
// its own and Redis and the app the system calls of one, for a session
// that is already verified; and under the default throttle it falls on
// about one request in thirty of a realistic mix (see docs/performance.md).
// The writer gathers the writes that fall due within its delay and sends
// them to the store together (Store.TouchAll), one goroutine at a time,
// which lives only while there is something to send.
//
// What a queued write changes: the request's result says Written false and
// carries the session as it was read, as a throttled request's does; the
// activity lands within the delay and a round trip. Nothing that decides
// a request waits on it: expiry and revocation are checked before it, an
// address change is never queued, and neither is the write of a session
// near its idle deadline (idleWriteMargin). A write that fails leaves the
// last activity as it was, counted among the store's failures
// (sessionkit.store.errors, operation "touch") and logged at most once a
// minute; the session's next request past the throttle writes again.
type activityWriter struct {
	m     *Manager
	delay time.Duration
	limit int // maxActivityQueued; lower in tests

	mu      sync.Mutex
	queued  map[uuid.UUID]struct{} // waiting or being sent: each session once
	next    []uuid.UUID            // waiting for the next round
	running bool                   // a goroutine is sending rounds
	closed  bool
	drained chan struct{} // closed once the sender has returned; made by the first close
	stop    chan struct{} // closed by close: rounds go without waiting
	wg      sync.WaitGroup

	lastLog atomic.Int64 // Unix ns of the last warning
}

func newActivityWriter(m *Manager, delay time.Duration) *activityWriter {
	return &activityWriter{m: m, delay: delay, limit: maxActivityQueued, queued: map[uuid.UUID]struct{}{}, stop: make(chan struct{})}
}

// take queues the activity write of s, which Authenticate has just
// verified at now, and reports whether it did (or one is already queued);
// false means the caller writes it itself.
func (w *activityWriter) take(s *Session, now time.Time) bool {
	if w == nil {
		return false
	}
	if s.IdleTimeout > 0 && s.LastActivityAt.Add(s.IdleTimeout).Sub(now) < idleWriteMargin {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if _, ok := w.queued[s.ID]; ok {
		return true
	}
	if len(w.queued) >= w.limit {
		return false
	}
	w.queued[s.ID] = struct{}{}
	w.next = append(w.next, s.ID)
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
	return true
}

// run sends a round of writes every delay until a round finds none.
func (w *activityWriter) run() {
	defer w.wg.Done()
	t := time.NewTimer(w.delay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.stop:
		}
		w.mu.Lock()
		ids := w.next
		w.next = nil
		if len(ids) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.send(ids)
		// Dequeued only once written, so that a request reading the
		// session meanwhile (from a cache entry not yet replaced, or
		// from Redis) does not queue it again.
		w.mu.Lock()
		for _, id := range ids {
			delete(w.queued, id)
		}
		w.mu.Unlock()
		t.Reset(w.delay)
	}
}

// send writes ids' activity, maxActivityBatch at a time.
func (w *activityWriter) send(ids []uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), activityWriteTimeout)
	defer cancel()
	var failed int
	var first error
	for len(ids) > 0 {
		n := min(len(ids), maxActivityBatch)
		for _, err := range w.m.bare.TouchAll(ctx, w.m.call(), ids[:n]) {
			// A refusal (revoked, expired, signed out meanwhile) is no failure.
			if err != nil && classify(err) >= resUnavailable {
				w.m.tel.storeFailed(ctx, "touch", err)
				if failed++; first == nil {
					first = err
				}
			}
		}
		ids = ids[n:]
	}
	if failed > 0 {
		now := time.Now().UnixNano()
		if last := w.lastLog.Load(); now-last >= int64(activityLogEvery) && w.lastLog.CompareAndSwap(last, now) {
			w.m.log.Warn("sessionkit: activity writes failed; the sessions' last activity is not recorded", "failed", failed, "err", first)
		}
	}
}

// close sends what is queued at once, and waits for it up to ctx's
// deadline; after it, Authenticate writes on the request path.
func (w *activityWriter) close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
		// One waiter for every Close: a Close whose deadline passes
		// leaves no goroutine of its own behind.
		w.drained = make(chan struct{})
		go func() {
			w.wg.Wait()
			close(w.drained)
		}()
	}
	drained := w.drained
	w.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sessionkit: close: activity writes still being sent: %w", ctx.Err())
	}
}
