package redistest

import "time"

// WaitFor calls cond every 20 ms until it returns nil or timeout has
// passed, and returns cond's last error.
//
// Use it after Restart or a failover, where a client recovers a little
// after the server does: a go-redis client whose dials failed while the
// server was down keeps answering with the last dial error until its pool's
// background redial succeeds (about a second).
func WaitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
