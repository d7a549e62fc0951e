package redistest

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWaitForReturnsOnceCondHolds(t *testing.T) {
	calls := 0
	err := WaitFor(10*time.Second, func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("not yet (%d)", calls)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("got %v after %d calls, want nil after 3", err, calls)
	}
}

func TestWaitForReturnsTheLastErrorAtTheTimeout(t *testing.T) {
	calls := 0
	errLast := errors.New("still down")
	err := WaitFor(100*time.Millisecond, func() error {
		calls++
		return errLast
	})
	if !errors.Is(err, errLast) {
		t.Fatalf("got %v, want %v", err, errLast)
	}
	if calls < 2 {
		t.Errorf("cond called %d times in 100 ms, want it polled", calls)
	}
}
