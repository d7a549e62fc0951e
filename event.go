package sessionkit

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// EventType names what happened to a session.
type EventType string

// Event types, as stored in the audit trail.
const (
	EventCreated          EventType = "session_created"
	EventRevoked          EventType = "session_revoked"
	EventEvicted          EventType = "session_evicted"
	EventIPChanged        EventType = "ip_changed"
	EventProviderAccessed EventType = "provider_accessed"
	EventRefreshLinked    EventType = "refresh_token_linked"
	EventActivity         EventType = "activity"
)

// Event is one entry of a user's audit trail. Fields that do not apply to
// the type are zero.
type Event struct {
	ID        string    `json:"id"` // "<ms>-<seq>"; orders events
	Type      EventType `json:"type"`
	SessionID uuid.UUID `json:"session_id"`
	UserID    uuid.UUID `json:"user_id"`
	At        time.Time `json:"at"`

	Reason          string `json:"reason,omitempty"`           // revoked, evicted
	IPAddress       string `json:"ip_address,omitempty"`       // created, ip_changed
	PreviousIP      string `json:"previous_ip,omitempty"`      // ip_changed
	Country         string `json:"country,omitempty"`          // created, ip_changed (ISO code)
	PreviousCountry string `json:"previous_country,omitempty"` // ip_changed
	DeviceLabel     string `json:"device,omitempty"`           // created
	NewDevice       bool   `json:"new_device,omitempty"`       // created
	NewCountry      bool   `json:"new_country,omitempty"`      // created
	Provider        string `json:"provider,omitempty"`         // provider_accessed
	RefreshTokenID  string `json:"refresh_token_id,omitempty"` // refresh_token_linked
	// ByID is the session whose login caused an eviction.
	ByID uuid.UUID `json:"by_session_id,omitzero"`
	// Actor is the public label of the operator who caused the event (a
	// revocation by support, an impersonation session), from the admin
	// routes' Authorize; empty for the user's own actions.
	Actor string `json:"actor,omitempty"`
}

// Hook receives events after they are stored. Hooks run on a small pool of
// background goroutines, never on the request path. A user's events from
// commands that ran one after another reach the hooks in that order;
// different users' events may run concurrently. A hook that panics is
// recovered and logged, and one that blocks delays only later hooks. When
// the queue is full, events are dropped (and counted in the log) rather than
// slowing commands down; the audit trail in Redis is complete regardless.
type Hook func(ctx context.Context, e Event)

// EventQuery selects a page of a user's audit trail, newest first.
type EventQuery struct {
	// Before is an event ID: only older events are returned. Empty: from the newest.
	Before string
	// Limit bounds the page; zero means 50, at most 500.
	Limit int
}
