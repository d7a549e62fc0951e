package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/clientip"
	"github.com/sessionkit/sessionkit/internal/enrich"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/token"
)

// Manager executes the session commands and queries against a Store. It is
// safe for concurrent use. Close it to flush pending hook calls.
type Manager struct {
	store    Store // the app's store, wrapped in a tracedStore
	bare     Store // the app's store: Authenticate's read when nothing traces it
	cfg      config
	log      *slog.Logger
	enricher Enricher
	locates  bool
	events   *dispatcher
	tokens   *accessTokens  // nil without WithAccessTokens
	policy   backend.Policy // what the store applies; see call
	tel      *telemetry
	writer   *activityWriter // nil: activity is written on the request path

	enrichFailures sync.Map      // reason → struct{}
	enrichSlots    chan struct{} // enrichment goroutines running, abandoned ones included
}

// New returns a Manager over store, configured by opts.
func New(store Store, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, invalid("Store", "must not be nil")
	}
	cfg := defaults()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Manager{store: store, cfg: cfg, log: cfg.logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.enricher = cfg.enricher
	if m.enricher == nil {
		m.enricher = uaOnly{}
	}
	m.locates = m.enricher.Locates()
	m.policy = backend.Policy{
		Retention: cfg.retention, Throttle: cfg.throttle, SeenWindow: cfg.seenWindow, LimitTTL: cfg.limitTTL,
		StreamMax: cfg.streamMax, MaxProviders: cfg.maxProviders, ActivityEvents: cfg.activityEvents,
	}
	if cfg.accessTokens != nil {
		var err error
		if m.tokens, m.policy.RefreshGrace, err = newAccessTokens(cfg.accessTokens); err != nil {
			return nil, err
		}
	}
	// Started only once nothing before the Manager is returned can fail:
	// a caller given an error has no Manager to Close.
	m.events = newDispatcher(cfg.hooks, cfg.hookQueue, m.log)
	m.enrichSlots = make(chan struct{}, maxEnrichInFlight)
	mp := cfg.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	var err error
	if m.tel, err = newTelemetry(mp, cfg.tracerProvider, cfg.authLatency, m.events); err != nil {
		_ = m.events.close(context.Background())
		return nil, fmt.Errorf("sessionkit: metrics: %w", err)
	}
	store.Attach(backend.Env{Logger: m.log, MeterProvider: mp})
	m.bare = store
	m.store = &tracedStore{Store: store, tel: m.tel}
	if cfg.writeDelay > 0 && !cfg.activityEvents {
		m.writer = newActivityWriter(m, cfg.writeDelay)
	}
	if d, ok := m.enricher.(*DefaultEnricher); ok {
		d.attach(m.log)
	}
	return m, nil
}

// call is what every store command carries: now and the policy.
func (m *Manager) call() backend.Call { return backend.Call{Now: m.now(), Policy: &m.policy} }

// Close sends the activity writes that wait (see WithActivityWriteDelay)
// and waits, up to ctx's deadline, for them and for queued events to reach
// the hooks. Activity found due after Close is written on the request path.
func (m *Manager) Close(ctx context.Context) error {
	err := m.writer.close(ctx)
	if eerr := m.events.close(ctx); err == nil {
		err = eerr
	}
	if uerr := m.tel.close(); err == nil && uerr != nil {
		err = fmt.Errorf("sessionkit: close: %w", uerr)
	}
	return err
}

// Now returns the Manager's current time, at the millisecond precision sessions are stored with.
func (m *Manager) Now() time.Time { return m.now() }

func (m *Manager) now() time.Time { return time.UnixMilli(m.cfg.now().UnixMilli()).UTC() }

// CreateSession signs cmd.UserID in on a new device: it enriches the
// session, enforces the user's limit by evicting the sessions that would
// expire first, stores it, and returns it with its token, once.
func (m *Manager) CreateSession(ctx context.Context, cmd CreateSession) (_ CreateSessionResult, err error) {
	start := time.Now()
	ctx, span := m.tel.start(ctx, "sessionkit.CreateSession")
	defer func() { m.tel.loggedIn(ctx, start, err); end(span, err) }()
	return m.createSession(ctx, cmd)
}

