package sessionkit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessionkit/sessionkit/internal/backend"
)

// instrumentationName names sessionkit's meter and tracer (the
// instrumentation scope).
const instrumentationName = "github.com/sessionkit/sessionkit"

// WithMeterProvider sets where the Manager's metrics go (see
// docs/operations.md for the instruments). A store.Cache under the
// Manager registers its instruments with it too. Default:
// otel.GetMeterProvider(), the global provider, which records nothing
// until the app sets one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithTracerProvider sets where the Manager's spans go: one per command
// and per read-only query, named sessionkit.<Method> (sessionkit.CreateSession,
// sessionkit.ListUserSessions, ...), and one per store round trip under a
// recording span. Authenticate, the hot path, starts its span only under
// one that is already recording. Default: otel.GetTracerProvider(), the
// global provider, which records nothing until the app sets one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithAuthenticationLatency turns on the histogram of Authenticate's
// duration, sessionkit.authentication.duration. Default: off. Authenticate
// is still counted by outcome and reason (sessionkit.authentications), and
// sign-ins are always timed (sessionkit.login.duration).
//
// It is off by default because on the hot path it is not cheap next to
// what it measures: two clock reads and one histogram recording, about
// 0.2 µs with the OpenTelemetry SDK, on a request that a store.Cache
// answers in about 1 µs; over Redis it is lost in the round trip. Turn it
// on to watch authentication latency by outcome. A view that drops the
// instrument turns the clock reads off again.
func WithAuthenticationLatency(on bool) Option {
	return func(c *config) { c.authLatency = on }
}

// Attribute keys. Every value comes from a small fixed set: never a user
// id, a session id, an address or any other unbounded value.
const (
	attrOutcome   = "sessionkit.outcome"
	attrReason    = "sessionkit.reason"
	attrOperation = "sessionkit.operation"
	attrCountry   = "sessionkit.country_changed"
)

// result is what a command came to, as metrics and spans report it.
type result uint8

const (
	resOK result = iota
	resNotFound
	resRevoked
	resExpired
	resIdle
	resLimit
	resInvalid
	resUnavailable
	resInternal
	numResults
)

// resultAttrs are the attributes of each result: refusals carry why, and
// failures whether the store was unreachable.
var resultAttrs = [numResults][]attribute.KeyValue{
	resOK:          {attribute.String(attrOutcome, "ok")},
	resNotFound:    {attribute.String(attrOutcome, "refused"), attribute.String(attrReason, "not_found")},
	resRevoked:     {attribute.String(attrOutcome, "refused"), attribute.String(attrReason, "revoked")},
	resExpired:     {attribute.String(attrOutcome, "refused"), attribute.String(attrReason, "expired")},
	resIdle:        {attribute.String(attrOutcome, "refused"), attribute.String(attrReason, "idle")},
	resLimit:       {attribute.String(attrOutcome, "refused"), attribute.String(attrReason, "limit_reached")},
	resInvalid:     {attribute.String(attrOutcome, "refused"), attribute.String(attrReason, "invalid")},
	resUnavailable: {attribute.String(attrOutcome, "error"), attribute.String(attrReason, "unavailable")},
	resInternal:    {attribute.String(attrOutcome, "error"), attribute.String(attrReason, "internal")},
}

// classify maps an error to its result without allocating.
func classify(err error) result {
	switch {
	case err == nil:
		return resOK
	case errors.Is(err, ErrNotFound):
		return resNotFound
	case errors.Is(err, ErrRevoked):
		return resRevoked
	case errors.Is(err, ErrExpired):
		return resExpired
	case errors.Is(err, ErrIdle):
		return resIdle
	case errors.Is(err, ErrLimitReached):
		return resLimit
	case errors.Is(err, ErrInvalid):
		return resInvalid
	case errors.Is(err, ErrUnavailable):
		return resUnavailable
	}
	return resInternal
}

