package enrich

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for GeoIPOptions.
const (
	defaultReloadInterval = 30 * time.Second
	minReloadInterval     = time.Millisecond
	defaultLookupTimeout  = 50 * time.Millisecond
)

// Location is where a GeoIP database places an IP address. Names are in
// English, valid UTF-8 and bounded in length; all fields are empty when the
// address is not public or not in the database.
type Location struct {
	Label       string // "London, England, GB"; "GB"-only DB: "United Kingdom" or country name; empty when unknown
	City        string
	Region      string
	Country     string // English country name
	CountryCode string // ISO 3166-1 alpha-2
}

// GeoIPOptions configures OpenGeoIP. The zero value gives the defaults.
type GeoIPOptions struct {
	// Logger receives the (rare, deduplicated) failure and reload records.
	// Default: slog.Default().
	Logger *slog.Logger
	// ReloadInterval is how often the file is stat'ed for a change of
	// identity, size or modification time. Values under 1ms are raised to
	// 1ms; a negative value turns reloading off. Default: 30s.
	ReloadInterval time.Duration
	// LookupTimeout is the time budget of one lookup; a lookup that takes
	// longer returns an empty Location. It must not be negative.
	// Default: 50ms.
	LookupTimeout time.Duration
}

// GeoIP is a memory-mapped GeoIP2/GeoLite2 City or Country database that
// reloads itself when the file changes on disk.
//
// Lookups never block on a reload: the new database is published with one
// atomic pointer swap, and the old one is unmapped only after the last
// lookup still reading it has finished (reference counting, so no grace
// period has to be guessed). A changed file that cannot be opened, or a
// vanished file, leaves the loaded database in place and is logged once.
//
// A nil *GeoIP is valid: it finds nothing, so an app without a database can
// pass one around. GeoIP is safe for concurrent use.
type GeoIP struct {
	path    string
	logger  atomic.Pointer[slog.Logger] // see SetLogger
	fails   *onceLog
	timeout time.Duration

	cur atomic.Pointer[database]

	// failedFile is the file whose opening last failed for a reason that only
	// a new file can fix; it is not retried. Used by the watcher only.
	failedFile os.FileInfo

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	now    func() time.Time // the clock; tests replace it
	checks atomic.Uint64    // completed file checks, for tests
}

// SetLogger sends the database's records to l from now on; nil is ignored.
func (g *GeoIP) SetLogger(l *slog.Logger) {
	if g != nil && l != nil {
		g.logger.Store(l)
	}
}

// OpenGeoIP opens the database at path and, unless opts.ReloadInterval is
// negative, starts a goroutine that reloads it when the file changes; Close
// stops it. It fails if the file is missing, is not a City or Country
// database, or is corrupt.
func OpenGeoIP(path string, opts GeoIPOptions) (*GeoIP, error) {
	if path == "" {
		return nil, errors.New("sessionkit: open geoip database: empty path")
	}
	if opts.LookupTimeout < 0 {
		return nil, fmt.Errorf("sessionkit: open geoip database: negative LookupTimeout %v", opts.LookupTimeout)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LookupTimeout == 0 {
		opts.LookupTimeout = defaultLookupTimeout
	}
	switch {
	case opts.ReloadInterval == 0:
		opts.ReloadInterval = defaultReloadInterval
	case opts.ReloadInterval > 0 && opts.ReloadInterval < minReloadInterval:
		opts.ReloadInterval = minReloadInterval
	}

	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sessionkit: open geoip database: %w", err)
	}
	g := &GeoIP{
		path:    path,
		timeout: opts.LookupTimeout,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		now:     time.Now,
	}
	g.logger.Store(opts.Logger)
	g.fails = newOnceLog(&g.logger, path)
	g.logger.Store(opts.Logger)
	g.fails = newOnceLog(&g.logger, path)
	db, err := g.open(fi)
	if err != nil {
		return nil, fmt.Errorf("sessionkit: open geoip database %q: %w", path, err)
	}
	g.cur.Store(db)
	if opts.ReloadInterval > 0 {
		go g.watch(opts.ReloadInterval)
	} else {
		close(g.done)
	}
	return g, nil
}

func (g *GeoIP) open(fi os.FileInfo) (*database, error) {
	db, err := openDatabase(g.path, fi)
	if err != nil {
		return nil, err
	}
	db.onClose = func(err error) { g.fails.changed(failClose, err.Error()) }
	return db, nil
}

