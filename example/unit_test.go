package main

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/redistest"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string // in the error; empty: no error
	}{
		{name: "defaults", env: nil, want: config{Addr: ":8080"}},
		{name: "all set", env: map[string]string{
			"ADDR": "127.0.0.1:9000", "REDIS_URL": "redis://localhost:6379/2", "GEOIP_DB": "/data/GeoLite2-City.mmdb",
			"TRUSTED_PROXIES": " 10.0.0.0/8, ,192.168.1.1 ", "INSECURE_DEV_COOKIES": "1",
		}, want: config{
			Addr: "127.0.0.1:9000", RedisURL: "redis://localhost:6379/2", GeoIPPath: "/data/GeoLite2-City.mmdb",
			TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"}, InsecureCookies: true,
		}},
		{name: "cluster", env: map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000,b:7001,,c:7002"},
			want: config{Addr: ":8080", ClusterAddrs: []string{"a:7000", "b:7001", "c:7002"}}},
		{name: "insecure cookies on localhost", env: map[string]string{"ADDR": "localhost:8080", "INSECURE_DEV_COOKIES": "true"},
			want: config{Addr: "localhost:8080", InsecureCookies: true}},
		{name: "insecure cookies on IPv6 loopback", env: map[string]string{"ADDR": "[::1]:8080", "INSECURE_DEV_COOKIES": "1"},
			want: config{Addr: "[::1]:8080", InsecureCookies: true}},
		{name: "both Redis kinds", env: map[string]string{"REDIS_URL": "redis://x", "REDIS_CLUSTER_ADDRS": "a:1"}, wantErr: "both set"},
		{name: "insecure cookies on every interface", env: map[string]string{"INSECURE_DEV_COOKIES": "1"}, wantErr: "loopback"},
		{name: "insecure cookies on a public address", env: map[string]string{"ADDR": "203.0.113.5:80", "INSECURE_DEV_COOKIES": "1"}, wantErr: "loopback"},
		{name: "bad INSECURE_DEV_COOKIES", env: map[string]string{"INSECURE_DEV_COOKIES": "yes please"}, wantErr: "INSECURE_DEV_COOKIES"},
		{name: "bad ADDR", env: map[string]string{"ADDR": "8080"}, wantErr: "ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got.Addr != tt.want.Addr || got.RedisURL != tt.want.RedisURL || got.GeoIPPath != tt.want.GeoIPPath ||
				got.InsecureCookies != tt.want.InsecureCookies || !slices.Equal(got.ClusterAddrs, tt.want.ClusterAddrs) ||
				!slices.Equal(got.TrustedProxies, tt.want.TrustedProxies) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewAppRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*config)
		wantErr string
	}{
		{"bad trusted proxy", func(c *config) { c.TrustedProxies = []string{"not-a-cidr"} }, "TrustedProxies"},
		{"missing GeoIP database", func(c *config) { c.GeoIPPath = "/nonexistent/GeoLite2-City.mmdb" }, "GEOIP_DB"},
		{"bad REDIS_URL", func(c *config) { c.RedisURL = "http://user:hunter2@localhost" }, "REDIS_URL"},
		{"unreachable Redis", func(c *config) { c.RedisURL = "redis://127.0.0.1:1" }, "Redis at 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.mutate(&cfg)
			a, err := newApp(t.Context(), cfg, testLogger(t))
			if err == nil {
				a.Close(t.Context())
				t.Fatalf("got no error, want one mentioning %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %q, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got the Redis password in the error %q", err)
			}
		})
	}
}

func TestRunStopsGracefully(t *testing.T) {
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, ln, &lockedBuffer{}, testLogger(t)) }()
	c := newClient(t, "http://"+addr)
	// Wait until it serves.
	for i := 0; ; i++ {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			break
		}
		if i > 200 {
			t.Fatalf("not listening: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.login("alice")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: got %v after cancel, want nil", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after cancel")
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("still accepting connections after shutdown")
	}
}

func TestUsersCheck(t *testing.T) {
	u := demoUsers()
	tests := []struct {
		name, user, password string
		wantOK               bool
		wantTier             string
	}{
		{"alice", "alice", "password", true, "plus"},
		{"bob", "bob", "password", true, "free"},
		{"wrong password", "alice", "Password", false, ""},
		{"carol", "carol", "password", true, "plus"},
		{"unknown user", "mallory", "password", false, ""},
		{"empty", "", "", false, ""},
		{"case matters", "Alice", "password", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usr, ok := u.check(tt.user, tt.password)
			if ok != tt.wantOK {
				t.Fatalf("got ok %v, want %v", ok, tt.wantOK)
			}
			if ok && usr.Tier != tt.wantTier {
				t.Errorf("got tier %q, want %q", usr.Tier, tt.wantTier)
			}
		})
	}
	// Ids are stable across restarts, and the limits follow the tiers.
	if a, b := demoUsers().byName["alice"].ID, u.byName["alice"].ID; a != b {
		t.Errorf("got alice's id %s then %s, want the same", a, b)
	}
	for name, want := range map[string]bool{"alice": false, "bob": false, "dave": false, "carol": true} {
		if got := u.named(name).Support; got != want {
			t.Errorf("%s is a support agent: got %v, want %v", name, got, want)
		}
	}
	limit := sessionTiers.Limit(u.tierOf)
	for name, want := range map[string]int{"alice": 10, "bob": 1} {
		if got, err := limit(t.Context(), u.byName[name].ID); err != nil || got != want {
			t.Errorf("limit of %s: got %d, %v; want %d", name, got, err, want)
		}
	}
}

func TestRelTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{-time.Minute, "just now"}, // a clock slightly ahead
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{2*time.Minute + 30*time.Second, "2 minutes ago"},
		{59 * time.Minute, "59 minutes ago"},
		{time.Hour, "1 hour ago"},
		{23 * time.Hour, "23 hours ago"},
		{25 * time.Hour, "yesterday"},
		{3 * 24 * time.Hour, "3 days ago"},
		{29 * 24 * time.Hour, "29 days ago"},
		{40 * 24 * time.Hour, "on 2 Feb 2026"},
	}
	for _, tt := range tests {
		t.Run(tt.ago.String(), func(t *testing.T) {
			if got := relTime(now.Add(-tt.ago), now); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDescribeEvent(t *testing.T) {
	tests := []struct {
		e        sessionkit.Event
		wantKind string
		wantText string
	}{
		{sessionkit.Event{Type: sessionkit.EventCreated, IPAddress: "81.2.69.142", NewCountry: true}, "in", "Signed in from 81.2.69.142 (new country)"},
		{sessionkit.Event{Type: sessionkit.EventCreated, NewDevice: true}, "in", "Signed in (new device)"},
		{sessionkit.Event{Type: sessionkit.EventRevoked, Reason: sessionkit.ReasonUserRevoked}, "out", "Signed out from another device"},
		{sessionkit.Event{Type: sessionkit.EventRevoked, Reason: "admin_disabled"}, "out", "Revoked (admin_disabled)"},
		{sessionkit.Event{Type: sessionkit.EventRevoked, Reason: reasonRevokedBySupport, Actor: "support (carol)"}, "out", "Signed out by support (carol)"},
		{sessionkit.Event{Type: sessionkit.EventRevoked, Reason: sessionkit.ReasonLogout, Actor: "support (carol)"}, "out", "Signed out by support (carol)"},
		{sessionkit.Event{Type: sessionkit.EventCreated, IPAddress: "127.0.0.1", Actor: "support (carol)"}, "in", "Support session opened by support (carol) from 127.0.0.1"},
		{sessionkit.Event{Type: sessionkit.EventEvicted, Reason: sessionkit.ReasonLimitExceeded}, "warn", "Signed out by the session limit when another device signed in"},
		{sessionkit.Event{Type: sessionkit.EventIPChanged, PreviousIP: "81.2.69.142", IPAddress: "2a01:e0a::1"}, "warn", "Address changed from 81.2.69.142 to 2a01:e0a::1"},
		{sessionkit.Event{Type: sessionkit.EventProviderAccessed, Provider: "schwab"}, "info", "Opened Schwab accounts"},
		{sessionkit.Event{Type: sessionkit.EventProviderAccessed, Provider: "coinbase"}, "info", "Opened coinbase accounts"},
	}
	for _, tt := range tests {
		t.Run(tt.wantText, func(t *testing.T) {
			got := describeEvent(tt.e)
			if got.Kind != tt.wantKind || got.Text != tt.wantText {
				t.Errorf("got %q %q, want %q %q", got.Kind, got.Text, tt.wantKind, tt.wantText)
			}
		})
	}
}

func TestMoney(t *testing.T) {
	money := templateFuncs["money"].(func(float64) string)
	for in, want := range map[float64]string{0: "$0.00", 7.5: "$7.50", 1234.42: "$1,234.42", 1234567.17: "$1,234,567.17"} {
		if got := money(in); got != want {
			t.Errorf("money(%v): got %q, want %q", in, got, want)
		}
	}
}

func TestWarnsOnEvictingRedis(t *testing.T) {
	tests := []struct {
		policy   string
		wantWarn bool
	}{
		{"noeviction", false},
		{"allkeys-lru", true},
		{"volatile-lru", true},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{MaxMemory: "64mb", MaxMemoryPolicy: tt.policy})
			cfg := testConfig(t)
			cfg.RedisURL = "redis://" + srv.Addr()
			var logs lockedBuffer
			a, err := newApp(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close(context.WithoutCancel(t.Context()))
			warned := strings.Contains(logs.String(), "maxmemory-policy is "+tt.policy)
			if warned != tt.wantWarn {
				t.Errorf("got warning %v (logs %q), want %v", warned, logs.String(), tt.wantWarn)
			}
		})
	}
}

// TestRedisURLErrorHidesPassword: a REDIS_URL that does not parse is
// reported without its password. net/url quotes the URL in its error, so a
// password with a quote, a backslash or a control byte was not found
// verbatim there, and the whole URL went to stderr.
func TestRedisURLErrorHidesPassword(t *testing.T) {
	for _, url := range []string{
		`redis://default:s3cr"etPW@localhost:6379/0`,
		`redis://default:s3cr\etPW@localhost:6379/0`,
		"redis://default:s3cr\tetPW@localhost:6379/0",
		"redis://default:s3cr%zzetPW@localhost:6379/0", // a bad escape: net/url quotes that piece
		"redis://default:s3cretPW@localhost:63x9/0",
	} {
		_, err := openRedis(t.Context(), config{RedisURL: url})
		if err == nil {
			t.Errorf("%q: no error", url)
			continue
		}
		if strings.Contains(err.Error(), "etPW") {
			t.Errorf("the error holds the password: %q", err)
		}
	}
}
