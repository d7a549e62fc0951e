package main

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
)

// TestMetrics signs in, makes requests refused for two reasons (a cookie
// with a wrong secret, a signed-out session's cookie) and checks that /metrics counted
// them, by reason, in the Prometheus text format.
func TestMetrics(t *testing.T) {
	ra := startApp(t, testConfig(t))
	c := newClient(t, ra.URL)
	before := scrape(t, c)
	c.login("alice")
	if r := c.get("/devices"); r.Status != 200 {
		t.Fatalf("GET /devices: got %d, want 200", r.Status)
	}
	name := sessionCookieName(c)
	stale := c.cookies[name].Value
	c.post("/logout", nil)

	// A well-formed token with a wrong secret reaches the Manager; a
	// malformed one is refused before it, uncounted.
	// The character swapped stays in the base64url alphabet, so the token
	// stays well-formed whatever it was.
	wrong := []byte(stale)
	if i := len(wrong) - 5; wrong[i] == 'A' {
		wrong[i] = 'B'
	} else {
		wrong[i] = 'A'
	}
	garbage := newClient(t, ra.URL)
	garbage.header.Set("Cookie", name+"="+string(wrong))
	if r := garbage.get("/devices"); r.Status == 200 {
		t.Fatalf("GET /devices with a wrong secret: got 200, want a refusal")
	}
	revoked := newClient(t, ra.URL)
	revoked.header.Set("Cookie", name+"="+stale)
	if r := revoked.get("/devices"); r.Status == 200 {
		t.Fatalf("GET /devices with a signed-out session: got 200, want a refusal")
	}
	after := scrape(t, c)

	tests := []struct {
		series string
		min    float64
	}{
		{`sessionkit_logins_total{sessionkit_outcome="ok"}`, 1},
		{`sessionkit_authentications_total{sessionkit_outcome="ok"}`, 1},
		{`sessionkit_authentications_total{sessionkit_outcome="refused",sessionkit_reason="revoked"}`, 1},
		{`sessionkit_authentications_total{sessionkit_outcome="refused",sessionkit_reason="not_found"}`, 1},
		{`sessionkit_authentication_duration_seconds_count{sessionkit_outcome="ok"}`, 1},
		{`sessionkit_revocations_total{sessionkit_reason="logout"}`, 1},
	}
	for _, tt := range tests {
		if got := after[tt.series] - before[tt.series]; got < tt.min {
			t.Errorf("%s: moved by %v, want at least %v", tt.series, got, tt.min)
		}
	}
	if t.Failed() {
		t.Logf("sessionkit series after:\n%s", dump(after))
	}
}

// sessionCookieName is the name of the session cookie c holds.
func sessionCookieName(c *client) string {
	for name := range c.cookies {
		if strings.Contains(name, "session") {
			return name
		}
	}
	c.t.Fatalf("no session cookie among %v", c.cookies)
	return ""
}

// scrape reads /metrics into series → value, for sessionkit's series;
// labels that identify the instrumentation scope are left out of the key.
func scrape(t *testing.T, c *client) map[string]float64 {
	t.Helper()
	r := c.get("/metrics")
	if r.Status != 200 {
		t.Fatalf("GET /metrics: got %d, want 200", r.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(r.Body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "sessionkit_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[seriesKey(line[:i])] = v
	}
	return out
}

// seriesKey drops the otel_scope_* labels the exporter adds.
func seriesKey(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok {
		return s
	}
	var keep []string
	for l := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
		if !strings.HasPrefix(l, "otel_scope_") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return name
	}
	return name + "{" + strings.Join(keep, ",") + "}"
}

func dump(m map[string]float64) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + " " + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
	}
	return b.String()
}
