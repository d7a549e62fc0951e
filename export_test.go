package sessionkit

import (
	"time"

	"github.com/sessionkit/sessionkit/internal/backend"
)

// SetActivityQueueLimit lowers how many sessions m's activity writer holds
// (maxActivityQueued), so that a test can fill the queue. Call it before
// m authenticates.
func SetActivityQueueLimit(m *Manager, n int) { m.writer.limit = n }

// ActivityQueued reports how many sessions m's activity writer holds,
// waiting or being sent. A session leaves it once its round is over: the
// write sent and, over a cache, the entry replaced.
func ActivityQueued(m *Manager) int {
	m.writer.mu.Lock()
	defer m.writer.mu.Unlock()
	return len(m.writer.queued)
}

// SetActivityWriteDelay sets how long m's activity writes wait, past the
// longest WithActivityWriteDelay accepts if need be, so that a test can
// hold them all until Close. Call it before m authenticates.
func SetActivityWriteDelay(m *Manager, d time.Duration) { m.writer.delay = d }

// ActivityCall is the call m's activity writer sends a round with now.
func ActivityCall(m *Manager) backend.Call { return m.call() }