// opts are measurement options built once, so that recording allocates
// nothing: a variadic call with a prebuilt slice copies no option.
type opts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newOpts(kv ...attribute.KeyValue) opts {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return opts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

var (
	resultOpts    [numResults]opts
	resultObserve [numResults][]metric.ObserveOption
	refreshOpts   = map[string]opts{}
	// revokeOpts holds sessionkit's own revocation reasons; an app's
	// reasons are free text, counted as "other".
	revokeOpts  = map[string]opts{}
	otherRevoke = newOpts(attribute.String(attrReason, "other"))
	countryOpts = [2]opts{newOpts(attribute.Bool(attrCountry, false)), newOpts(attribute.Bool(attrCountry, true))}
)

// Refresh outcomes.
const (
	refreshRotated  = "rotated"  // the presented token was current
	refreshRepeated = "repeated" // it was just superseded: the current one again
	refreshReused   = "reused"   // superseded too long ago: the session is revoked
	refreshRefused  = "refused"  // unknown, or its session is no longer active
	refreshError    = "error"    // the store failed
)

func init() {
	for r, kv := range resultAttrs {
		resultOpts[r] = newOpts(kv...)
		resultObserve[r] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	for _, o := range []string{refreshRotated, refreshRepeated, refreshReused, refreshRefused, refreshError} {
		refreshOpts[o] = newOpts(attribute.String(attrOutcome, o))
	}
	for _, r := range []string{ReasonLimitExceeded, ReasonLogout, ReasonLogoutAll, ReasonUserRevoked,
		ReasonLogin, ReasonIPChanged, ReasonRefreshReused, ReasonRenewed} {
		revokeOpts[r] = newOpts(attribute.String(attrReason, r))
	}
}

// Latency buckets, in seconds: an authentication from a store.Cache takes
// microseconds, one over the network about a millisecond.
var (
	authBuckets  = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	loginBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
)

// telemetry is a Manager's instruments and tracer.
type telemetry struct {
	tracer trace.Tracer
	// tally counts authentications by result in memory, for an observable
	// counter: the hot path pays an atomic add, not a synchronous
	// instrument. Every Manager on one MeterProvider shares it.
	tally       *tally
	mp          metric.MeterProvider // the tally's
	release     sync.Once
	authTime    metric.Float64Histogram // nil without WithAuthenticationLatency
	logins      metric.Int64Counter
	loginTime   metric.Float64Histogram
	refreshes   metric.Int64Counter
	revocations metric.Int64Counter
	ipChanges   metric.Int64Counter
	storeErrors metric.Int64Counter
}

// tally is what the observable instruments report for every Manager on
// one MeterProvider: the OTel SDK adds up the observations of one
// instrument made by several callbacks, so with a callback per Manager,
// closing one would make the sums fall, which Prometheus reads as a
// counter reset. The counts of a closed Manager stay in, and the callback
// goes once no Manager uses the provider (a Manager made after that
// counts from zero, as after a restart).
type tally struct {
	auths    [numResults]atomic.Int64
	dropped  atomic.Int64 // events not handed to the hooks
	managers int          // guarded by tallies.mu
	reg      metric.Registration
}

// tallies are the tallies in use, by MeterProvider. A provider of a type
// that cannot be a map key (a struct holding a slice, say) gets a tally
// per Manager.
var tallies struct {
	mu sync.Mutex
	m  map[metric.MeterProvider]*tally
}

// acquireTally returns mp's tally, made and its callback registered for the
// first Manager on mp.
func acquireTally(mp metric.MeterProvider, meter metric.Meter, auths, dropped metric.Int64ObservableCounter) (*tally, error) {
	shared := backend.Keyable(mp)
	tallies.mu.Lock()
	defer tallies.mu.Unlock()
	if shared {
		if t := tallies.m[mp]; t != nil {
			t.managers++
			return t, nil
		}
	}
	t := &tally{managers: 1}
	var err error
	t.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for r := range t.auths {
			if n := t.auths[r].Load(); n > 0 {
				o.ObserveInt64(auths, n, resultObserve[r]...)
			}
		}
		o.ObserveInt64(dropped, t.dropped.Load())
		return nil
	}, auths, dropped)
	if err != nil {
		return nil, err
	}
	if shared {
		if tallies.m == nil {
			tallies.m = make(map[metric.MeterProvider]*tally)
		}
		tallies.m[mp] = t
	}
	return t, nil
}

// releaseTally is a closing Manager's release of its tally on mp: the last
// unregisters the callback.
func releaseTally(mp metric.MeterProvider, t *tally) error {
	tallies.mu.Lock()
	defer tallies.mu.Unlock()
	if t.managers--; t.managers > 0 {
		return nil
	}
	if backend.Keyable(mp) && tallies.m[mp] == t {
		delete(tallies.m, mp)
	}
	return t.reg.Unregister()
}

