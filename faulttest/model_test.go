package faulttest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit"
)

// state is what the model knows of one session.
type state int

const (
	stActive    state = iota // created, never the target of a finished revocation
	stRevoking               // a revocation of it is in flight
	stGone                   // its revocation found it already revoked by another, unrecorded operation
	stRevoked                // revoked, with the reason recorded by the operation that did it
	stUncertain              // its revocation failed with ErrUnavailable: it may or may not have applied
)

// tracked is one session the model created.
type tracked struct {
	id, user uuid.UUID
	token    string
	st       state
	reason   string
	// revokedAt is when the operation that revoked it reported (stRevoked).
	revokedAt time.Time
}

// model mirrors, from the results the Manager returned, which sessions must
// be active and which revoked (and why). Each revocation is attributed to
// exactly the one operation that reported it, so the model stays exact
// however operations on one user interleave. Its methods are safe for
// concurrent use.
type model struct {
	mu      sync.Mutex
	list    []*tracked
	byID    map[uuid.UUID]*tracked
	created int
	revoked int // revocations recorded, evictions included
	// failedLogins counts logins that failed with ErrUnavailable: each may
	// have created a session the model never saw (its reply was lost).
	failedLogins int
	problems     []string
	// refusedEarly are sessions refused as revoked while the model still held
	// them active: legal only if a concurrent operation revoked them, which
	// settle checks once every operation has reported.
	refusedEarly []uuid.UUID
	// early holds revocations reported before the login that created the
	// session reported (a concurrent revoke-all or eviction can win that
	// race); addCreated applies them.
	early map[uuid.UUID]string
}

func newModel() *model {
	return &model{byID: map[uuid.UUID]*tracked{}, early: map[uuid.UUID]string{}}
}

// problem records an invariant violation; at most 50 are kept.
func (m *model) problem(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.problemLocked(format, args...)
}

func (m *model) problemLocked(format string, args ...any) {
	if len(m.problems) < 50 {
		m.problems = append(m.problems, fmt.Sprintf(format, args...))
	}
}

// addCreated records a login and the sessions it evicted.
func (m *model) addCreated(res sessionkit.CreateSessionResult) *tracked {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &tracked{id: res.Session.ID, user: res.Session.UserID, token: res.Token}
	if _, dup := m.byID[s.id]; dup {
		m.problemLocked("session %s created twice", s.id)
	}
	m.list = append(m.list, s)
	m.byID[s.id] = s
	m.created++
	if reason, ok := m.early[s.id]; ok {
		delete(m.early, s.id)
		s.st, s.reason, s.revokedAt = stRevoked, reason, time.Now()
		m.revoked++
	}
	for _, id := range res.Evicted {
		m.recordRevokedLocked(id, sessionkit.ReasonLimitExceeded, "eviction")
	}
	return s
}

// loginFailed records a login that failed with ErrUnavailable.
func (m *model) loginFailed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failedLogins++
}

// recordRevokedLocked records that one operation revoked id for reason.
func (m *model) recordRevokedLocked(id uuid.UUID, reason, by string) {
	s, ok := m.byID[id]
	if !ok {
		if _, dup := m.early[id]; dup {
			m.problemLocked("session %s revoked twice before its login reported (%s)", id, by)
		}
		m.early[id] = reason
		return
	}
	if s.st == stRevoked {
		m.problemLocked("session %s revoked twice: %s (%s), then %s (%s)", id, s.reason, "earlier", reason, by)
		return
	}
	s.st, s.reason, s.revokedAt = stRevoked, reason, time.Now()
	m.revoked++
}

// pick returns a random session, or nil when there is none.
func (m *model) pick(r *rand.Rand) *tracked {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.list) == 0 {
		return nil
	}
	return m.list[r.IntN(len(m.list))]
}

// pickLive returns a random session, preferring active ones: it draws up to
// four times and returns the first active draw, else the last.
func (m *model) pickLive(r *rand.Rand) *tracked {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.list) == 0 {
		return nil
	}
	var s *tracked
	for range 4 {
		if s = m.list[r.IntN(len(m.list))]; s.st == stActive {
			break
		}
	}
	return s
}

