package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// config is everything the example reads from its environment.
type config struct {
	// Addr is the listen address (ADDR). Default ":8080".
	Addr string
	// RedisURL is a redis:// or rediss:// URL of one Redis server (REDIS_URL).
	RedisURL string
	// ClusterAddrs are seed addresses of a Redis Cluster (REDIS_CLUSTER_ADDRS,
	// comma-separated).
	ClusterAddrs []string
	// GeoIPPath is a GeoIP2 or GeoLite2 City or Country database (GEOIP_DB).
	GeoIPPath string
	// TrustedProxies are the CIDR ranges whose X-Forwarded-For is believed
	// (TRUSTED_PROXIES, comma-separated). Default: none.
	TrustedProxies []string
	// InsecureCookies drops Secure from the session cookie for browsers that
	// refuse Secure cookies from http://localhost (INSECURE_DEV_COOKIES=1).
	// Accepted only when Addr listens on a loopback address.
	InsecureCookies bool
	// RefreshGrace is how long a superseded refresh token still gets the
	// current one back (REFRESH_GRACE, a Go duration such as "10s"; at
	// most 5m; "0s" for none). Default: sessionkit's, 10 seconds.
	RefreshGrace time.Duration

	// prefix starts every Redis key; tests give each run its own.
	prefix string
	// reauthWithin, when set, replaces how recent a password must be for
	// the sensitive pages (5 minutes); tests shorten it.
	reauthWithin time.Duration
	// enrichBudget, when set, replaces the time budgets of enrichment (the
	// GeoIP lookup's and the Manager's); tests raise it, so that a loaded
	// machine never leaves a location empty. Zero keeps the defaults.
	enrichBudget time.Duration
}

// configFromEnv reads the configuration through getenv (os.Getenv in main).
func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{
		Addr:           strings.TrimSpace(getenv("ADDR")),
		RedisURL:       strings.TrimSpace(getenv("REDIS_URL")),
		ClusterAddrs:   splitList(getenv("REDIS_CLUSTER_ADDRS")),
		GeoIPPath:      strings.TrimSpace(getenv("GEOIP_DB")),
		TrustedProxies: splitList(getenv("TRUSTED_PROXIES")),
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if v := strings.TrimSpace(getenv("REFRESH_GRACE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 5*time.Minute {
			return config{}, fmt.Errorf("REFRESH_GRACE=%q: want a Go duration within 0s..5m, such as 10s (0s: none)", v)
		}
		if d == 0 {
			d = -1 // sessionkit's "none"
		}
		cfg.RefreshGrace = d
	}
	switch v := strings.TrimSpace(getenv("INSECURE_DEV_COOKIES")); v {
	case "", "0", "false":
	case "1", "true":
		cfg.InsecureCookies = true
	default:
		return config{}, fmt.Errorf("INSECURE_DEV_COOKIES=%q: want 1 or 0", v)
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	if c.RedisURL != "" && len(c.ClusterAddrs) > 0 {
		return errors.New("REDIS_URL and REDIS_CLUSTER_ADDRS are both set: choose one")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("ADDR=%q: %v", c.Addr, err)
	}
	if c.InsecureCookies && !loopback(c.Addr) {
		return fmt.Errorf("INSECURE_DEV_COOKIES=1 needs ADDR on a loopback address (such as 127.0.0.1:8080), not %q: "+
			"a cookie without Secure may be stolen by anyone on the network path", c.Addr)
	}
	return nil
}

// loopback reports whether addr listens on loopback addresses only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
