// Package logtest captures log/slog output in tests.
package logtest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Buffer collects log output written from many goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many lines written so far contain sub.
func (b *Buffer) Count(sub string) int {
	n := 0
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// Last returns the last line written so far that contains sub, or "".
func (b *Buffer) Last(sub string) string {
	last := ""
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, sub) {
			last = line
		}
	}
	return last
}

// Logger returns a text logger writing to b at debug level.
func (b *Buffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
