package store

import "testing"

func TestAtLeast7(t *testing.T) {
	for v, want := range map[string]bool{"7.0.15": true, "7.4.1": true, "8.0.0": true, "10.1": true, "6.2.14": false, "5.0": false, "": false, "x.y": false} {
		if got := atLeast7(v); got != want {
			t.Errorf("atLeast7(%q): got %v, want %v", v, got, want)
		}
	}
	info := "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
	if got := infoField(info, "redis_version"); got != "7.0.15" {
		t.Errorf("infoField: got %q, want 7.0.15", got)
	}
}