func (m *Manager) createSession(ctx context.Context, cmd CreateSession) (CreateSessionResult, error) {
	now := m.now()
	if err := checkUser("UserID", cmd.UserID); err != nil {
		return CreateSessionResult{}, err
	}
	ip, err := parseIP("IPAddress", cmd.IPAddress, false)
	if err != nil {
		return CreateSessionResult{}, err
	}
	expires := time.UnixMilli(cmd.ExpiresAt.UnixMilli()).UTC()
	if cmd.ExpiresAt.IsZero() {
		expires = now.Add(m.cfg.lifetime)
	}
	switch {
	case !expires.After(now):
		return CreateSessionResult{}, invalid("ExpiresAt", "is not in the future")
	case expires.Sub(now) > m.cfg.maxLifetime:
		return CreateSessionResult{}, invalid("ExpiresAt", "is beyond the maximum lifetime")
	}
	if cmd.RefreshTokenID != "" {
		if err := checkText("RefreshTokenID", cmd.RefreshTokenID, maxRefreshLen); err != nil {
			return CreateSessionResult{}, err
		}
	}
	if cmd.Bearer && m.tokens == nil {
		return CreateSessionResult{}, invalid("Bearer", "needs access tokens: WithAccessTokens")
	}
	idle, err := m.idleTimeout(cmd.IdleTimeout)
	if err != nil {
		return CreateSessionResult{}, err
	}
	if cmd.ImpersonatedBy != "" {
		if err := checkText("ImpersonatedBy", cmd.ImpersonatedBy, maxActorLen); err != nil {
			return CreateSessionResult{}, err
		}
	}
	limit, err := m.cfg.limit(ctx, cmd.UserID)
	if err != nil {
		return CreateSessionResult{}, fmt.Errorf("sessionkit: session limit of user: %w", err)
	}
	if !validLimit(limit) {
		return CreateSessionResult{}, invalid("Limit", fmt.Sprintf("%d is neither positive nor Unlimited", limit))
	}
	policy := EvictOldest
	if m.cfg.limitPolicy != nil {
		if policy, err = m.cfg.limitPolicy(ctx, cmd.UserID); err != nil {
			return CreateSessionResult{}, fmt.Errorf("sessionkit: session limit policy of user: %w", err)
		}
		if policy != EvictOldest && policy != RejectNew {
			return CreateSessionResult{}, invalid("LimitPolicy", fmt.Sprintf("unknown policy %d", policy))
		}
	}
	ua := enrich.SanitizeUserAgent(cmd.UserAgent) // 512 bytes of valid UTF-8 at most, no control characters
	device, loc := m.enrich(ctx, ua, ip)

	for attempt := 0; ; attempt++ {
		id, err := sessionid.New(cmd.UserID)
		if err != nil {
			return CreateSessionResult{}, fmt.Errorf("sessionkit: session id: %w", err)
		}
		tok, hash, err := token.New(id)
		if err != nil {
			return CreateSessionResult{}, fmt.Errorf("sessionkit: token: %w", err)
		}
		s := Session{
			ID: id, UserID: cmd.UserID, Device: device, UserAgent: ua,
			IPAddress: ip, LastIPAddress: ip, Location: loc,
			CreatedAt: now, LastActivityAt: now, ExpiresAt: expires,
			IdleTimeout: idle, RefreshTokenID: cmd.RefreshTokenID, Bearer: cmd.Bearer,
			AuthenticatedAt: now, AAL: AAL1, ImpersonatedBy: cmd.ImpersonatedBy,
		}
		cred := backend.Credentials{TokenHash: hash}
		var refresh token.Refresh
		if cmd.Bearer {
			// The session token stays unused: a bearer client holds an
			// access token and a refresh token instead.
			if refresh, err = newRefresh(id, &cred); err != nil {
				return CreateSessionResult{}, err
			}
		}
		out, events, err := m.store.Create(ctx, backend.Call{Now: now, Policy: &m.policy}, s, cred,
			backend.Limit{Max: limit, Reject: policy == RejectNew})
		if errors.Is(err, backend.ErrDuplicateID) && attempt < 3 {
			continue // 62 random bits collided with a live session of this user
		}
		if err != nil {
			return CreateSessionResult{}, err
		}
		m.emit(ctx, events)
		res := CreateSessionResult{
			Session: s, Token: tok, Evicted: out.Evicted,
			NewDevice: out.NewDevice, NewCountry: out.NewCountry,
		}
		if cmd.Bearer {
			res.Token = ""
			if res.Tokens, err = m.issue(s, refresh, now); err != nil {
				return CreateSessionResult{}, err
			}
		}
		return res, nil
	}
}

