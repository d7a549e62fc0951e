package handlers

import (
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
)

// SessionJSON is the wire form of a session: the session JSON of the HTTP
// contract (openapi.json).
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
	// Credential is what the client holds: "cookie", or "bearer" for an
	// API client with an access token and a refresh token.
	Credential string `json:"credential"`
	// AuthenticatedAt is when the credentials were last checked (sign-in or
	// re-authentication); AAL the assurance level, "aal1", "aal2" or "aal3".
	AuthenticatedAt time.Time `json:"authenticated_at"`
	AAL             string    `json:"aal"`
	// ImpersonatedBy names the operator of a support session opened as the
	// user (the admin routes); null for the user's own sessions.
	ImpersonatedBy *string `json:"impersonated_by"`
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

// NewSessionJSON returns the wire form of s; current marks the caller's own
// session. An app that serves sessions on routes of its own uses it to
// answer exactly what the /sessions routes answer.
func NewSessionJSON(s sessionkit.Session, current bool) SessionJSON {
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
		Credential:           "cookie",
		AuthenticatedAt:      s.AuthenticatedAt.UTC(),
		AAL:                  s.AAL,
		ImpersonatedBy:       str(s.ImpersonatedBy),
	}
	if s.Bearer {
		j.Credential = "bearer"
	}
	if j.ProvidersAccessed == nil {
		j.ProvidersAccessed = []string{}
	}
	if s.Device.Label == "" {
		j.Device.Label = "Unknown device"
	}
	if s.Location != (sessionkit.Location{}) {
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
