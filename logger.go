package sessionkit

import "log/slog"

// Logger returns the logger the Manager and everything built on it logs to (WithLogger; default slog.Default()).
func (m *Manager) Logger() *slog.Logger { return m.log }