// revokedSince returns how long ago s's revocation was reported, and
// whether it was.
func (m *model) revokedSince(s *tracked) (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.st != stRevoked {
		return 0, false
	}
	return time.Since(s.revokedAt), true
}

// stateOf returns s's state and reason now.
func (m *model) stateOf(s *tracked) (state, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return s.st, s.reason
}

// beginRevoke marks s as being revoked if it is active and reports whether it was.
func (m *model) beginRevoke(s *tracked) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.st != stActive {
		return false
	}
	s.st = stRevoking
	return true
}

// endRevoke records the outcome of RevokeSession on s, begun with beginRevoke.
// It returns false for an outcome the model cannot explain.
func (m *model) endRevoke(s *tracked, reason string, err error) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch kind(err) {
	case "ok":
		if s.st != stRevoking {
			m.problemLocked("session %s: RevokeSession succeeded, but it was already %v (%s)", s.id, s.st, s.reason)
			return false
		}
		m.recordRevokedLocked(s.id, reason, "RevokeSession")
	case "not_found":
		// Another operation (an eviction or a revoke-all) revoked it first
		// and has not reported yet, or has reported: either way it records the reason.
		if s.st == stRevoking {
			s.st = stGone
		}
	case "unavailable":
		if s.st == stRevoking {
			s.st = stUncertain
		}
	default:
		if s.st == stRevoking {
			s.st = stUncertain
		}
		return false
	}
	return true
}

// revokedAll records the sessions RevokeAllUserSessions reported.
func (m *model) revokedAll(ids []uuid.UUID, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.recordRevokedLocked(id, reason, "RevokeAllUserSessions")
	}
}

// checkAuth judges one Authenticate of s: before is s's state when the call
// began. It records a problem and returns false for a wrong answer; errors
// other than success and revocation are left to the caller.
func (m *model) checkAuth(s *tracked, before state, err error) bool {
	switch kind(err) {
	case "ok":
		if before == stRevoked || before == stGone {
			m.problem("session %s was served after its revocation had been acknowledged", s.id)
			return false
		}
	case "revoked":
		m.mu.Lock()
		if s.st == stActive {
			m.refusedEarly = append(m.refusedEarly, s.id)
		}
		m.mu.Unlock()
	case "not_found":
		m.problem("session %s: Authenticate said not found for a session that exists: %v", s.id, err)
		return false
	}
	return true
}

// settle checks, once every operation has reported, that no session is left
// in an unexplained state and that every early refusal was explained by a
// revocation.
func (m *model) settle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range m.refusedEarly {
		if s := m.byID[id]; s.st == stActive {
			m.problemLocked("session %s was refused as revoked, but no operation revoked it", id)
		}
	}
	m.refusedEarly = nil
	for id := range m.early {
		m.problemLocked("session %s: revoked by an operation, but no login reported creating it", id)
	}
	for _, s := range m.list {
		switch s.st {
		case stRevoking:
			m.problemLocked("session %s: a revocation never reported", s.id)
		case stGone:
			m.problemLocked("session %s: RevokeSession found it revoked, but no operation reported revoking it", s.id)
		}
	}
}

// counts returns the sessions the model holds active, revoked and uncertain.
func (m *model) counts() (active, revoked, uncertain int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.list {
		switch s.st {
		case stActive:
			active++
		case stRevoked:
			revoked++
		case stUncertain:
			uncertain++
		}
	}
	return
}

// snapshotList returns a copy of every tracked session with its state.
func (m *model) snapshotList() []tracked {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]tracked, len(m.list))
	for i, s := range m.list {
		out[i] = *s
	}
	return out
}

// report returns the recorded problems, one a line.
func (m *model) report() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.problems, "\n")
}

// counter counts outcomes by operation and error class. Safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(op string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op+":"+kind(err)]++
}

func (c *counter) get(op, k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op+":"+k]
}

// total returns the number of operations counted.
func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// String lists the counts, sorted.
func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := make([]string, 0, len(c.n))
	for k, v := range c.n {
		lines = append(lines, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, " ")
}

func (s state) String() string {
	switch s {
	case stActive:
		return "active"
	case stRevoking:
		return "revoking"
	case stGone:
		return "gone"
	case stRevoked:
		return "revoked"
	case stUncertain:
		return "uncertain"
	}
	return "?"
}
