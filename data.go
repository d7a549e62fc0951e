package sessionkit

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/backend"
)

// A session can hold a few small values of the app's (a CSRF token, a
// flash message, a wizard step): string values under printable keys, read
// only when asked (never on the hot path), gone with the session, never in
// the session JSON.

// Bounds of one session's data.
const (
	MaxDataKeys  = 32   // keys per session
	MaxDataBytes = 4096 // bytes of keys and values together per session
)

const maxDataKeyLen = 64

var dataBounds = backend.DataBounds{Keys: MaxDataKeys, Bytes: MaxDataBytes}

func checkData(key string, value *string) error {
	if err := checkText("Key", key, maxDataKeyLen); err != nil {
		return err
	}
	if value != nil {
		switch {
		case len(*value) > MaxDataBytes:
			return invalid("Value", fmt.Sprintf("longer than %d bytes", MaxDataBytes))
		case !utf8.ValidString(*value):
			return invalid("Value", "is not valid UTF-8")
		}
	}
	return nil
}

// PutSessionData sets key to value in an active session's data. Past
// MaxDataKeys keys or MaxDataBytes bytes it fails with an error wrapping
// ErrInvalid that names the bound, and nothing is written; a session that
// is not active is refused as Authenticate would refuse it.
func (m *Manager) PutSessionData(ctx context.Context, sessionID uuid.UUID, key, value string) (err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.PutSessionData")
	defer func() { end(span, err) }()
	if err := checkSessionID(sessionID); err != nil {
		return err
	}
	if err := checkData(key, &value); err != nil {
		return err
	}
	return m.store.UpdateData(ctx, m.call(), sessionID, key, &value, dataBounds)
}

// DeleteSessionData removes key from an active session's data.
func (m *Manager) DeleteSessionData(ctx context.Context, sessionID uuid.UUID, key string) (err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.DeleteSessionData")
	defer func() { end(span, err) }()
	if err := checkSessionID(sessionID); err != nil {
		return err
	}
	if err := checkData(key, nil); err != nil {
		return err
	}
	return m.store.UpdateData(ctx, m.call(), sessionID, key, nil, dataBounds)
}

// SessionData returns the value of key in an active session's data, and
// whether it is set. It costs one round trip.
func (m *Manager) SessionData(ctx context.Context, sessionID uuid.UUID, key string) (_ string, _ bool, err error) {
	ctx, span := m.tel.start(ctx, "sessionkit.SessionData")
	defer func() { end(span, err) }()
	if err := checkSessionID(sessionID); err != nil {
		return "", false, err
	}
	if err := checkData(key, nil); err != nil {
		return "", false, err
	}
	return m.store.ReadData(ctx, sessionID, key, m.now())
}

// PutData sets key to value in the data of the request's session (see
// PutSessionData); ErrNoSession without one.
func PutData(ctx context.Context, key, value string) error {
	c, ok := fromContext(ctx)
	if !ok || c.m == nil {
		return ErrNoSession
	}
	return c.m.PutSessionData(ctx, c.id, key, value)
}

// Data returns the value of key in the data of the request's session (see
// SessionData); ErrNoSession without one.
func Data(ctx context.Context, key string) (string, bool, error) {
	c, ok := fromContext(ctx)
	if !ok || c.m == nil {
		return "", false, ErrNoSession
	}
	return c.m.SessionData(ctx, c.id, key)
}

// DeleteData removes key from the data of the request's session (see
// DeleteSessionData); ErrNoSession without one.
func DeleteData(ctx context.Context, key string) error {
	c, ok := fromContext(ctx)
	if !ok || c.m == nil {
		return ErrNoSession
	}
	return c.m.DeleteSessionData(ctx, c.id, key)
}
