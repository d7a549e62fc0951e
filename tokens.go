package sessionkit

import (
	"cmp"
	"context"
	"crypto"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/accesstoken"
	"github.com/sessionkit/sessionkit/internal/backend"
	"github.com/sessionkit/sessionkit/internal/sessionid"
	"github.com/sessionkit/sessionkit/internal/token"
)

// API and mobile clients hold an access token and a refresh token instead
// of a cookie. An access token is a short-lived JWT (RFC 9068: iss, aud,
// sub = user id, sid = session id, iat, exp, jti, auth_time, acr, and
// sk_fam, the refresh token family it was minted under; header kid, typ
// at+jwt), signed by the Manager's keys and verified locally; Authenticate
// then checks the session's standing as for a cookie, so a revoked
// session's access tokens are refused at once, not at exp, and so are
// those minted before a RenewSession or Reauthenticate, which replace the
// family. A refresh token rotates on every use
// (RefreshSession) and keeps the session's id; every refresh token of a
// session carries its family secret, so a superseded one presented again,
// however old (the one just superseded: after the grace window), revokes
// the session (ReasonRefreshReused).

// AccessTokenOptions configures bearer sessions (CreateSession.Bearer).
type AccessTokenOptions struct {
	// SigningKeys sign and verify access tokens: ed25519.PrivateKey (EdDSA)
	// or *ecdsa.PrivateKey on P-256 (ES256). The first signs; every one
	// verifies, so a key is rotated by putting the new one first and
	// keeping the old one until its tokens have expired (TTL). Every
	// instance of the app needs the same keys, so in a rolling deploy (or
	// with other services caching GET /sessions/jwks.json, max-age 300 s)
	// rotate in three steps: add the new key last, everywhere, and wait
	// for the deploy and the JWKS cache time; then put it first; once
	// TTL has passed, drop the old one. Required.
	SigningKeys []crypto.Signer
	// Issuer is the iss claim, checked on every token: the app's URL, for
	// example "https://api.example.com". Required.
	Issuer string
	// Audience is the aud claim (RFC 9068): the API the tokens are for, so
	// that another service trusting the same keys (GET
	// /sessions/jwks.json) can refuse tokens not meant for it. A token
	// naming other audiences is refused; one naming none, as tokens
	// minted before this option did, is accepted: only the app's keys
	// sign either. At most 256 bytes, no control characters. Default: the
	// Issuer.
	Audience string
	// TTL is an access token's lifetime, at most the session's: 10 seconds
	// to 1 hour. Default: 5 minutes.
	TTL time.Duration
	// RefreshGrace is how long the refresh token just superseded still
	// gets the current one back (a retried request, two tabs refreshing at
	// once) instead of revoking the session as stolen: at most 5 minutes.
	// Zero means the default, 10 seconds; a negative value means none, so
	// that the superseded token revokes the session at once (a client
	// whose refresh response is lost is then signed out). Default: 10
	// seconds.
	RefreshGrace time.Duration
}

// Default access token settings.
const (
	defaultAccessTTL    = 5 * time.Minute
	defaultRefreshGrace = 10 * time.Second
)

// accessTokenSkew is how far in the future an access token's iat may lie:
// the instances of an app mint tokens for one another, and their clocks
// differ by a little (iat counts whole seconds, so a clock a millisecond
// behind the minter's can read a fresh token as issued in the future). A
// clock further off than this is a fault to fix, and its tokens are
// refused. Expiry is checked without it: a token never lives longer.
const accessTokenSkew = 30 * time.Second

// WithAccessTokens turns on bearer sessions for API and mobile clients:
// CreateSession.Bearer, RefreshSession, and access tokens in Authenticate.
// Default: off.
func WithAccessTokens(o AccessTokenOptions) Option {
	return func(c *config) { c.accessTokens = &o }
}

// accessTokens is a Manager's access token configuration.
type accessTokens struct {
	keys     *accesstoken.KeySet
	issuer   string
	audience string
	ttl      time.Duration
}