// RevokeSession soft-revokes one of the user's sessions. Unknown, foreign
// and already revoked or expired sessions all give ErrNotFound.
func (m *Manager) RevokeSession(ctx context.Context, cmd RevokeSession) (_ RevokeSessionResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.RevokeSession")
	defer func() { end(span, err) }()
	if err := checkSessionID(cmd.SessionID); err != nil {
		return RevokeSessionResult{}, err
	}
	if err := checkUser("UserID", cmd.UserID); err != nil {
		return RevokeSessionResult{}, err
	}
	if err := checkText("Reason", cmd.Reason, maxReasonLen); err != nil {
		return RevokeSessionResult{}, err
	}
	if err := checkActor(cmd.Actor); err != nil {
		return RevokeSessionResult{}, err
	}
	c := m.call()
	events, err := m.store.Revoke(ctx, c, cmd.SessionID, cmd.UserID, cmd.Reason, cmd.Actor)
	if err != nil {
		return RevokeSessionResult{}, err
	}
	m.emit(ctx, events)
	return RevokeSessionResult{RevokedAt: c.Now}, nil
}

// RevokeAllUserSessions soft-revokes every active session of the user but
// cmd.ExceptSessionID, atomically, and returns how many it revoked.
func (m *Manager) RevokeAllUserSessions(ctx context.Context, cmd RevokeAllUserSessions) (_ RevokeAllUserSessionsResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.RevokeAllUserSessions")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", cmd.UserID); err != nil {
		return RevokeAllUserSessionsResult{}, err
	}
	if err := checkText("Reason", cmd.Reason, maxReasonLen); err != nil {
		return RevokeAllUserSessionsResult{}, err
	}
	if err := checkActor(cmd.Actor); err != nil {
		return RevokeAllUserSessionsResult{}, err
	}
	if cmd.ExceptSessionID != uuid.Nil {
		if err := checkSessionID(cmd.ExceptSessionID); err != nil {
			return RevokeAllUserSessionsResult{}, err
		}
	}
	events, err := m.store.RevokeAll(ctx, m.call(), cmd.UserID, cmd.ExceptSessionID, cmd.Reason, cmd.Actor)
	if err != nil {
		return RevokeAllUserSessionsResult{}, err
	}
	m.emit(ctx, events)
	res := RevokeAllUserSessionsResult{Revoked: len(events)}
	for _, e := range events {
		res.SessionIDs = append(res.SessionIDs, e.SessionID)
	}
	return res, nil
}

// UpdateSessionActivity records use of an active session. It writes only
// when the stored activity is older than the throttle or the address
// changed; an address change is counted and recorded as an event, and never
// revokes the session by itself.
func (m *Manager) UpdateSessionActivity(ctx context.Context, cmd UpdateSessionActivity) (_ UpdateSessionActivityResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.UpdateSessionActivity")
	defer func() { end(span, err) }()
	if err := checkSessionID(cmd.SessionID); err != nil {
		return UpdateSessionActivityResult{}, err
	}
	ip, err := parseIP("IPAddress", cmd.IPAddress, true)
	if err != nil {
		return UpdateSessionActivityResult{}, err
	}
	return m.touch(ctx, cmd.SessionID, nil, ip, nil)
}

