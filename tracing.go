package sessionkit

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessionkit/sessionkit/internal/backend"
)

// start begins the span of a command or a read-only query.
func (t *telemetry) start(ctx context.Context, name string) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name)
}

// end ends a span, with the command's result and, on failure (outcome
// error: the store unavailable, an internal error), error status. A refusal
// (a wrong token, a revoked session, invalid input) is an answer, not a
// failure: its outcome and reason say why, and its status stays unset, so
// that an error-rate alert on spans does not fire on users' stale cookies,
// and no error text of the app's (a revocation reason) reaches the trace.
func end(span trace.Span, err error) {
	if span.IsRecording() {
		r := classify(err)
		span.SetAttributes(resultAttrs[r]...)
		if r >= resUnavailable {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// tracedStore gives every store round trip a span, sessionkit.store.<Method>,
// when the caller's span is recording (a command's, or the app's around
// Authenticate), so that with no tracer the hot path costs one context
// lookup; and it counts the calls that fail for want of the store.
type tracedStore struct {
	Store
	tel *telemetry
}

func (s *tracedStore) start(ctx context.Context, name string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return s.tel.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
}

func (s *tracedStore) end(ctx context.Context, span trace.Span, op string, err error) {
	if errors.Is(err, backend.ErrDuplicateID) {
		// Random ids collided, and CreateSession draws another: the store
		// answered as it should.
		if span != nil {
			span.AddEvent("sessionkit.session_id_taken")
			span.End()
		}
		return
	}
	s.tel.storeFailed(ctx, op, err)
	if span != nil {
		end(span, err)
	}
}

func (s *tracedStore) Create(ctx context.Context, c backend.Call, ss Session, cred backend.Credentials, limit backend.Limit) (backend.Created, []Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Create")
	out, events, err := s.Store.Create(ctx, c, ss, cred, limit)
	s.end(ctx, span, "create", err)
	return out, events, err
}

func (s *tracedStore) Refresh(ctx context.Context, c backend.Call, in backend.Refresh) (Session, backend.Refreshed, []Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Refresh")
	ss, out, events, err := s.Store.Refresh(ctx, c, in)
	s.end(ctx, span, "refresh", err)
	return ss, out, events, err
}

func (s *tracedStore) Peek(ctx context.Context, id uuid.UUID) (Session, backend.Peeked, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Peek")
	ss, pk, err := s.Store.Peek(ctx, id)
	s.end(ctx, span, "peek", err)
	return ss, pk, err
}

// peekFresh is fp.PeekFresh, the fresh read of a session a cache answered
// (Manager.authenticate), with the span and the failure count tracedStore
// gives Peek.
func (t *telemetry) peekFresh(ctx context.Context, fp freshPeeker, id uuid.UUID) (Session, backend.Peeked, error) {
	s := tracedStore{tel: t}
	ctx, span := s.start(ctx, "sessionkit.store.PeekFresh")
	ss, pk, err := fp.PeekFresh(ctx, id)
	s.end(ctx, span, "peek", err)
	return ss, pk, err
}

func (s *tracedStore) Touch(ctx context.Context, c backend.Call, use backend.Use, loc *Location) (Session, backend.Used, []Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Touch")
	ss, out, events, err := s.Store.Touch(ctx, c, use, loc)
	s.end(ctx, span, "touch", err)
	return ss, out, events, err
}

func (s *tracedStore) Revoke(ctx context.Context, c backend.Call, id, userID uuid.UUID, reason, actor string) ([]Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Revoke")
	events, err := s.Store.Revoke(ctx, c, id, userID, reason, actor)
	s.end(ctx, span, "revoke", err)
	return events, err
}

func (s *tracedStore) RevokeAll(ctx context.Context, c backend.Call, userID, except uuid.UUID, reason, actor string) ([]Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.RevokeAll")
	events, err := s.Store.RevokeAll(ctx, c, userID, except, reason, actor)
	s.end(ctx, span, "revoke_all", err)
	return events, err
}

func (s *tracedStore) RecordProvider(ctx context.Context, c backend.Call, id uuid.UUID, provider string) (backend.Recorded, []Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.RecordProvider")
	out, events, err := s.Store.RecordProvider(ctx, c, id, provider)
	s.end(ctx, span, "record_provider", err)
	return out, events, err
}

func (s *tracedStore) LinkRefreshToken(ctx context.Context, c backend.Call, id uuid.UUID, refreshTokenID string) ([]Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.LinkRefreshToken")
	events, err := s.Store.LinkRefreshToken(ctx, c, id, refreshTokenID)
	s.end(ctx, span, "link_refresh_token", err)
	return events, err
}

func (s *tracedStore) Rotate(ctx context.Context, c backend.Call, id, userID uuid.UUID, cred backend.Credentials) (Session, uint32, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Rotate")
	ss, gen, err := s.Store.Rotate(ctx, c, id, userID, cred)
	s.end(ctx, span, "rotate", err)
	return ss, gen, err
}

func (s *tracedStore) UpdateData(ctx context.Context, c backend.Call, id uuid.UUID, key string, value *string, bounds backend.DataBounds) error {
	ctx, span := s.start(ctx, "sessionkit.store.UpdateData")
	err := s.Store.UpdateData(ctx, c, id, key, value, bounds)
	s.end(ctx, span, "update_data", err)
	return err
}

func (s *tracedStore) ReadData(ctx context.Context, id uuid.UUID, key string, now time.Time) (string, bool, error) {
	ctx, span := s.start(ctx, "sessionkit.store.ReadData")
	v, ok, err := s.Store.ReadData(ctx, id, key, now)
	s.end(ctx, span, "read_data", err)
	return v, ok, err
}

func (s *tracedStore) Get(ctx context.Context, id uuid.UUID, now time.Time) (Session, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Get")
	ss, err := s.Store.Get(ctx, id, now)
	s.end(ctx, span, "get", err)
	return ss, err
}

func (s *tracedStore) List(ctx context.Context, userID uuid.UUID, includeRevoked bool, now time.Time) ([]Session, error) {
	ctx, span := s.start(ctx, "sessionkit.store.List")
	ss, err := s.Store.List(ctx, userID, includeRevoked, now)
	s.end(ctx, span, "list", err)
	return ss, err
}

func (s *tracedStore) Events(ctx context.Context, userID uuid.UUID, q EventQuery) ([]Event, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Events")
	events, err := s.Store.Events(ctx, userID, q)
	s.end(ctx, span, "events", err)
	return events, err
}

func (s *tracedStore) SetLimit(ctx context.Context, userID uuid.UUID, limit int, ttl time.Duration) error {
	ctx, span := s.start(ctx, "sessionkit.store.SetLimit")
	err := s.Store.SetLimit(ctx, userID, limit, ttl)
	s.end(ctx, span, "set_limit", err)
	return err
}

func (s *tracedStore) Limit(ctx context.Context, userID uuid.UUID) (int, bool, error) {
	ctx, span := s.start(ctx, "sessionkit.store.Limit")
	n, ok, err := s.Store.Limit(ctx, userID)
	s.end(ctx, span, "limit", err)
	return n, ok, err
}