func newAccessTokens(o *AccessTokenOptions) (*accessTokens, time.Duration, error) {
	switch {
	case o.Issuer == "":
		return nil, 0, invalid("AccessTokenOptions.Issuer", "must not be empty")
	case o.TTL != 0 && (o.TTL < 10*time.Second || o.TTL > time.Hour):
		return nil, 0, invalid("AccessTokenOptions.TTL", "must be within 10s..1h")
	case len(o.Audience) > 256 || strings.ContainsFunc(o.Audience, unicode.IsControl):
		return nil, 0, invalid("AccessTokenOptions.Audience", "must be at most 256 bytes, without control characters")
	case o.RefreshGrace > 5*time.Minute:
		return nil, 0, invalid("AccessTokenOptions.RefreshGrace", "must be at most 5m")
	case len(o.SigningKeys) == 0:
		return nil, 0, invalid("AccessTokenOptions.SigningKeys", "must hold a key")
	}
	keys, err := accesstoken.NewKeySet(o.SigningKeys...)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: AccessTokenOptions.SigningKeys: %v", ErrInvalid, err)
	}
	t := &accessTokens{keys: keys, issuer: o.Issuer, audience: cmp.Or(o.Audience, o.Issuer), ttl: o.TTL}
	if t.ttl == 0 {
		t.ttl = defaultAccessTTL
	}
	grace := o.RefreshGrace
	switch {
	case grace == 0:
		grace = defaultRefreshGrace
	case grace < 0:
		grace = 0 // the store's "none"
	}
	return t, grace, nil
}

