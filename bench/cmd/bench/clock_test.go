package main

import (
	"testing"
	"time"
)

// A row's clock stands still from stop to start, then runs on from the
// reading it stopped at, never backwards, and stop and start are each
// idempotent.
func TestRowClock(t *testing.T) {
	var c rowClock
	c.age.Store(int64(time.Hour))
	if got := time.Since(c.now()); got < time.Hour || got > time.Hour+time.Minute {
		t.Fatalf("running, an hour behind: %v behind the wall clock", got)
	}
	c.stop()
	frozen := c.now()
	c.stop() // stopped already: the reading stays
	time.Sleep(20 * time.Millisecond)
	if got := c.now(); !got.Equal(frozen) {
		t.Fatalf("stopped: read %v, then %v", frozen, got)
	}
	c.start()
	after := c.now()
	if after.Before(frozen) {
		t.Fatalf("started: read %v, before the stopped reading %v", after, frozen)
	}
	if d := after.Sub(frozen); d > 10*time.Millisecond {
		t.Fatalf("started: %v past the stopped reading, want the pause left out", d)
	}
	c.start() // running already: the age stays
	time.Sleep(20 * time.Millisecond)
	if d := c.now().Sub(frozen); d < 20*time.Millisecond {
		t.Fatalf("running again: %v past the stopped reading after 20ms", d)
	}
	if behind := time.Since(c.now()); behind < time.Hour+20*time.Millisecond {
		t.Fatalf("running again: %v behind the wall clock, want the hour and the pause", behind)
	}
}