// Authenticate is the middleware's hot path: it checks the token (a
// session token, or with WithAccessTokens a bearer session's access token,
// verified locally first), finds the session active, and records activity
// from ip (in canonical form: an IPv4-mapped address is its IPv4 address,
// and a zone is dropped). A request within the
// activity throttle from the known address costs one read-only round trip
// (an HGET of the session, or none when a store.Cache holds it). The
// request that finds the throttle elapsed costs no more: its activity
// write is queued and sent with others, off the request path, within
// WithActivityWriteDelay and a round trip (the result says Written false
// and carries the session as read). A request makes a second round trip,
// the activity script, which checks everything again atomically before it
// writes, only on an address change, or when the throttle has elapsed and
// the session is within 10 seconds of its idle deadline, WithActivityEvents
// is on, WithActivityWriteDelay is zero, the queue is full (16,384
// sessions) or the Manager is closed. Any malformed token is ErrNotFound
// without a store call.
// An address change is recorded and reported (IPChanged); to decide
// whether it ends the session, use AuthenticateWith.
func (m *Manager) Authenticate(ctx context.Context, tok string, ip netip.Addr) (UpdateSessionActivityResult, error) {
	return m.AuthenticateWith(ctx, tok, ip, nil)
}

// AuthenticateWith is Authenticate that lets the caller decide, before an
// address change is recorded, whether it ends the session. onIPChange gets
// the change as it would be recorded (the session with the new address,
// and its location with GeoIP; PreviousIP, PreviousCountry and
// CountryChanged) and returns true to revoke the session: the result is
// then a *RevokedError with ReasonIPChanged. The change is recorded, and
// the session revoked, in one step after it returns, so that a failure
// does neither (the next request from the address is decided again), and
// a request racing this one from the same address is decided too rather
// than served as if the address were known. The change recorded is the
// one decided: when another request moves the session's address between
// the decision and the write, the change from the new address is decided
// afresh (three times at most; then the result is an error wrapping
// ErrUnavailable). onIPChange runs on the request path and must be quick.
// An address change costs a round trip more than with Authenticate, except
// with GeoIP, which needs it to locate the address. The middleware calls it
// for IPRevoke and IPDecision; with onIPChange nil it is Authenticate.
func (m *Manager) AuthenticateWith(ctx context.Context, tok string, ip netip.Addr, onIPChange func(UpdateSessionActivityResult) (revoke bool)) (UpdateSessionActivityResult, error) {
	start := m.tel.authStart(ctx)
	// The hot path starts a span only under a recording one: a span with
	// no parent would cost allocations on every request, traced or not.
	var span trace.Span
	traced := trace.SpanFromContext(ctx).IsRecording()
	if traced {
		ctx, span = m.tel.tracer.Start(ctx, "sessionkit.Authenticate")
	}
	// As CreateSession stores it: an IPv4 client of a dual-stack listener
	// is ::ffff:a.b.c.d to net.Conn, and is the same client.
	ip = clientip.Canonical(ip)
	res, err := m.authenticate(ctx, tok, ip, onIPChange, traced)
	m.tel.authenticated(ctx, start, err, span)
	return res, err
}

