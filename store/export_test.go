package store

import "time"

// FieldRefreshSealed is the position (from 0) of the stored session's
// field where builds before the grace window's own key kept the sealed
// refresh secret.
const FieldRefreshSealed = pRefreshSealed

// SetCheckClock sets the clock Check compares the servers' with.
func SetCheckClock(r *Redis, now func() time.Time) { r.now = now }

// GlobEscape escapes what a SCAN MATCH or an ACL key or channel pattern
// gives a meaning.
var GlobEscape = globEscape
