package sessionkit

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestSessionJSONContract(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	s := Session{
		ID: uuid.New(), UserID: uuid.New(),
		Device:    Device{Label: "Chrome 131 on macOS", Browser: "Chrome", BrowserVersion: "131", OS: "macOS", Platform: "Macintosh"},
		UserAgent: "ua", IPAddress: netip.MustParseAddr("203.0.113.7"), LastIPAddress: netip.MustParseAddr("203.0.113.7"),
		CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour),
	}
	b, err := json.Marshal(s.JSON(true))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "user_id", "device", "user_agent", "ip_address", "last_ip_address", "location",
		"created_at", "last_activity_at", "expires_at", "revoked_at", "revoked_reason", "refresh_token_id",
		"ip_change_count", "last_provider_accessed", "last_provider_access_at", "providers_accessed", "is_current"}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("missing field %q in %s", k, b)
		}
	}
	for _, k := range []string{"location", "revoked_at", "revoked_reason", "refresh_token_id", "last_provider_accessed", "last_provider_access_at"} {
		if got[k] != nil {
			t.Errorf("%s: got %v, want null", k, got[k])
		}
	}
	if got["created_at"] != "2026-11-27T10:00:00Z" || got["is_current"] != true {
		t.Errorf("created_at %v is_current %v", got["created_at"], got["is_current"])
	}
	if p, ok := got["providers_accessed"].([]any); !ok || len(p) != 0 {
		t.Errorf("providers_accessed: got %v, want []", got["providers_accessed"])
	}
	dev := got["device"].(map[string]any)
	for _, k := range []string{"label", "browser", "browser_version", "os", "platform", "mobile", "bot"} {
		if _, ok := dev[k]; !ok {
			t.Errorf("device lacks %q", k)
		}
	}
	plain, _ := json.Marshal(s)
	var p map[string]any
	json.Unmarshal(plain, &p)
	if p["is_current"] != false {
		t.Errorf("MarshalJSON is_current: got %v", p["is_current"])
	}
}

func TestStateAtEdges(t *testing.T) {
	t0 := time.UnixMilli(1_800_000_000_000)
	s := Session{CreatedAt: t0, LastActivityAt: t0, ExpiresAt: t0.Add(time.Hour), IdleTimeout: 10 * time.Minute}
	cases := []struct {
		at   time.Time
		want State
	}{
		{t0, StateActive},
		{t0.Add(10*time.Minute - time.Millisecond), StateActive},
		{t0.Add(10 * time.Minute), StateIdle},
	}
	for _, c := range cases {
		if got := s.StateAt(c.at); got != c.want {
			t.Errorf("at %v: got %v, want %v", c.at.Sub(t0), got, c.want)
		}
	}
	s.IdleTimeout = 0
	if got := s.StateAt(t0.Add(time.Hour - time.Millisecond)); got != StateActive {
		t.Errorf("1ms before expiry: got %v", got)
	}
	if got := s.StateAt(t0.Add(time.Hour)); got != StateExpired {
		t.Errorf("at expiry: got %v", got)
	}
	s.RevokedAt, s.RevokedReason = t0, "logout"
	var re *RevokedError
	if err := s.Err(t0); !errors.As(err, &re) || re.Reason != "logout" || !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked Err: %v", err)
	}
}

func TestOptionValidation(t *testing.T) {
	cases := map[string]Option{
		"Lifetime":          WithLifetime(0),
		"IdleTimeout":       WithIdleTimeout(-time.Second),
		"ActivityThrottle":  WithActivityThrottle(-1),
		"AuditRetention":    WithAuditRetention(-1),
		"Limit":             WithLimit(nil),
		"EventStreamLength": WithEventStreamLength(0),
		"MaxProviders":      WithMaxProviders(1000),
		"Clock":             WithClock(nil),
		"Hook[0]":           WithHook(nil),
	}
	for field, opt := range cases {
		t.Run(field, func(t *testing.T) {
			_, err := New(nopStore{}, opt)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
				t.Fatalf("got %v, want ErrInvalid naming %s", err, field)
			}
		})
	}
	if _, err := New(nopStore{}, WithIdleTimeout(time.Minute), WithActivityThrottle(time.Minute)); !errors.Is(err, ErrInvalid) {
		t.Errorf("throttle >= idle: got %v", err)
	}
	if _, err := New(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil store: got %v", err)
	}
}

func TestValidStreamID(t *testing.T) {
	for s, want := range map[string]bool{"1-0": true, "1700000000000-12": true, "": false, "-1": false, "1-": false, "1-2-3": false, "a-1": false, "1700000000000": false,
		"18446744073709551615-18446744073709551615": true, "18446744073709551616-0": false, "99999999999999999999999-1": false,
		"0-0": false, "0-1": true, "+1-0": false} {
		if got := validStreamID(s); got != want {
			t.Errorf("validStreamID(%q): got %v, want %v", s, got, want)
		}
	}
}

// nopStore satisfies Store for tests that never reach it.
type nopStore struct{ Store }