// authenticate is AuthenticateWith; traced reports whether ctx's span records.
func (m *Manager) authenticate(ctx context.Context, tok string, ip netip.Addr, onIPChange func(UpdateSessionActivityResult) bool, traced bool) (UpdateSessionActivityResult, error) {
	id, hash, err := token.Parse(tok)
	var claims *accessClaims
	if err != nil {
		if m.tokens == nil || !looksLikeJWT(tok) {
			return UpdateSessionActivityResult{}, ErrNotFound
		}
		// An access token: its signature, issuer and expiry are checked
		// here, without a store call; the session's standing below.
		c, err := m.verifyAccessToken(tok)
		if err != nil {
			return UpdateSessionActivityResult{}, err
		}
		claims, id = &c, c.sessionID
	}
	if !sessionid.Valid(id) {
		return UpdateSessionActivityResult{}, ErrNotFound
	}
	var res UpdateSessionActivityResult
	s := &res.Session // filled in place: a Session is large
	var pk backend.Peeked
	if traced {
		*s, pk, err = m.store.Peek(ctx, id)
	} else {
		// What tracedStore.Peek would do without a span, minus its own
		// context lookup and a copy of the session.
		*s, pk, err = m.bare.Peek(ctx, id)
		m.tel.storeFailed(ctx, "peek", err)
	}
	if err != nil {
		return UpdateSessionActivityResult{}, err
	}
	if claims != nil {
		if !s.Bearer || claims.userID != s.UserID {
			return UpdateSessionActivityResult{}, ErrNotFound
		}
		// A token minted before RenewSession or Reauthenticate names the
		// family they replaced.
		if !pk.Refresh.TagMatches(claims.family) {
			if *s, pk, err = m.peekFresh(ctx, id, pk); err != nil {
				return UpdateSessionActivityResult{}, err
			}
			if !s.Bearer || claims.userID != s.UserID || !pk.Refresh.TagMatches(claims.family) {
				return UpdateSessionActivityResult{}, ErrNotFound
			}
		}
		claims.apply(s)
	} else if !pk.TokenMatches((*[32]byte)(&hash)) || s.Bearer {
		// A bearer session has a session token of its own, which no one
		// ever holds: it is refused like any wrong secret.
		if s.Bearer {
			return UpdateSessionActivityResult{}, ErrNotFound
		}
		if *s, pk, err = m.peekFresh(ctx, id, pk); err != nil {
			return UpdateSessionActivityResult{}, err
		}
		if !pk.TokenMatches((*[32]byte)(&hash)) || s.Bearer {
			return UpdateSessionActivityResult{}, ErrNotFound
		}
	}
	now := m.now()
	if !pk.Indexed && s.RevokedAt.IsZero() && s.StateAt(now) == StateActive {
		// Not in the index and no record of why: the index was lost. Fail closed.
		return UpdateSessionActivityResult{}, &RevokedError{}
	}
	if err := s.Err(now); err != nil {
		return UpdateSessionActivityResult{}, err
	}
	changed := ip.IsValid() && ip != s.LastIPAddress
	if !changed && (now.Sub(s.LastActivityAt) < m.cfg.throttle || m.writer.take(s, now)) {
		// Throttled, or the write is queued: nothing waits on it, and the
		// session is as read, so the context can hold the store's entry.
		if claims == nil {
			// An access token's older authentication (claims.apply) is
			// not in the store's copy.
			res.entry, _ = pk.Entry.(sessionEntry)
		}
		res.seal(m)
		return res, nil
	}
	// The write is due: the script checks everything again, atomically.
	res, err = m.touch(ctx, id, nil, ip, onIPChange)
	if err == nil {
		if claims != nil {
			claims.apply(&res.Session)
		}
		res.seal(m)
	}
	return res, err
}

// idleTimeout is the idle timeout of a session created with
// CreateSession.IdleTimeout d.
func (m *Manager) idleTimeout(d time.Duration) (time.Duration, error) {
	// In whole milliseconds, as the store keeps it: the session returned is
	// the session stored.
	switch {
	case d == 0:
		return m.cfg.idleTimeout.Truncate(time.Millisecond), nil
	case d == NoIdleTimeout:
		return 0, nil
	case d < time.Second:
		return 0, invalid("IdleTimeout", "must be at least one second (zero: the Manager's; NoIdleTimeout: none)")
	}
	d = d.Truncate(time.Millisecond)
	if d <= m.cfg.throttle {
		return 0, invalid("IdleTimeout", fmt.Sprintf("%v must be longer than the activity throttle, %v", d, m.cfg.throttle))
	}
	return d, nil
}

// peekFresh reads session id again from Redis when pk, what its session's
// credentials were checked against, came from memory (a store.Cache): the
// credentials may have just been replaced on another instance whose
// announcement has not arrived, so the stored session decides, not the
// cached one. Answered by Redis already, or by a store that cannot read
// afresh, the answer stands: ErrNotFound. The read is traced and counted
// as Peek's.
func (m *Manager) peekFresh(ctx context.Context, id uuid.UUID, pk backend.Peeked) (Session, backend.Peeked, error) {
	fp, ok := m.bare.(freshPeeker)
	if pk.Entry == nil || !ok {
		return Session{}, backend.Peeked{}, ErrNotFound
	}
	return m.tel.peekFresh(ctx, fp, id)
}

// maxIPDecisions bounds how many times one request decides its address
// change while other requests move the session's address under it.
const maxIPDecisions = 3

