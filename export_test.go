package sessionkit

// SetActivityQueueLimit lowers how many sessions m's activity writer holds
// (maxActivityQueued), so that a test can fill the queue. Call it before
// m authenticates.
func SetActivityQueueLimit(m *Manager, n int) { m.writer.limit = n }
