package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// errBeatLost is a heartbeat that did not come back from every master in
// time: announcements may be lost or late on the way. errNoMaster is a
// beat that had no master to go to, and so checked nothing.
var (
	errBeatLost = errors.New("a heartbeat published on every master did not come back in time")
	errNoMaster = errors.New("heartbeat: the cluster's slot map names no master to publish on")
)

// heartbeat checks the path an announcement takes on a Cluster. A script
// publishes on the master of its user's slot, and the cluster bus carries
// the message to the node a subscription is on. The bus can hold a message
// up or lose it (a link that is dropped and reconnected loses what it had
// not sent) while the subscription's own connection, which the health
// check pings, stays healthy. So each health check also publishes a
// numbered beat on every master, on a channel only this subscription
// listens to, and a beat that is not back from every one of them within
// the silence a dead connection is allowed counts as a gap in the channel.
// The cache turns on only once a beat, the first sent when the subscription
// is confirmed, is back from every master, and so is every beat before it:
// a bus that is slow when the subscription starts keeps it off, rather
// than on until the first check.
type heartbeat struct {
	cc      *redis.ClusterClient
	channel string

	mu  sync.Mutex
	seq uint64
	out map[uint64]*beat // sent and not yet back from every master
}

// beat is one heartbeat in flight.
type beat struct {
	sent      int64 // Cache.mono when it was sent
	want, got int   // copies published and come back; want < 0 while being published
}

// newHeartbeat returns the heartbeat of one subscription to channel, on a
// channel of its own, or nil when the client is not a Cluster's: one node,
// or Sentinel's master, is where the scripts publish and where the
// subscription is, so the pings check the whole path.
func newHeartbeat(c redis.UniversalClient, channel string) (*heartbeat, error) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return nil, nil
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return &heartbeat{cc: cc, channel: channel + ":beat:" + hex.EncodeToString(nonce[:]), out: map[uint64]*beat{}}, nil
}

// back counts a copy of a beat that came back, and reports whether that
// beat is now back from every master, and with it every beat sent before.
func (h *heartbeat) back(payload string) bool {
	seq, err := strconv.ParseUint(payload, 10, 64)
	if err != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.out[seq]; b != nil {
		b.got++
		if b.want >= 0 && b.got >= b.want {
			delete(h.out, seq)
			return len(h.out) == 0
		}
	}
	return false
}

// beat fails with errBeatLost when a beat sent more than window before now
// has not come back from every master, and otherwise publishes the next
// one on every master, within ctx. It reports whether the beat it sent,
// and every one before it, was back from every master by the time it was
// published.
func (h *heartbeat) beat(ctx context.Context, now int64, window time.Duration) (bool, error) {
	h.mu.Lock()
	for _, b := range h.out {
		if time.Duration(now-b.sent) > window {
			want, got := b.want, b.got
			h.mu.Unlock()
			return false, fmt.Errorf("%w: %d of %d copies back after %v", errBeatLost, got, want, window)
		}
	}
	h.seq++
	seq := h.seq
	b := &beat{sent: now, want: -1}
	h.out[seq] = b
	h.mu.Unlock()

	payload := strconv.FormatUint(seq, 10)
	var published atomic.Int64
	err := h.cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if err := m.Publish(ctx, h.channel, payload).Err(); err != nil {
			return fmt.Errorf("%s: %w", m.Options().Addr, err)
		}
		published.Add(1)
		return nil
	})
	if err != nil {
		// A master this instance cannot publish on may still run other
		// instances' scripts: their announcements are unaccounted for.
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	if published.Load() == 0 {
		// A slot map with no master (a node that answers CLUSTER SLOTS
		// with none) checks nothing.
		return false, errNoMaster
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b.want = int(published.Load())
	if b.got >= b.want {
		delete(h.out, seq)
		return len(h.out) == 0, nil
	}
	return false, nil
}