// touch writes a session's activity. On an address change, the store
// holds it unwritten when the new address is to be located or the change
// decided (onIPChange, see AuthenticateWith), and then records it, with
// the location, or revokes the session, in a second call.
func (m *Manager) touch(ctx context.Context, id uuid.UUID, hash *[32]byte, ip netip.Addr, onIPChange func(UpdateSessionActivityResult) bool) (UpdateSessionActivityResult, error) {
	c := m.call()
	use := backend.Use{SessionID: id, TokenHash: hash, IP: ip, Hold: (m.locates || onIPChange != nil) && ip.IsValid()}
	s, out, events, err := m.store.Touch(ctx, c, use, nil)
	var held UpdateSessionActivityResult // the change the store held, as decided
	var loc *Location
	for n := 0; err == nil && out.Held; n++ {
		if n == maxIPDecisions {
			// Other requests keep moving the session's address under
			// this one's decisions: it is not served on a guess.
			return UpdateSessionActivityResult{}, fmt.Errorf("%w: the session's address changed under %d decisions", ErrUnavailable, n)
		}
		if n == 0 && m.locates {
			// An address GeoIP does not know keeps the last known location.
			if l := m.locate(ctx, ip); l != (Location{}) {
				loc = &l
			}
		}
		use.Hold = false
		if onIPChange != nil {
			s.LastIPAddress = ip
			if loc != nil {
				s.Location = *loc
			}
			held = activityResult(s, out)
			use.Revoke, use.From = onIPChange(held), out.PreviousIP
		}
		s, out, events, err = m.store.Touch(ctx, c, use, loc)
	}
	if err != nil {
		return UpdateSessionActivityResult{}, err
	}
	m.emit(ctx, events)
	if out.Revoked {
		return UpdateSessionActivityResult{}, &RevokedError{Reason: ReasonIPChanged, At: c.Now}
	}
	r := activityResult(s, out)
	if held.IPChanged && !r.IPChanged {
		// Another request recorded the change meanwhile: this one was a
		// change all the same, and was decided as one.
		r.IPChanged, r.PreviousIP, r.PreviousCountry, r.CountryChanged = true, held.PreviousIP, held.PreviousCountry, held.CountryChanged
	}
	return r, nil
}

// activityResult is the result of a store's Touch.
func activityResult(s Session, out backend.Used) UpdateSessionActivityResult {
	r := UpdateSessionActivityResult{
		Session: s, Written: out.Written, IPChanged: out.IPChanged,
		PreviousCountry: out.PreviousCountry,
	}
	if out.IPChanged {
		r.PreviousIP = out.PreviousIP.String()
		r.CountryChanged = out.PreviousCountry != s.Location.CountryCode &&
			out.PreviousCountry != "" && s.Location.CountryCode != ""
	}
	return r
}

// RecordProviderAccess remembers that an active session reached a provider.
func (m *Manager) RecordProviderAccess(ctx context.Context, cmd RecordProviderAccess) (_ RecordProviderAccessResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.RecordProviderAccess")
	defer func() { end(span, err) }()
	if err := checkSessionID(cmd.SessionID); err != nil {
		return RecordProviderAccessResult{}, err
	}
	if err := checkProvider("ProviderName", cmd.ProviderName); err != nil {
		return RecordProviderAccessResult{}, err
	}
	c := m.call()
	out, events, err := m.store.RecordProvider(ctx, c, cmd.SessionID, cmd.ProviderName)
	if err != nil {
		return RecordProviderAccessResult{}, err
	}
	m.emit(ctx, events)
	return RecordProviderAccessResult{Written: out.Written, First: out.First, At: c.Now}, nil
}

// LinkRefreshTokenToSession attaches a refresh token id to an active session.
func (m *Manager) LinkRefreshTokenToSession(ctx context.Context, cmd LinkRefreshTokenToSession) (_ LinkRefreshTokenToSessionResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.LinkRefreshTokenToSession")
	defer func() { end(span, err) }()
	if err := checkSessionID(cmd.SessionID); err != nil {
		return LinkRefreshTokenToSessionResult{}, err
	}
	if err := checkText("RefreshTokenID", cmd.RefreshTokenID, maxRefreshLen); err != nil {
		return LinkRefreshTokenToSessionResult{}, err
	}
	events, err := m.store.LinkRefreshToken(ctx, m.call(), cmd.SessionID, cmd.RefreshTokenID)
	if err != nil {
		return LinkRefreshTokenToSessionResult{}, err
	}
	m.emit(ctx, events)
	return LinkRefreshTokenToSessionResult{}, nil
}

