package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiCall is one JSON request of an API client: no cookies, Accept JSON.
func apiCall(t *testing.T, method, url, body, access string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAPIClientPath is the README's curl session: sign in for tokens, call
// a provider with the access token, refresh, replay the old refresh token
// after the grace window, and watch the session revoked; the devices page
// lists the token session beside the browser's, marked.
func TestAPIClientPath(t *testing.T) {
	cfg := testConfig(t)
	cfg.RefreshGrace = 50 * time.Millisecond
	ra := startApp(t, cfg)

	status, pair := apiCall(t, "POST", ra.URL+"/sessions/token", `{"username":"alice","password":"password"}`, "")
	if status != http.StatusCreated || pair["token_type"] != "Bearer" {
		t.Fatalf("sign in for tokens: got %d %v", status, pair)
	}
	access, refresh := pair["access_token"].(string), pair["refresh_token"].(string)
	if status, body := apiCall(t, "GET", ra.URL+"/providers/schwab/accounts", "", access); status != http.StatusOK || body["provider"] != "schwab" {
		t.Fatalf("provider with the access token: got %d %v", status, body)
	}
	status, next := apiCall(t, "POST", ra.URL+"/sessions/refresh", `{"refresh_token":"`+refresh+`"}`, "")
	if status != http.StatusOK || next["refresh_token"] == refresh {
		t.Fatalf("refresh: got %d %v", status, next)
	}
	if id := next["session"].(map[string]any)["id"]; id != pair["session"].(map[string]any)["id"] {
		t.Errorf("refresh changed the session id: %v", id)
	}

	// The browser sees the API client beside itself.
	c := newClient(t, ra.URL)
	c.login("alice")
	page, _ := devices(t, c)
	if !strings.Contains(page, "API client") || !strings.Contains(page, "Schwab") {
		t.Errorf("devices page: the token session is not listed as an API client with its provider")
	}

	time.Sleep(100 * time.Millisecond) // past the grace window
	status, body := apiCall(t, "POST", ra.URL+"/sessions/refresh", `{"refresh_token":"`+refresh+`"}`, "")
	if status != http.StatusUnauthorized || body["reason"] != "refresh_token_reused" {
		t.Fatalf("replayed refresh token: got %d %v, want 401 refresh_token_reused", status, body)
	}
	newAccess := next["access_token"].(string)
	if status, body := apiCall(t, "GET", ra.URL+"/providers/schwab/accounts", "", newAccess); status != http.StatusUnauthorized || body["reason"] != "refresh_token_reused" {
		t.Errorf("the revoked session's access token: got %d %v, want 401 refresh_token_reused", status, body)
	}
	if page, _ := devices(t, c); strings.Contains(page, "API client") {
		t.Error("devices page: the revoked token session is still listed")
	}
	if status, body := apiCall(t, "GET", ra.URL+"/sessions/jwks.json", "", ""); status != http.StatusOK || body["keys"] == nil {
		t.Errorf("jwks: got %d %v", status, body)
	}
}

func TestRefreshGraceConfig(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "10s": true, "5m": true, "6m": false, "0s": true, "-1s": false, "soon": false} {
		cfg, err := configFromEnv(func(k string) string {
			if k == "REFRESH_GRACE" {
				return v
			}
			return ""
		})
		if (err == nil) != ok {
			t.Errorf("REFRESH_GRACE=%q: got %v, want ok %v", v, err, ok)
		}
		if v == "10s" && cfg.RefreshGrace != 10*time.Second {
			t.Errorf("REFRESH_GRACE=10s: got %v", cfg.RefreshGrace)
		}
		if v == "0s" && cfg.RefreshGrace >= 0 {
			t.Errorf("REFRESH_GRACE=0s: got %v, want sessionkit's none (negative)", cfg.RefreshGrace)
		}
	}
}