// Tokens are what a bearer client holds. Both are secrets: never log them.
type Tokens struct {
	// AccessToken goes in "Authorization: Bearer ..." until AccessExpiresAt.
	AccessToken     string
	AccessExpiresAt time.Time
	// RefreshToken gets a new pair from RefreshSession, once: each use
	// supersedes it. It lasts as long as the session (RefreshExpiresAt).
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// issue mints the pair for s: an access token, and the refresh token rt
// spells.
func (m *Manager) issue(s Session, rt token.Refresh, now time.Time) (Tokens, error) {
	t := m.tokens
	exp := now.Add(t.ttl)
	if exp.After(s.ExpiresAt) {
		exp = s.ExpiresAt
	}
	if exp.Sub(now) < time.Second { // an access token lives whole seconds
		return Tokens{}, ErrExpired
	}
	c := accesstoken.Claims{
		Issuer: t.issuer, Audience: []string{t.audience}, Subject: s.UserID.String(), SessionID: s.ID, IssuedAt: now, ExpiresAt: exp,
		AuthTime: s.AuthenticatedAt, ACR: s.AAL,
	}
	if rt.HasFamily() {
		// Authenticate refuses the token once the session's credentials,
		// and with them its family, are replaced (RenewSession,
		// Reauthenticate). A session from before families has none.
		fh := [32]byte(rt.Family.Hash())
		c.Family = backend.FamilyTag(&fh)
	}
	if s.ImpersonatedBy != "" {
		// A support session: the operator acts as the user (RFC 8693
		// act), whose credentials were never checked for it, so the
		// token claims no authentication of theirs.
		c.Actor, c.AuthTime = s.ImpersonatedBy, time.Time{}
	}
	at, err := t.keys.Mint(c)
	if err != nil {
		return Tokens{}, fmt.Errorf("sessionkit: access token: %w", err)
	}
	return Tokens{
		AccessToken: at, AccessExpiresAt: exp,
		RefreshToken: rt.String(), RefreshExpiresAt: s.ExpiresAt,
	}, nil
}

// accessClaims is what Authenticate needs of a verified access token.
type accessClaims struct {
	sessionID, userID uuid.UUID
	authTime          time.Time // zero: not in the token
	acr               string
	family            string // backend.FamilyTag of the family it was minted under; empty: none
}

// apply makes s carry the access token's authentication, not the
// session's, when the token's is older: a token minted before a
// re-authentication never gains from it (RequireRecentAuth, RequireLevel).
func (c *accessClaims) apply(s *Session) {
	if s.ImpersonatedBy != "" {
		// A support session's token claims no authentication (issue);
		// step-up refuses such a session whatever its time.
		return
	}
	if c.authTime.IsZero() || c.authTime.Before(s.AuthenticatedAt) {
		s.AuthenticatedAt, s.AAL = c.authTime, c.acr
		if s.AAL == "" {
			s.AAL = AAL1
		}
	}
}

// looksLikeJWT tells an access token from a session token before any
// parsing: three dot-separated parts, the first a JSON object's base64url.
func looksLikeJWT(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

// verifyAccessToken checks an access token's signature, type, issuer and
// expiry, with no store call. Any failure wraps ErrNotFound, as for a
// session token that is not valid: the 401 does not say which check failed,
// the error (and the refusal's debug line) does.
func (m *Manager) verifyAccessToken(tok string) (accessClaims, error) {
	c, err := m.tokens.keys.Verify(tok, accesstoken.VerifyOptions{
		Issuer: m.tokens.issuer, Audience: m.tokens.audience, AllowNoAudience: true, Now: m.now(), Skew: accessTokenSkew,
	})
	if err != nil {
		// Which check failed is for the log (the refusal's debug line),
		// never the answer; the error names no part of the token.
		return accessClaims{}, fmt.Errorf("%w: access token: %w", ErrNotFound, err)
	}
	uid, err := uuid.Parse(c.Subject)
	if err != nil {
		return accessClaims{}, fmt.Errorf("%w: access token: the subject is not a user id", ErrNotFound)
	}
	return accessClaims{sessionID: c.SessionID, userID: uid, authTime: c.AuthTime, acr: c.ACR, family: c.Family}, nil
}

// JWKS returns the public keys that verify access tokens, as a JSON Web Key
// Set (RFC 7517), for other services; ErrInvalid without WithAccessTokens.
func (m *Manager) JWKS() ([]byte, error) {
	if m.tokens == nil {
		return nil, invalid("JWKS", "needs access tokens: WithAccessTokens")
	}
	return m.tokens.keys.JWKS(), nil
}

// RefreshSession exchanges a bearer session's refresh token for a new pair.
type RefreshSession struct {
	RefreshToken string
}

// RefreshSessionResult is the outcome of RefreshSession.
type RefreshSessionResult struct {
	Session Session // the same session, its activity moved
	Tokens  Tokens
	// Rotated is false when the presented token had just been superseded
	// (within the grace window): Tokens then holds the current refresh
	// token again, and a new access token.
	Rotated bool
}

// RefreshSession rotates a bearer session's refresh token in one atomic
// store call: the session keeps its id, its activity moves, and the
// presented token is superseded. The token just superseded, presented again
// within the grace window, gets the current one back. Any other superseded
// token of the session, that one after the window or one of any earlier
// generation, is reuse (RFC 9700 §4.14.2: the server cannot tell thief
// from owner): the session is revoked (ReasonRefreshReused: a
// *RevokedError), with an event and a hook call, and its access tokens are
// refused from then on. Reuse is known by the family secret that every
// refresh token of a session carries and that the store keeps hashed; a
// token made up around a session id (which is not secret) is unknown and
// revokes nothing, and so is one held before RenewSession or
// Reauthenticate, which start a new family. A token issued before families
// existed (no family part) still works; its session detects reuse of the
// token just superseded only, as it did. Concurrent refreshes of one token
// never leave two live refresh tokens. A malformed or unknown refresh token
// is ErrNotFound, whether or not a session exists; a genuine one of a
// session no longer active is refused with the reason (a *RevokedError,
// ErrExpired or ErrIdle).
func (m *Manager) RefreshSession(ctx context.Context, cmd RefreshSession) (_ RefreshSessionResult, err error) {
	if m.tokens == nil {
		return RefreshSessionResult{}, invalid("RefreshSession", "needs access tokens: WithAccessTokens")
	}
	ctx, span := m.tel.start(ctx, "sessionkit.RefreshSession")
	defer func() { end(span, err) }()
	res, reused, err := m.refresh(ctx, cmd)
	m.tel.refreshed(ctx, res, reused, err)
	return res, err
}

// refresh is RefreshSession; reused reports a superseded token presented
// outside the grace window, which revoked the session.
func (m *Manager) refresh(ctx context.Context, cmd RefreshSession) (_ RefreshSessionResult, reused bool, err error) {
	rt, err := token.ParseRefresh(cmd.RefreshToken)
	if err != nil || !sessionid.Valid(rt.ID) || rt.Generation == token.MaxGeneration {
		return RefreshSessionResult{}, false, ErrNotFound
	}
	id, presented := rt.ID, rt.Secret
	next, err := token.NewSecret()
	if err != nil {
		return RefreshSessionResult{}, false, fmt.Errorf("sessionkit: refresh token: %w", err)
	}
	sealed, err := token.Seal(id, presented, next)
	if err != nil {
		return RefreshSessionResult{}, false, fmt.Errorf("sessionkit: refresh token: %w", err)
	}
	in := backend.Refresh{
		SessionID: id, Generation: rt.Generation, Presented: presented.Hash(), Next: next.Hash(), Sealed: sealed,
	}
	if rt.HasFamily() {
		family := [32]byte(rt.Family.Hash())
		in.Family = &family
	}
	c := m.call()
	s, out, events, err := m.store.Refresh(ctx, c, in)
	if err != nil {
		return RefreshSessionResult{}, false, err
	}
	m.emit(ctx, events)
	if out.Reused {
		// Logged here, where the revocation is known to be this call's: a
		// session already revoked for reuse refuses its tokens with the
		// same reason, and those refusals revoke nothing.
		m.log.Warn("sessionkit: a replaced refresh token was used again; session revoked", "session_id", id.String())
		return RefreshSessionResult{}, true, &RevokedError{Reason: ReasonRefreshReused, At: c.Now}
	}
	current := token.Refresh{ID: id, Generation: out.Generation, Family: rt.Family, Secret: next}
	if !out.Rotated {
		if current.Secret, err = token.Open(id, presented, out.Sealed); err != nil {
			return RefreshSessionResult{}, false, fmt.Errorf("sessionkit: refresh token: %w", err)
		}
	}
	tokens, err := m.issue(s, current, c.Now)
	if err != nil {
		return RefreshSessionResult{}, false, err
	}
	return RefreshSessionResult{Session: s, Tokens: tokens, Rotated: out.Rotated}, false, nil
}

// SessionByRefreshToken returns the session a refresh token belongs to, in
// any state while retained, if the token is its session's current one (of
// its family), or the one the current one superseded, presented within
// the grace window: RefreshSession hands the current token back for that
// one, so a client whose refresh's reply was lost holds it. Any other token
// is ErrNotFound. It changes nothing. With a store.Cache it reads the
// session from Redis, whatever the cache holds. (RefreshSession may still
// refuse such a token: one of the last generation, which it never
// rotates, and a superseded one whose sealed successor Redis no longer
// holds. Neither is reuse.)
func (m *Manager) SessionByRefreshToken(ctx context.Context, refreshToken string) (_ Session, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.SessionByRefreshToken")
	defer func() { end(span, err) }()
	rt, err := token.ParseRefresh(refreshToken)
	if err != nil || !sessionid.Valid(rt.ID) {
		return Session{}, ErrNotFound
	}
	var family *[32]byte
	if rt.HasFamily() {
		fh := [32]byte(rt.Family.Hash())
		family = &fh
	}
	var s Session
	var pk backend.Peeked
	if fp, ok := m.bare.(freshPeeker); ok {
		// A store.Cache's entry may not know a rotation made on another
		// instance yet, and this is no request's hot path: Redis decides.
		s, pk, err = m.tel.peekFresh(ctx, fp, rt.ID)
	} else {
		s, pk, err = m.store.Peek(ctx, rt.ID)
	}
	now := m.now()
	h := [32]byte(rt.Secret.Hash())
	if err == nil && !m.refreshAccepted(&s, &pk.Refresh, rt.Generation, &h, family, now) {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, err
	}
	if !pk.Indexed && s.RevokedAt.IsZero() && s.StateAt(now) == StateActive {
		s.RevokedAt, s.RevokedReason = now, "unknown" // the index was lost: never active
	}
	return s, nil
}

// refreshAccepted reports whether a refresh token of generation gen, whose
// secret and family hash to h and family (nil: a token without one), is
// one that RefreshSession would accept at now for s, whose refresh state
// is r: the current token, or the one it superseded, within the grace
// window. The hashes are compared in time independent of their contents.
func (m *Manager) refreshAccepted(s *Session, r *backend.RefreshState, gen uint32, h, family *[32]byte, now time.Time) bool {
	if !s.Bearer || !r.FamilyMatches(family) {
		return false
	}
	current := subtle.ConstantTimeCompare(r.Hash[:], h[:]) == 1 && r.Generation == gen
	previous := subtle.ConstantTimeCompare(r.Previous[:], h[:]) == 1 && r.Previous != ([32]byte{}) &&
		gen != token.MaxGeneration && gen+1 == r.Generation &&
		m.policy.RefreshGrace > 0 && !now.After(r.RotatedAt.Add(m.policy.RefreshGrace))
	return current || previous
}
