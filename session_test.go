package sessionkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/backend"
)

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
	// An option that conflicts with another's default names the option
	// set and the other one's option, which the app may never have set.
	for _, tc := range []struct {
		opt  Option
		want []string
	}{
		{WithIdleTimeout(30 * time.Second), []string{"IdleTimeout", "30s", "1m0s", "WithActivityThrottle"}},
		{WithLifetime(500 * 24 * time.Hour), []string{"Lifetime", "12000h0m0s", "WithMaxLifetime"}},
	} {
		_, err := New(nopStore{}, tc.opt)
		for _, w := range tc.want {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), w) {
				t.Errorf("got %v, want ErrInvalid saying %q", err, w)
			}
		}
	}
	if _, err := New(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil store: got %v", err)
	}
}

// TestFixedLimitRefusesNoLimit: FixedLimit(0) would refuse every login
// with an error only at login; it panics where it is written instead, as
// time.NewTicker does for a non-positive interval.
func TestFixedLimitRefusesNoLimit(t *testing.T) {
	for _, n := range []int{0, -2} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "FixedLimit") {
					t.Errorf("FixedLimit(%d): recovered %v, want a panic naming FixedLimit", n, r)
				}
			}()
			FixedLimit(n)
		}()
	}
	for _, n := range []int{1, 50, Unlimited} {
		if got, err := FixedLimit(n)(t.Context(), uuid.New()); got != n || err != nil {
			t.Errorf("FixedLimit(%d): got %d, %v", n, got, err)
		}
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

// nopStore satisfies Store for tests that never reach it: every method but
// Attach panics (nil embedded interface).
type nopStore struct{ Store }

func (nopStore) Attach(backend.Env) {}
