package sessionkit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures a Manager.
type Option func(*config)

type config struct {
	lifetime       time.Duration
	maxLifetime    time.Duration
	idleTimeout    time.Duration
	throttle       time.Duration
	writeDelay     time.Duration
	retention      time.Duration
	limit          LimitFunc
	limitTTL       time.Duration
	enricher       Enricher
	enrichTimeout  time.Duration
	hooks          []Hook
	hookQueue      int
	logger         *slog.Logger
	now            func() time.Time
	streamMax      int
	maxProviders   int
	activityEvents bool
	seenWindow     time.Duration
	accessTokens   *AccessTokenOptions
	limitPolicy    func(ctx context.Context, userID uuid.UUID) (LimitPolicy, error)
	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
	authLatency    bool
}

func defaults() config {
	return config{
		lifetime:      30 * 24 * time.Hour,
		maxLifetime:   400 * 24 * time.Hour,
		throttle:      time.Minute,
		writeDelay:    DefaultActivityWriteDelay,
		retention:     7 * 24 * time.Hour,
		limit:         FixedLimit(DefaultLimit),
		limitTTL:      365 * 24 * time.Hour,
		enrichTimeout: 100 * time.Millisecond,
		hookQueue:     1024,
		now:           time.Now,
		streamMax:     1000,
		maxProviders:  16,
		seenWindow:    90 * 24 * time.Hour,
	}
}

// DefaultLimit is the number of concurrent sessions a user may hold when no
// WithLimit option is given.
const DefaultLimit = 10

// WithLifetime sets the absolute lifetime of a session created without an
// explicit ExpiresAt. Default: 30 days.
func WithLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithMaxLifetime bounds an explicit CreateSession.ExpiresAt. Default: 400 days
// (the longest a browser keeps a cookie).
func WithMaxLifetime(d time.Duration) Option { return func(c *config) { c.maxLifetime = d } }

// WithIdleTimeout ends a session that has seen no activity for d. Zero turns
// the idle timeout off. Default: off.
func WithIdleTimeout(d time.Duration) Option { return func(c *config) { c.idleTimeout = d } }

// WithActivityThrottle sets how stale the stored last activity must be
// before UpdateSessionActivity writes again (an address change always
// writes). Zero writes on every call. Default: 60 seconds.
func WithActivityThrottle(d time.Duration) Option { return func(c *config) { c.throttle = d } }

// WithAuditRetention sets how long revoked and expired sessions stay
// listable, and how long the audit trail outlives the last session. Zero
// keeps neither: a session revoked or expired, and with the last one the
// user's trail, is gone at once. Default: 7 days.
func WithAuditRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// WithLimit sets the function giving each user's session limit (Unlimited
// allowed). A per-user override stored with Manager.SetUserLimit wins over
// it. Default: FixedLimit(DefaultLimit).
func WithLimit(f LimitFunc) Option { return func(c *config) { c.limit = f } }

// WithLimitOverrideTTL sets how long a per-user limit override lasts; every
// login of the user extends it. Default: 365 days.
func WithLimitOverrideTTL(d time.Duration) Option { return func(c *config) { c.limitTTL = d } }

// WithEnricher replaces the device and location enrichment. Default: a
// User-Agent parser with no GeoIP database (no location); see NewEnricher.
func WithEnricher(e Enricher) Option { return func(c *config) { c.enricher = e } }

// WithEnrichTimeout bounds enrichment at login and on an address change;
// past it the fields stay empty. Default: 100 ms.
func WithEnrichTimeout(d time.Duration) Option { return func(c *config) { c.enrichTimeout = d } }

