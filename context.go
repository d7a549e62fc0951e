package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

type ctxKey struct{}

// sessionCtx is the context NewContext returns: the parent with the session
// and its Manager, in one allocation rather than a context.WithValue and
// the value it points to. It embeds the parent, so Deadline, Done and Err
// are the parent's, and Value delegates every key but ctxKey to it; that
// includes the context package's own lookups, so a context.WithCancel
// derived from it attaches to the parent's cancellation directly, without
// a goroutine, as it would below a context.WithValue.
type sessionCtx struct {
	context.Context
	m *Manager
	s Session
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

// NewContext returns ctx carrying the authenticated session s and the
// Manager that checked it. The middleware calls it; apps rarely need to.
func NewContext(ctx context.Context, m *Manager, s Session) context.Context {
	if ctx == nil {
		panic("cannot create context from nil parent") // as context.WithValue does
	}
	return &sessionCtx{Context: ctx, m: m, s: s}
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
	return c.s, true
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
	_, err := c.m.RecordProviderAccess(ctx, RecordProviderAccess{SessionID: c.s.ID, ProviderName: provider})
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