// Lookup returns where ip is. It never fails: an invalid, unspecified,
// loopback, private, link-local or multicast address, an address not in the
// database, a closed or nil GeoIP, a done ctx, a damaged record and a lookup
// slower than LookupTimeout all give an empty Location. IPv4-mapped IPv6
// addresses are looked up as IPv4, and zones are ignored.
//
// The time budget is checked around a direct call rather than by running the
// lookup in another goroutine: the lookup is a few hundred nanoseconds of CPU
// work on mapped memory that cannot be interrupted halfway, so a goroutine
// and a timer would cost more than the lookup itself, on every call, while
// the abandoned work would keep running and keep the database referenced
// anyway (BenchmarkLookupStrategies measures both). What can make a lookup
// slow is a page fault on a cold map, which blocks the thread either way. So
// Lookup does nothing when ctx is already done, and discards (and logs once)
// a result that arrives after LookupTimeout or after ctx ended, so that
// callers see the same empty Location as a timeout would give them.
func (g *GeoIP) Lookup(ctx context.Context, ip netip.Addr) (loc Location) {
	if g == nil {
		return Location{}
	}
	if ctx == nil { // a nil ctx is a caller bug, but Lookup must not panic
		ctx = context.Background()
	}
	ip = ip.Unmap().WithZone("")
	if !isPublic(ip) || ctx.Err() != nil {
		return Location{}
	}
	db := g.acquire()
	if db == nil {
		return Location{}
	}
	start := g.now()
	// A file truncated or rewritten in place faults when the map is read;
	// make that a panic to recover from rather than a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			loc = Location{}
			g.fails.first(failPanic, fmt.Sprint(r))
		}
		_ = db.release() // a close error is logged by onClose
	}()
	loc, err := db.lookup(ip)
	if err != nil {
		g.fails.first(failLookup, err.Error())
		return Location{}
	}
	if elapsed := g.now().Sub(start); elapsed > g.timeout || ctx.Err() != nil {
		g.fails.first(failTimeout, fmt.Sprintf("lookup took %v, budget %v", elapsed, g.timeout))
		return Location{}
	}
	return loc
}

// isPublic reports whether ip may have a location: not invalid, unspecified,
// loopback, multicast, link-local, broadcast or private (RFC 1918, RFC 4193).
func isPublic(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}

// acquire returns the current database with a reference taken, or nil after
// Close. If a reload retires the database between loading the pointer and
// taking the reference, the pointer has already moved on: load it again.
func (g *GeoIP) acquire() *database {
	for {
		db := g.cur.Load()
		if db == nil || db.acquire() {
			return db
		}
	}
}

// Close stops reloading and releases the database once the lookups in flight
// are done; later lookups return an empty Location. It is safe to call more
// than once and on a nil GeoIP.
func (g *GeoIP) Close() error {
	if g == nil {
		return nil
	}
	g.closeOnce.Do(func() {
		select {
		case <-g.done: // reloading was off
		default:
			close(g.stop)
			<-g.done
		}
		if db := g.cur.Swap(nil); db != nil {
			g.closeErr = db.release()
		}
	})
	return g.closeErr
}

// watch polls the file until Close.
func (g *GeoIP) watch(interval time.Duration) {
	defer close(g.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.check()
			g.checks.Add(1)
		}
	}
}

// check reloads the file if it is not the one loaded, keeping the loaded
// database when the file is gone or broken.
func (g *GeoIP) check() {
	fi, err := os.Stat(g.path)
	if err != nil {
		g.fails.changed(failStat, err.Error())
		return
	}
	g.fails.reset(failStat)
	cur := g.cur.Load() // only this goroutine stores until Close, which waits for it
	if cur == nil || sameFile(cur.file, fi) || sameFile(g.failedFile, fi) {
		return
	}
	db, err := g.open(fi)
	if err != nil {
		if !isTransient(err) {
			g.failedFile = fi
		}
		g.fails.changed(failReload, err.Error())
		return
	}
	g.failedFile = nil
	old := g.cur.Swap(db)
	_ = old.release() // unmapped after its last lookup; errors are logged by onClose
	g.fails.reset()
	g.logger.Load().LogAttrs(context.Background(), slog.LevelInfo, "sessionkit: geoip database reloaded",
		slog.String(logKeyPath, g.path),
		slog.String(logKeyDBType, db.dbType),
		slog.Time(logKeyBuilt, db.built))
}

// sameFile reports whether b is the file a was: same identity (device and
// inode, so a rename over it counts as a change), size and modification time.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) &&
		a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// isTransient reports whether opening may succeed on the same file later
// (too many open files, a permission being fixed), as opposed to a file
// whose content is wrong.
func isTransient(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}
