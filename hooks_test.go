package sessionkit

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDispatcherSurvivesPanicsAndBlocks(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	release := make(chan struct{})
	var got atomic.Int64
	var once sync.Once
	d := newDispatcher([]Hook{
		func(context.Context, Event) { panic("boom") },
		func(context.Context, Event) { once.Do(func() { <-release }) },
		func(context.Context, Event) { got.Add(1) },
	}, 4, log)
	start := time.Now()
	for range 100 {
		d.emit(context.Background(), []Event{{Type: EventCreated}})
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("emit blocked on a blocking hook")
	}
	close(release)
	if err := d.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "hook panicked") || !strings.Contains(logs.String(), "events dropped") {
		t.Errorf("logs: %s", logs.String())
	}
	if n := got.Load(); n == 0 || n == 100 {
		t.Errorf("delivered %d of 100 with a queue of 4 and a blocked worker; want some, not all", n)
	}
	d.emit(context.Background(), []Event{{}}) // after close: dropped, no panic
}

func TestDispatcherCloseHonoursDeadline(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	d := newDispatcher([]Hook{func(context.Context, Event) { <-block }}, 4, slog.New(slog.DiscardHandler))
	d.emit(context.Background(), []Event{{}, {}, {}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.close(ctx); err == nil {
		t.Fatal("close returned nil while hooks were blocked")
	}
}

func TestDispatcherKeepsEachUsersOrder(t *testing.T) {
	const users, per = 16, 200
	var mu sync.Mutex
	seen := map[uuid.UUID][]string{}
	d := newDispatcher([]Hook{func(_ context.Context, e Event) {
		mu.Lock()
		seen[e.UserID] = append(seen[e.UserID], e.ID)
		mu.Unlock()
	}}, users*per*hookWorkers, slog.New(slog.DiscardHandler)) // room for every event on one queue
	ids := make([]uuid.UUID, users)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for n := range per {
		for _, id := range ids {
			d.emit(context.Background(), []Event{{UserID: id, ID: strconv.Itoa(n)}})
		}
	}
	if err := d.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		got := seen[id]
		if len(got) != per {
			t.Fatalf("user %v: %d of %d events delivered", id, len(got), per)
		}
		for i, n := range got {
			if n != strconv.Itoa(i) {
				t.Fatalf("user %v: event %s delivered at position %d", id, n, i)
			}
		}
	}
}
