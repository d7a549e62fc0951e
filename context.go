package sessionkit

import (
	"context"
	"errors"
	"net/http"
)

type ctxKey struct{}

type ctxValue struct {
	m *Manager
	s Session
}

// NewContext returns ctx carrying the authenticated session s and the
// Manager that checked it. The middleware calls it; apps rarely need to.
func NewContext(ctx context.Context, m *Manager, s Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, &ctxValue{m: m, s: s})
}

// FromContext returns the session the middleware authenticated for this request.
func FromContext(ctx context.Context) (Session, bool) {
	v, ok := ctx.Value(ctxKey{}).(*ctxValue)
	if !ok {
		return Session{}, false
	}
	return v.s, true
}

// ManagerFromContext returns the Manager that authenticated the request.
func ManagerFromContext(ctx context.Context) (*Manager, bool) {
	v, ok := ctx.Value(ctxKey{}).(*ctxValue)
	if !ok || v.m == nil {
		return nil, false
	}
	return v.m, true
}

// ErrNoSession is returned by helpers that need a session in the context and find none.
var ErrNoSession = errors.New("sessionkit: no session in context")

// RecordProvider records that the request's session accessed provider, in
// one line from any handler behind the middleware:
//
//	if err := sessionkit.RecordProvider(r.Context(), "schwab"); err != nil { ... }
func RecordProvider(ctx context.Context, provider string) error {
	v, ok := ctx.Value(ctxKey{}).(*ctxValue)
	if !ok || v.m == nil {
		return ErrNoSession
	}
	_, err := v.m.RecordProviderAccess(ctx, RecordProviderAccess{SessionID: v.s.ID, ProviderName: provider})
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
