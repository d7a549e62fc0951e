package store

import "testing"

// TestDirectReadsNeedQuiet checks when a hot-path read skips the
// autopipeliner: only when at most directReads reads are in flight and the
// quietReads reads before it found as few. Under load the reads in flight
// dip to a few whenever a batch's callers finish together; those reads
// must keep riding the autopipeliner.
func TestDirectReadsNeedQuiet(t *testing.T) {
	r := &Redis{}
	r.quiet.Store(quietReads) // as NewRedis leaves it
	for n := int64(1); n <= directReads; n++ {
		if !r.direct(n) {
			t.Fatalf("a fresh store, %d reads in flight: not direct, want direct", n)
		}
	}
	if r.direct(directReads + 1) {
		t.Fatalf("%d reads in flight: direct, want the autopipeliner", directReads+1)
	}
	// After load, quietReads quiet reads ride the autopipeliner, then the
	// reads go direct; one busy read starts the count again.
	for round := range 2 {
		for i := range quietReads {
			if r.direct(1) {
				t.Fatalf("round %d: quiet read %d after load went direct, want the autopipeliner", round, i+1)
			}
		}
		for i := range 3 {
			if !r.direct(1 + int64(i)) {
				t.Fatalf("round %d: a read after %d quiet ones did not go direct", round, quietReads)
			}
		}
		if r.direct(64) {
			t.Fatal("64 reads in flight: direct, want the autopipeliner")
		}
	}
}