// Session returns a session in any state while it is retained; an unknown
// id, like an id no session can have, is ErrNotFound.
func (m *Manager) Session(ctx context.Context, id uuid.UUID) (_ Session, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.Session")
	defer func() { end(span, err) }()
	return m.session(ctx, id)
}

func (m *Manager) session(ctx context.Context, id uuid.UUID) (Session, error) {
	if err := checkSessionID(id); err != nil {
		return Session{}, err
	}
	return m.store.Get(ctx, id, m.now())
}

// UserSession returns one of userID's sessions; a session of another user is ErrNotFound.
func (m *Manager) UserSession(ctx context.Context, userID, id uuid.UUID) (_ Session, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.UserSession")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", userID); err != nil {
		return Session{}, err
	}
	s, err := m.session(ctx, id)
	if err != nil {
		return Session{}, err
	}
	if s.UserID != userID {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// ListOptions selects which sessions ListUserSessions returns.
type ListOptions struct {
	// IncludeRevoked adds revoked, evicted and expired sessions that are
	// still within the audit retention period.
	IncludeRevoked bool
}

// ListUserSessions returns the user's sessions, oldest first. Its cost
// depends on that user's sessions only.
func (m *Manager) ListUserSessions(ctx context.Context, userID uuid.UUID, opts ListOptions) (_ []Session, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.ListUserSessions")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", userID); err != nil {
		return nil, err
	}
	return m.store.List(ctx, userID, opts.IncludeRevoked, m.now())
}

// Events returns a page of the user's audit trail, newest first.
func (m *Manager) Events(ctx context.Context, userID uuid.UUID, q EventQuery) (_ []Event, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.Events")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", userID); err != nil {
		return nil, err
	}
	switch {
	case q.Limit < 0 || q.Limit > 500:
		return nil, invalid("Limit", "must be within 0..500")
	case q.Limit == 0:
		q.Limit = 50
	}
	if q.Before != "" && !validStreamID(q.Before) {
		return nil, invalid("Before", "is not an event id")
	}
	return m.store.Events(ctx, userID, q)
}

// SetUserLimit stores a limit for one user that wins over the LimitFunc
// (Unlimited allowed). It takes effect at the user's next login.
func (m *Manager) SetUserLimit(ctx context.Context, userID uuid.UUID, limit int) (err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.SetUserLimit")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", userID); err != nil {
		return err
	}
	if !validLimit(limit) {
		return invalid("Limit", fmt.Sprintf("%d is neither positive nor Unlimited", limit))
	}
	return m.store.SetLimit(ctx, userID, limit, m.cfg.limitTTL)
}

// ClearUserLimit removes a user's stored limit override.
func (m *Manager) ClearUserLimit(ctx context.Context, userID uuid.UUID) (err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.ClearUserLimit")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", userID); err != nil {
		return err
	}
	return m.store.SetLimit(ctx, userID, 0, m.cfg.limitTTL)
}

// UserLimit returns the limit that applies to the user's next login.
func (m *Manager) UserLimit(ctx context.Context, userID uuid.UUID) (_ int, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.UserLimit")
	defer func() { end(span, err) }()
	if err := checkUser("UserID", userID); err != nil {
		return 0, err
	}
	n, ok, err := m.store.Limit(ctx, userID)
	if err != nil || ok {
		return n, err
	}
	return m.cfg.limit(ctx, userID)
}

// validStreamID accepts "<ms>-<seq>" as Redis accepts it for an exclusive
// upper bound: decimal parts that fit in 64 bits, other than 0-0. Anything
// else would reach Redis and fail there as a store error.
func validStreamID(s string) bool {
	if len(s) > 41 {
		return false
	}
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	a, errA := strconv.ParseUint(ms, 10, 64)
	b, errB := strconv.ParseUint(seq, 10, 64)
	return errA == nil && errB == nil && a|b != 0
}

// ReasonRenewed was the revocation reason of a session replaced by
// RenewSession, when renewal minted a new session; renewal now keeps the
// session and rotates its secret, so sessionkit no longer records it.
const ReasonRenewed = "renewed"

