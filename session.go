package sessionkit

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Session is one signed-in device of a user. It never holds the token.
type Session struct {
	ID             uuid.UUID
	UserID         uuid.UUID
	Device         Device
	UserAgent      string     // sanitized, at most 512 bytes
	IPAddress      netip.Addr // address at sign-in
	LastIPAddress  netip.Addr // latest address seen
	Location       Location   // latest known location
	CreatedAt      time.Time
	LastActivityAt time.Time
	ExpiresAt      time.Time     // absolute end of the session
	IdleTimeout    time.Duration // zero: no idle timeout
	RevokedAt      time.Time     // zero while not revoked
	RevokedReason  string
	RefreshTokenID string
	IPChangeCount  int

	LastProviderAccessed string
	LastProviderAccessAt time.Time
	ProvidersAccessed    []string // most recently used last
}

// Device describes the client that created the session.
type Device struct {
	Label          string // "Chrome 131 on macOS", "Unknown device"
	Browser        string
	BrowserVersion string
	OS             string
	OSVersion      string
	Platform       string
	Mobile         bool
	Bot            bool
}

// Location is where an address is, as far as GeoIP knows. The zero value means unknown.
type Location struct {
	Label       string // "London, England, GB"
	City        string
	Region      string
	Country     string
	CountryCode string // ISO 3166-1 alpha-2
}

// State tells whether s may be used at now, and if not, why.
type State int

// Session states.
const (
	StateActive State = iota
	StateRevoked
	StateExpired
	StateIdle
)

// String returns the state's name.
func (st State) String() string {
	switch st {
	case StateActive:
		return "active"
	case StateRevoked:
		return "revoked"
	case StateExpired:
		return "expired"
	case StateIdle:
		return "idle"
	}
	return "unknown"
}

// IdleDeadline is the first instant at which s is idle; zero without an idle timeout.
func (s Session) IdleDeadline() time.Time {
	if s.IdleTimeout <= 0 {
		return time.Time{}
	}
	return s.LastActivityAt.Add(s.IdleTimeout)
}

// StateAt returns the state of s at now. A session is valid while now is
// before both its ExpiresAt and its idle deadline.
func (s Session) StateAt(now time.Time) State {
	switch {
	case !s.RevokedAt.IsZero():
		return StateRevoked
	case !now.Before(s.ExpiresAt):
		return StateExpired
	case s.IdleTimeout > 0 && !now.Before(s.IdleDeadline()):
		return StateIdle
	}
	return StateActive
}

// Err returns nil for an active session and the error that refuses it otherwise.
func (s Session) Err(now time.Time) error {
	switch s.StateAt(now) {
	case StateRevoked:
		return &RevokedError{Reason: s.RevokedReason, At: s.RevokedAt}
	case StateExpired:
		return ErrExpired
	case StateIdle:
		return ErrIdle
	}
	return nil
}

// SessionJSON is the wire form of a session (see the HTTP contract).
type SessionJSON struct {
	ID                   uuid.UUID     `json:"id"`
	UserID               uuid.UUID     `json:"user_id"`
	Device               DeviceJSON    `json:"device"`
	UserAgent            *string       `json:"user_agent"`
	IPAddress            *string       `json:"ip_address"`
	LastIPAddress        *string       `json:"last_ip_address"`
	Location             *LocationJSON `json:"location"`
	CreatedAt            time.Time     `json:"created_at"`
	LastActivityAt       time.Time     `json:"last_activity_at"`
	ExpiresAt            time.Time     `json:"expires_at"`
	RevokedAt            *time.Time    `json:"revoked_at"`
	RevokedReason        *string       `json:"revoked_reason"`
	RefreshTokenID       *string       `json:"refresh_token_id"`
	IPChangeCount        int           `json:"ip_change_count"`
	LastProviderAccessed *string       `json:"last_provider_accessed"`
	LastProviderAccessAt *time.Time    `json:"last_provider_access_at"`
	ProvidersAccessed    []string      `json:"providers_accessed"`
	IsCurrent            bool          `json:"is_current"`
}

// DeviceJSON is the wire form of a Device.
type DeviceJSON struct {
	Label          string  `json:"label"`
	Browser        *string `json:"browser"`
	BrowserVersion *string `json:"browser_version"`
	OS             *string `json:"os"`
	OSVersion      *string `json:"os_version"`
	Platform       *string `json:"platform"`
	Mobile         bool    `json:"mobile"`
	Bot            bool    `json:"bot"`
}

// LocationJSON is the wire form of a Location.
type LocationJSON struct {
	Label       string  `json:"label"`
	City        *string `json:"city"`
	Region      *string `json:"region"`
	Country     *string `json:"country"`
	CountryCode *string `json:"country_code"`
}

// JSON returns the wire form of s; current marks the caller's own session.
func (s Session) JSON(current bool) SessionJSON {
	j := SessionJSON{
		ID:     s.ID,
		UserID: s.UserID,
		Device: DeviceJSON{
			Label:          s.Device.Label,
			Browser:        str(s.Device.Browser),
			BrowserVersion: str(s.Device.BrowserVersion),
			OS:             str(s.Device.OS),
			OSVersion:      str(s.Device.OSVersion),
			Platform:       str(s.Device.Platform),
			Mobile:         s.Device.Mobile,
			Bot:            s.Device.Bot,
		},
		UserAgent:            str(s.UserAgent),
		IPAddress:            addr(s.IPAddress),
		LastIPAddress:        addr(s.LastIPAddress),
		CreatedAt:            s.CreatedAt.UTC(),
		LastActivityAt:       s.LastActivityAt.UTC(),
		ExpiresAt:            s.ExpiresAt.UTC(),
		RevokedAt:            tm(s.RevokedAt),
		RevokedReason:        str(s.RevokedReason),
		RefreshTokenID:       str(s.RefreshTokenID),
		IPChangeCount:        s.IPChangeCount,
		LastProviderAccessed: str(s.LastProviderAccessed),
		LastProviderAccessAt: tm(s.LastProviderAccessAt),
		ProvidersAccessed:    s.ProvidersAccessed,
		IsCurrent:            current,
	}
	if j.ProvidersAccessed == nil {
		j.ProvidersAccessed = []string{}
	}
	if s.Device.Label == "" {
		j.Device.Label = "Unknown device"
	}
	if s.Location != (Location{}) {
		j.Location = &LocationJSON{
			Label:       s.Location.Label,
			City:        str(s.Location.City),
			Region:      str(s.Location.Region),
			Country:     str(s.Location.Country),
			CountryCode: str(s.Location.CountryCode),
		}
	}
	return j
}

// MarshalJSON encodes s in its wire form with is_current false.
func (s Session) MarshalJSON() ([]byte, error) { return json.Marshal(s.JSON(false)) }

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func addr(a netip.Addr) *string {
	if !a.IsValid() {
		return nil
	}
	s := a.String()
	return &s
}

func tm(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
