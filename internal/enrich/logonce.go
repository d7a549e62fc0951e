package enrich

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Attribute keys of the log records this package writes. They are part of
// the package's contract with log pipelines, so they do not change.
const (
	logKeyEvent  = "event"      // one of the failure kinds below
	logKeyPath   = "geoip_path" // the database file
	logKeyError  = "error"      // why it failed
	logKeyDBType = "geoip_db_type"
	logKeyBuilt  = "geoip_built_at"
)

// Failure kinds. Each is logged once until it differs or is reset.
const (
	failStat    = "geoip_file_unavailable" // the database file cannot be stat'ed (vanished, permissions)
	failReload  = "geoip_reload_failed"    // the changed file could not be opened as a database
	failLookup  = "geoip_lookup_failed"    // a record could not be decoded
	failTimeout = "geoip_lookup_timeout"   // a lookup took longer than LookupTimeout
	failPanic   = "geoip_lookup_panic"     // a lookup panicked or faulted
	failClose   = "geoip_close_failed"     // unmapping a retired database failed
)

// failureMessages are the log messages, one per kind, stable like the keys.
var failureMessages = map[string]string{
	failStat:    "sessionkit: geoip database file unavailable; keeping the loaded database",
	failReload:  "sessionkit: geoip database reload failed; keeping the loaded database",
	failLookup:  "sessionkit: geoip lookup failed; returning no location",
	failTimeout: "sessionkit: geoip lookup exceeded its time budget; returning no location",
	failPanic:   "sessionkit: geoip lookup panicked; returning no location",
	failClose:   "sessionkit: geoip database close failed",
}

// onceLog logs each kind of failure once: again only after reset (a
// successful reload) or, for kinds logged with changed, when the detail
// changes. A broken database file
// or a burst of failing lookups thus writes one line, not one per request or
// per poll. It never logs client IP addresses. Its memory is bounded by the
// fixed set of kinds.
type onceLog struct {
	logger *atomic.Pointer[slog.Logger] // its owner's, which can change
	path   string

	mu   sync.Mutex
	last map[string]string // kind → detail last logged
}

func newOnceLog(logger *atomic.Pointer[slog.Logger], path string) *onceLog {
	return &onceLog{logger: logger, path: path, last: make(map[string]string)}
}

// changed logs kind at Warn level with detail as the error, unless kind was
// already logged with the same detail. It suits failures found by polling,
// which repeat identically until something changes. It reports whether it
// logged.
func (o *onceLog) changed(kind, detail string) bool {
	return o.log(kind, detail, true)
}

// first logs kind at Warn level with detail as the error only if kind has not
// been logged since the last reset, whatever the detail. It suits failures of
// individual lookups, whose details can differ from one request to the next.
func (o *onceLog) first(kind, detail string) bool {
	return o.log(kind, detail, false)
}

func (o *onceLog) log(kind, detail string, byDetail bool) bool {
	o.mu.Lock()
	prev, seen := o.last[kind]
	if seen && (!byDetail || prev == detail) {
		o.mu.Unlock()
		return false
	}
	o.last[kind] = detail
	o.mu.Unlock()
	o.logger.Load().LogAttrs(context.Background(), slog.LevelWarn, failureMessages[kind],
		slog.String(logKeyEvent, kind),
		slog.String(logKeyPath, o.path),
		slog.String(logKeyError, detail))
	return true
}

// reset forgets the given kinds, or all kinds when none are given, so that
// their next failure is logged again.
func (o *onceLog) reset(kinds ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(kinds) == 0 {
		clear(o.last)
		return
	}
	for _, k := range kinds {
		delete(o.last, k)
	}
}