// WithHook registers a function that receives every stored event. Default: none.
func WithHook(h Hook) Option { return func(c *config) { c.hooks = append(c.hooks, h) } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the source of the current time, for tests. Default: time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithEventStreamLength caps each user's audit trail. Default: 1000 events.
func WithEventStreamLength(n int) Option { return func(c *config) { c.streamMax = n } }

// WithMaxProviders bounds the providers remembered per session; the least
// recently used is dropped first. Default: 16.
func WithMaxProviders(n int) Option { return func(c *config) { c.maxProviders = n } }

// WithActivityEvents also records an "activity" event on each stored
// activity update. Default: off.
func WithActivityEvents(on bool) Option { return func(c *config) { c.activityEvents = on } }

// WithActivityWriteDelay sets how long the activity writes Authenticate
// finds due wait, off the request path, to be sent to Redis together
// (within the delay and a round trip): the request goes on at once, with
// Written false and the session as read, as when the throttle holds. An
// address change, a session near its idle deadline and, with
// WithActivityEvents, every write are still written on the request path;
// Close sends what waits. Zero writes every one on the request path, as
// UpdateSessionActivity always does. At most one second. Default:
// DefaultActivityWriteDelay (25 ms).
func WithActivityWriteDelay(d time.Duration) Option { return func(c *config) { c.writeDelay = d } }

// WithNewSignInWindow sets how long a device label or country stays known
// for the new-device and new-country signals. Zero turns the signals off.
// Default: 90 days.
func WithNewSignInWindow(d time.Duration) Option { return func(c *config) { c.seenWindow = d } }

func (c *config) validate() error {
	switch {
	case c.lifetime < time.Second:
		return invalid("Lifetime", "must be at least one second")
	case c.maxLifetime < c.lifetime:
		return invalid("Lifetime", fmt.Sprintf("%v is longer than MaxLifetime, %v (WithMaxLifetime raises it; default 400 days)", c.lifetime, c.maxLifetime))
	case c.idleTimeout < 0:
		return invalid("IdleTimeout", "must not be negative")
	case c.idleTimeout > 0 && c.idleTimeout < time.Second:
		return invalid("IdleTimeout", "must be zero or at least one second")
	case c.throttle < 0:
		return invalid("ActivityThrottle", "must not be negative")
	case c.idleTimeout > 0 && c.throttle >= c.idleTimeout:
		return invalid("IdleTimeout", fmt.Sprintf("%v must be longer than the activity throttle, %v (WithActivityThrottle lowers it; default one minute)", c.idleTimeout, c.throttle))
	case c.writeDelay < 0 || c.writeDelay > time.Second:
		return invalid("ActivityWriteDelay", "must be within 0..1s")
	case c.retention < 0:
		return invalid("AuditRetention", "must not be negative")
	case c.limit == nil:
		return invalid("Limit", "must not be nil")
	case c.limitTTL < time.Minute:
		return invalid("LimitOverrideTTL", "must be at least a minute")
	case c.enrichTimeout <= 0:
		return invalid("EnrichTimeout", "must be positive")
	case c.now == nil:
		return invalid("Clock", "must not be nil")
	case c.streamMax < 1:
		return invalid("EventStreamLength", "must be positive")
	case c.maxProviders < 1 || c.maxProviders > 256:
		return invalid("MaxProviders", "must be within 1..256")
	case c.seenWindow < 0:
		return invalid("NewSignInWindow", "must not be negative")
	}
	for i, h := range c.hooks {
		if h == nil {
			return invalid(fmt.Sprintf("Hook[%d]", i), "must not be nil")
		}
	}
	return nil
}

// LimitPolicy is what a sign-in does when the user already holds their
// limit of sessions.
type LimitPolicy int

// Limit policies.
const (
	// EvictOldest signs out the session that expires first, so the newest
	// sign-in always succeeds. Anyone with the password can then sign the
	// real user out.
	EvictOldest LimitPolicy = iota
	// RejectNew refuses the sign-in (a *LimitError; 409
	// session_limit_reached over HTTP) and writes nothing: the user's
	// devices are never signed out by someone else's sign-in.
	RejectNew
)

// WithLimitPolicy sets the function giving each user's LimitPolicy, per
// tier or per user. An error fails the login. Default: EvictOldest for
// every user.
func WithLimitPolicy(f func(ctx context.Context, userID uuid.UUID) (LimitPolicy, error)) Option {
	return func(c *config) { c.limitPolicy = f }
}

// Unlimited is the limit of a user with no cap on concurrent sessions.
const Unlimited = -1

// LimitFunc returns how many concurrent sessions userID may hold: a
// positive number or Unlimited. An error fails the login.
type LimitFunc func(ctx context.Context, userID uuid.UUID) (int, error)

// FixedLimit gives every user the same limit: n positive, or Unlimited.
// Any other n panics, where the app is configured, rather than fail every
// login with ErrInvalid (as time.NewTicker panics on a non-positive
// interval).
func FixedLimit(n int) LimitFunc {
	if n < 1 && n != Unlimited {
		panic(fmt.Sprintf("sessionkit: FixedLimit(%d): a limit is positive or Unlimited", n))
	}
	return func(context.Context, uuid.UUID) (int, error) { return n, nil }
}

// Tiers maps a plan or tier name to its session limit; Unlimited is allowed.
// The entry for "" is the limit of a user whose tier is not in the table.
type Tiers map[string]int

// Limit returns a LimitFunc that looks up each user's tier with tierOf.
func (t Tiers) Limit(tierOf func(ctx context.Context, userID uuid.UUID) (string, error)) LimitFunc {
	return func(ctx context.Context, userID uuid.UUID) (int, error) {
		tier, err := tierOf(ctx, userID)
		if err != nil {
			return 0, err
		}
		if n, ok := t[tier]; ok {
			return n, nil
		}
		if n, ok := t[""]; ok {
			return n, nil
		}
		return 0, fmt.Errorf("%w: tier %q has no limit", ErrInvalid, tier)
	}
}

func validLimit(n int) bool { return n == Unlimited || n >= 1 }
