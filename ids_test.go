package sessionkit

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
)

// TestMalformedSessionIDs checks that every command and query answers an
// id no session can have the same way: ErrNotFound, as for an unknown or
// foreign session, before any store call (nopStore panics on one). An app
// or a handler never has to check id formats itself.
func TestMalformedSessionIDs(t *testing.T) {
	m, err := New(nopStore{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	user := uuid.New()
	for _, id := range []uuid.UUID{uuid.Nil, uuid.New(), uuid.Max} {
		calls := map[string]func() error{
			"Session": func() error { _, err := m.Session(ctx, id); return err },
			"UserSession": func() error {
				_, err := m.UserSession(ctx, user, id)
				return err
			},
			"RevokeSession": func() error {
				_, err := m.RevokeSession(ctx, RevokeSession{SessionID: id, UserID: user, Reason: ReasonUserRevoked})
				return err
			},
			"RevokeAllUserSessions.ExceptSessionID": func() error {
				if id == uuid.Nil {
					return ErrNotFound // the zero value means "keep none": covered by the store tests
				}
				_, err := m.RevokeAllUserSessions(ctx, RevokeAllUserSessions{UserID: user, Reason: ReasonLogoutAll, ExceptSessionID: id})
				return err
			},
			"UpdateSessionActivity": func() error {
				_, err := m.UpdateSessionActivity(ctx, UpdateSessionActivity{SessionID: id})
				return err
			},
			"RecordProviderAccess": func() error {
				_, err := m.RecordProviderAccess(ctx, RecordProviderAccess{SessionID: id, ProviderName: "schwab"})
				return err
			},
			"LinkRefreshTokenToSession": func() error {
				_, err := m.LinkRefreshTokenToSession(ctx, LinkRefreshTokenToSession{SessionID: id, RefreshTokenID: "rt"})
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%v): got %v, want ErrNotFound", name, id, err)
			}
		}
	}
}