// RenewSession gives the user's session old a new secret, keeping its id:
// call it when privileges change (a second factor passed, a password
// changed) so that a token captured before the change is worthless. The
// device list and the audit trail stay continuous; the old token is
// refused from then on, on every instance. The result carries the new
// session token, or for a bearer session new Tokens (the refresh token it
// held is forgotten without a grace window), and the access tokens
// minted before it are refused: each names the session's refresh token
// family, which the renewal replaces (one minted by a build that did not
// name it is served until it expires). A session that is no longer active
// is refused (a *RevokedError, ErrExpired, ErrIdle, ErrNotFound).
// ipAddress and userAgent are not used: the session keeps its device.
func (m *Manager) RenewSession(ctx context.Context, old Session, ipAddress, userAgent string) (_ CreateSessionResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.RenewSession")
	defer func() { end(span, err) }()
	if err := checkSessionID(old.ID); err != nil {
		return CreateSessionResult{}, err
	}
	if err := checkUser("UserID", old.UserID); err != nil {
		return CreateSessionResult{}, err
	}
	return m.rotate(ctx, old.ID, old.UserID, backend.Credentials{})
}

// Reauthenticate records for one of the user's sessions that their
// credentials were just checked again (the password entered again, a
// second factor passed): the session's secret rotates as for RenewSession,
// its id stays, AuthenticatedAt moves to now, and AAL becomes cmd.AAL
// unless that is empty. The old token is refused from then on, so a token
// captured before never satisfies a recent-authentication check.
func (m *Manager) Reauthenticate(ctx context.Context, cmd Reauthenticate) (_ CreateSessionResult, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.Reauthenticate")
	defer func() { end(span, err) }()
	if err := checkSessionID(cmd.SessionID); err != nil {
		return CreateSessionResult{}, err
	}
	if err := checkUser("UserID", cmd.UserID); err != nil {
		return CreateSessionResult{}, err
	}
	switch cmd.AAL {
	case "", AAL1, AAL2, AAL3:
	default:
		return CreateSessionResult{}, invalid("AAL", "must be empty, aal1, aal2 or aal3")
	}
	return m.rotate(ctx, cmd.SessionID, cmd.UserID, backend.Credentials{Reauthenticated: true, AAL: cmd.AAL})
}

// rotate gives a session new credentials (cred's token and refresh hashes
// are filled in here) and returns them.
func (m *Manager) rotate(ctx context.Context, id, userID uuid.UUID, cred backend.Credentials) (CreateSessionResult, error) {
	tok, hash, err := token.New(id)
	if err != nil {
		return CreateSessionResult{}, fmt.Errorf("sessionkit: token: %w", err)
	}
	cred.TokenHash = hash
	refresh, err := newRefresh(id, &cred) // used if the session is a bearer one
	if err != nil {
		return CreateSessionResult{}, err
	}
	c := m.call()
	s, gen, err := m.store.Rotate(ctx, c, id, userID, cred)
	if err != nil {
		return CreateSessionResult{}, err
	}
	res := CreateSessionResult{Session: s, Token: tok}
	if s.Bearer {
		if m.tokens == nil {
			return CreateSessionResult{}, invalid("Bearer", "needs access tokens: WithAccessTokens")
		}
		res.Token = ""
		refresh.Generation = gen
		if res.Tokens, err = m.issue(s, refresh, c.Now); err != nil {
			return CreateSessionResult{}, err
		}
	}
	return res, nil
}

// newRefresh draws the first refresh token of a new family for session id
// (generation 0: a rotation sets its own) and puts the hashes of its
// secret and family in cred.
func newRefresh(id uuid.UUID, cred *backend.Credentials) (token.Refresh, error) {
	rt := token.Refresh{ID: id}
	var err error
	if rt.Secret, err = token.NewSecret(); err == nil {
		rt.Family, err = token.NewSecret()
	}
	if err != nil {
		return token.Refresh{}, fmt.Errorf("sessionkit: refresh token: %w", err)
	}
	h, fh := [32]byte(rt.Secret.Hash()), [32]byte(rt.Family.Hash())
	cred.RefreshHash, cred.RefreshFamily = &h, &fh
	return rt, nil
}