func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, authLatency bool, d *dispatcher) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(instrumentationName)
	t := &telemetry{tracer: tp.Tracer(instrumentationName)}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	auths, err := meter.Int64ObservableCounter("sessionkit.authentications", metric.WithUnit("{authentication}"),
		metric.WithDescription("Authentications, by outcome and reason."))
	errs = append(errs, err)
	if authLatency {
		t.authTime = histogram("sessionkit.authentication.duration", "Duration of Authenticate.", authBuckets)
	}
	t.logins = counter("sessionkit.logins", "{login}", "Sign-ins (CreateSession), by outcome and reason.")
	t.loginTime = histogram("sessionkit.login.duration", "Duration of CreateSession.", loginBuckets)
	t.refreshes = counter("sessionkit.refreshes", "{refresh}", "Refresh token exchanges, by outcome.")
	t.revocations = counter("sessionkit.revocations", "{session}", "Sessions revoked or evicted, by reason.")
	t.ipChanges = counter("sessionkit.ip_changes", "{change}", "Address changes of sessions in use.")
	t.storeErrors = counter("sessionkit.store.errors", "{error}", "Store calls that failed, by operation.")
	dropped, err := meter.Int64ObservableCounter("sessionkit.hooks.dropped", metric.WithUnit("{event}"),
		metric.WithDescription("Events not handed to the hooks because their queue was full."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t.mp = mp
	if t.tally, err = acquireTally(mp, meter, auths, dropped); err != nil {
		return nil, err
	}
	d.total = &t.tally.dropped
	return t, nil
}

// close releases the Manager's share of its tally, once.
func (t *telemetry) close() (err error) {
	t.release.Do(func() { err = releaseTally(t.mp, t.tally) })
	return err
}

// monoBase is where authStart's monotonic readings count from.
var monoBase = time.Now()

// authStart returns the monotonic time an Authenticate call begins, or
// zero when its duration is not recorded. It reads only the monotonic
// clock: time.Now reads the wall clock too, which a duration never needs.
func (t *telemetry) authStart(ctx context.Context) time.Duration {
	if t.authTime == nil || !t.authTime.Enabled(ctx) {
		return 0
	}
	return max(time.Since(monoBase), 1)
}

// authenticated records one Authenticate call that began at start (from
// authStart).
func (t *telemetry) authenticated(ctx context.Context, start time.Duration, err error, span trace.Span) {
	r := classify(err)
	t.tally.auths[r].Add(1)
	if start != 0 {
		t.authTime.Record(ctx, (time.Since(monoBase) - start).Seconds(), resultOpts[r].rec...)
	}
	if span != nil {
		end(span, err)
	}
}

// loggedIn records one CreateSession call that began at start.
func (t *telemetry) loggedIn(ctx context.Context, start time.Time, err error) {
	o := &resultOpts[classify(err)]
	t.logins.Add(ctx, 1, o.add...)
	t.loginTime.Record(ctx, time.Since(start).Seconds(), o.rec...)
}

// refreshed records one RefreshSession call.
func (t *telemetry) refreshed(ctx context.Context, res RefreshSessionResult, reused bool, err error) {
	outcome := refreshRotated
	switch {
	case reused:
		outcome = refreshReused
	case err != nil && classify(err) >= resUnavailable:
		outcome = refreshError
	case err != nil:
		outcome = refreshRefused
	case !res.Rotated:
		outcome = refreshRepeated
	}
	t.refreshes.Add(ctx, 1, refreshOpts[outcome].add...)
}

// stored counts what the events a command stored tell: revocations and
// address changes.
func (t *telemetry) stored(ctx context.Context, events []Event) {
	for i := range events {
		e := &events[i]
		switch e.Type {
		case EventRevoked, EventEvicted:
			o, ok := revokeOpts[e.Reason]
			if !ok {
				o = otherRevoke
			}
			t.revocations.Add(ctx, 1, o.add...)
		case EventIPChanged:
			changed := e.Country != e.PreviousCountry && e.Country != "" && e.PreviousCountry != ""
			t.ipChanges.Add(ctx, 1, countryOpts[b2i(changed)].add...)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// storeFailed counts a store call that failed for want of the store, not
// a refusal.
func (t *telemetry) storeFailed(ctx context.Context, op string, err error) {
	if err == nil || classify(err) < resUnavailable {
		return
	}
	if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
		return // the caller gave up (a client that went away): Redis did not fail
	}
	t.storeErrors.Add(ctx, 1, metric.WithAttributes(attribute.String(attrOperation, op)))
}

// emit counts events and hands them to the hooks.
func (m *Manager) emit(ctx context.Context, events []Event) {
	m.tel.stored(ctx, events)
	m.events.emit(ctx, events)
}
