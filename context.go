package sessionkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"slices"

	"github.com/google/uuid"
)

type ctxKey struct{}

// sessionCtx is the context newContext returns: the parent with the session
// and its Manager, in one allocation rather than a context.WithValue and
// the value it points to. It embeds the parent, so Deadline, Done and Err
// are the parent's, and Value delegates every key but ctxKey to it; that
// includes the context package's own lookups, so a context.WithCancel
// derived from it attaches to the parent's cancellation directly, without
// a goroutine, as it would below a context.WithValue.
//
// It holds the session as an entry that gives a copy to each FromContext:
// the cache's immutable entry when the cache answered the request (no copy
// of the session is made for the request at all), else a copy of its own
// (heldCtx).
type sessionCtx struct {
	context.Context
	m  *Manager
	id uuid.UUID
	e  sessionEntry
}

// sessionEntry is an immutable session a context can hold: the cache's
// entry (backend.Peeked.Entry), or a heldSession.
type sessionEntry interface {
	Session() Session
}

// heldSession is a context's own copy of a session.
type heldSession Session

func (h *heldSession) Session() Session {
	s := Session(*h)
	s.ProvidersAccessed = slices.Clone(h.ProvidersAccessed)
	return s
}

// heldCtx is a sessionCtx and its own copy of the session, in one allocation.
type heldCtx struct {
	sessionCtx
	s heldSession
}

func (c *sessionCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// String names the context without printing the session, the way the
// context package names its own contexts.
func (c *sessionCtx) String() string {
	name := "context.Context"
	if s, ok := c.Context.(fmt.Stringer); ok {
		name = s.String()
	}
	return name + ".WithValue(sessionkit.Session)"
}

// newContext returns ctx carrying a copy of the session s and the Manager
// that authenticated it, in one allocation.
func newContext(ctx context.Context, m *Manager, s Session) context.Context {
	if ctx == nil {
		panic("cannot create context from nil parent") // as context.WithValue does
	}
	s.ProvidersAccessed = slices.Clone(s.ProvidersAccessed) // the caller's stays the caller's
	c := &heldCtx{sessionCtx: sessionCtx{Context: ctx, m: m, id: s.ID}, s: heldSession(s)}
	c.e = &c.s
	return &c.sessionCtx
}

// NewContext returns parent carrying the session res holds, for
// FromContext and what reads it (RecordProvider, the middleware's check
// for a request already authenticated). res must come from this Manager's
// Authenticate, unchanged: any other result (built by hand, from
// UpdateSessionActivity, from another Manager, or with its Session
// replaced, or changed in what decides what it may do: its id, user,
// assurance level, authentication time, support operator or kind) is
// refused with an error wrapping ErrInvalid, so that no code can put a
// session it did not authenticate into a request's context (a result the
// cache answered holds the cache's immutable entry, which no edit of res
// reaches). The
// middleware calls it; an app that authenticates another transport itself
// (a WebSocket upgrade, a gRPC stream) can too. The context holds the
// session as Authenticate read it; when the verified-session cache answered,
// it holds the cache's immutable entry, and no copy of the session is made.
func (m *Manager) NewContext(parent context.Context, res UpdateSessionActivityResult) (context.Context, error) {
	if parent == nil {
		return nil, invalid("parent", "must not be nil")
	}
	if res.verifiedBy != m || res.verified != res.Session.ID || (res.entry == nil && res.grant != grantOf(&res.Session)) {
		return nil, invalid("UpdateSessionActivityResult", "did not come from this Manager's Authenticate")
	}
	if res.entry != nil {
		// The store's immutable copy, which res.Session was read from.
		return &sessionCtx{Context: parent, m: m, id: res.Session.ID, e: res.entry}, nil
	}
	return newContext(parent, m, res.Session), nil
}

// grantSeed keys grantOf, so that no one can choose a session of the same
// print as another.
var grantSeed = maphash.MakeSeed()

// grantOf is a print of what decides what s may do (its user, assurance
// level, authentication time, support operator and kind): NewContext
// refuses a result whose Session no longer has what Authenticate found.
func grantOf(s *Session) uint64 {
	var h maphash.Hash
	h.SetSeed(grantSeed)
	h.Write(s.UserID[:])
	h.WriteString(s.AAL)
	h.WriteByte(0)
	h.WriteString(s.ImpersonatedBy)
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(s.AuthenticatedAt.UnixNano()))
	if s.Bearer {
		b[8] = 1
	}
	h.Write(b[:])
	return h.Sum64()
}

// seal marks r as m's Authenticate's, as its Session is now. A result
// holding the store's entry needs no print: NewContext holds the entry,
// which no edit of r reaches.
func (r *UpdateSessionActivityResult) seal(m *Manager) {
	r.verifiedBy, r.verified = m, r.Session.ID
	if r.entry == nil {
		r.grant = grantOf(&r.Session)
	}
}

// fromContext returns the innermost session context in ctx's chain.
func fromContext(ctx context.Context) (*sessionCtx, bool) {
	c, ok := ctx.Value(ctxKey{}).(*sessionCtx)
	return c, ok
}

// FromContext returns the session the middleware authenticated for this request.
func FromContext(ctx context.Context) (Session, bool) {
	c, ok := fromContext(ctx)
	if !ok {
		return Session{}, false
	}
	return c.e.Session(), true
}

// ManagerFromContext returns the Manager that authenticated the request.
func ManagerFromContext(ctx context.Context) (*Manager, bool) {
	c, ok := fromContext(ctx)
	if !ok || c.m == nil {
		return nil, false
	}
	return c.m, true
}

// ErrNoSession is returned by helpers that need a session in the context and find none.
var ErrNoSession = errors.New("sessionkit: no session in context")

// RecordProvider records that the request's session accessed provider, in
// one line from any handler behind the middleware:
//
//	if err := sessionkit.RecordProvider(r.Context(), "schwab"); err != nil { ... }
func RecordProvider(ctx context.Context, provider string) error {
	c, ok := fromContext(ctx)
	if !ok || c.m == nil {
		return ErrNoSession
	}
	_, err := c.m.RecordProviderAccess(ctx, RecordProviderAccess{SessionID: c.id, ProviderName: provider})
	return err
}

type requestKey struct{}

// WithRequest returns ctx carrying the HTTP request that a command serves,
// so an Enricher can read its headers (for example a CDN's country header,
// trusted only when the peer is the CDN). The login route sets it before
// CreateSession; the middleware does not, to keep the hot path lean, so an
// address change is located from the address alone.
func WithRequest(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFromContext returns the request stored by WithRequest.
func RequestFromContext(ctx context.Context) (*http.Request, bool) {
	r, ok := ctx.Value(requestKey{}).(*http.Request)
	return r, ok && r != nil
}
