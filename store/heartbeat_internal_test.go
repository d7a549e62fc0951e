package store

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestHeartbeatBackFromEveryBeat: a beat back from every master turns the
// cache on only when every beat sent before it is back too; one still
// missing a copy is a gap in waiting, not a healthy bus.
func TestHeartbeatBackFromEveryBeat(t *testing.T) {
	h := &heartbeat{channel: "c:beat:x", out: map[uint64]*beat{
		1: {sent: 0, want: 3, got: 2}, // one copy still on its way
		2: {sent: 10, want: 3, got: 2},
	}}
	if h.back("2") {
		t.Error("beat 2 complete while beat 1 misses a copy: reported back")
	}
	if !h.back("1") {
		t.Error("beat 1 complete, and no other beat out: not reported back")
	}
	if h.back("1") || h.back("x") {
		t.Error("a copy of no beat out reported back")
	}
}

// TestHeartbeatPublishedNowhere: a slot map that names no master (a node
// that answers CLUSTER SLOTS with none) publishes the beat nowhere, which
// checks nothing: it is a failure, not a beat back from every master.
func TestHeartbeatPublishedNowhere(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) { return nil, nil },
	})
	defer cc.Close()
	h, err := newHeartbeat(cc, "c")
	if err != nil || h == nil {
		t.Fatalf("newHeartbeat: %v, %v", h, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if back, err := h.beat(ctx, 0, time.Second); back || err == nil {
		t.Errorf("a beat published on no master: back %v, error %v; want an error", back, err)
	}
}
