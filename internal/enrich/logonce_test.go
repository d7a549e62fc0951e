package enrich

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"
)

func TestOnceLog(t *testing.T) {
	var buf bytes.Buffer
	var logger atomic.Pointer[slog.Logger]
	logger.Store(slog.New(slog.NewJSONHandler(&buf, nil)))
	o := newOnceLog(&logger, "/data/GeoIP2-City.mmdb")
	steps := []struct {
		name    string
		do      func() bool
		wantLog bool
	}{
		{"first changed failure logs", func() bool { return o.changed(failReload, "bad file") }, true},
		{"same detail again is quiet", func() bool { return o.changed(failReload, "bad file") }, false},
		{"new detail logs", func() bool { return o.changed(failReload, "empty file") }, true},
		{"another kind is independent", func() bool { return o.changed(failStat, "gone") }, true},
		{"first of a per-lookup kind logs", func() bool { return o.first(failLookup, "decode error A") }, true},
		{"per-lookup kind with another detail is quiet", func() bool { return o.first(failLookup, "decode error B") }, false},
		{"reset of one kind", func() bool { o.reset(failLookup); return o.first(failLookup, "decode error B") }, true},
		{"other kinds survive that reset", func() bool { return o.changed(failReload, "empty file") }, false},
		{"reset of all kinds", func() bool { o.reset(); return o.changed(failReload, "empty file") }, true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if got := s.do(); got != s.wantLog {
				t.Errorf("logged: got %v, want %v", got, s.wantLog)
			}
		})
	}

	t.Run("record layout", func(t *testing.T) {
		line, _, _ := bytes.Cut(buf.Bytes(), []byte("\n"))
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"level":      "WARN",
			"msg":        failureMessages[failReload],
			"event":      failReload,
			"geoip_path": "/data/GeoIP2-City.mmdb",
			"error":      "bad file",
		}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("%s: got %v, want %v", k, rec[k], v)
			}
		}
	})
	t.Run("every kind has a message", func(t *testing.T) {
		for _, k := range []string{failStat, failReload, failLookup, failTimeout, failPanic, failClose} {
			if failureMessages[k] == "" {
				t.Errorf("kind %s: got no message, want one", k)
			}
		}
	})
}
