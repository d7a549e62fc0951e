package middleware

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/sessionkit/sessionkit"
)

// IPPolicy says what the middleware does when a session is used from a new
// client address.
type IPPolicy int

const (
	// IPFlag accepts the request and flags it: the Manager records the new
	// address, counts the change and emits an ip_changed event to the audit
	// trail and the hooks, and IPChanged(ctx) reports it to the handler.
	// It is the default.
	IPFlag IPPolicy = iota
	// IPAllow ignores client addresses: the middleware passes none to the
	// Manager, so nothing is compared, recorded or flagged, and the session
	// keeps its sign-in address as last_ip_address.
	IPAllow
	// IPRevoke revokes the session with reason "ip_changed" and refuses the
	// request with 401 session_revoked. The change is recorded, and the
	// session revoked, in one step (Manager.AuthenticateWith): if that
	// fails (503), neither happened, and the next request from the address
	// is refused in turn; requests from the address racing this one are
	// refused too.
	IPRevoke
)

// String returns the policy's name.
func (p IPPolicy) String() string {
	switch p {
	case IPFlag:
		return "flag"
	case IPAllow:
		return "allow"
	case IPRevoke:
		return "revoke"
	}
	return "unknown"
}

// IPChange describes a session used from a new client address.
type IPChange struct {
	Previous, Current netip.Addr
	// PreviousCountry and Country are ISO codes; empty without GeoIP.
	PreviousCountry, Country string
	// CountryChanged is true when both countries are known and differ.
	CountryChanged bool
}

// IPDecision lets the app decide, per request, what an address change
// means: it returns IPFlag, IPAllow (accept without flagging; the Manager
// records the change all the same) or IPRevoke. It runs on the request
// path, before the change is recorded (Manager.AuthenticateWith), and must
// be quick: s is the session as it will be, with the new address and its
// location. Concurrent requests from the new address are each decided.
type IPDecision func(r *http.Request, s sessionkit.Session, c IPChange) IPPolicy

type ipChangeKey struct{}

// IPChanged reports whether the middleware flagged the request's session
// as used from a new address, and the change.
func IPChanged(ctx context.Context) (IPChange, bool) {
	c, ok := ctx.Value(ipChangeKey{}).(*IPChange)
	if !ok {
		return IPChange{}, false
	}
	return *c, true
}

func withIPChange(ctx context.Context, c IPChange) context.Context {
	return context.WithValue(ctx, ipChangeKey{}, &c)
}
