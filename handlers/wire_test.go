package handlers_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/handlers"
)

func TestSessionJSONContract(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	s := sessionkit.Session{
		ID: uuid.New(), UserID: uuid.New(),
		Device:    sessionkit.Device{Label: "Chrome 131 on macOS", Browser: "Chrome", BrowserVersion: "131", OS: "macOS", Platform: "Macintosh"},
		UserAgent: "ua", IPAddress: netip.MustParseAddr("203.0.113.7"), LastIPAddress: netip.MustParseAddr("203.0.113.7"),
		CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour),
	}
	b, err := json.Marshal(handlers.NewSessionJSON(s, true))
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
	other, _ := json.Marshal(handlers.NewSessionJSON(s, false))
	var p map[string]any
	json.Unmarshal(other, &p)
	if p["is_current"] != false {
		t.Errorf("another session's is_current: got %v", p["is_current"])
	}
}
