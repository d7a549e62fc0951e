package sessionkit

import (
	"fmt"
	"net/netip"

	"github.com/google/uuid"

	"github.com/sessionkit/sessionkit/internal/clientip"
	"github.com/sessionkit/sessionkit/internal/sessionid"
)

const (
	maxActorLen    = 64
	maxReasonLen   = 128
	maxProviderLen = 64
	maxRefreshLen  = 128
)

func checkUser(field string, id uuid.UUID) error {
	if id == uuid.Nil {
		return invalid(field, "must not be the nil UUID")
	}
	return nil
}

// checkSessionID refuses an id no session can have with ErrNotFound, the
// answer for an unknown or foreign session: one answer for every command
// and query, so that no caller checks id formats itself.
func checkSessionID(id uuid.UUID) error {
	if !sessionid.Valid(id) {
		return ErrNotFound
	}
	return nil
}

// checkActor accepts an operator's label: empty, or 1..64 bytes of printable ASCII.
func checkActor(actor string) error {
	if actor == "" {
		return nil
	}
	return checkText("Actor", actor, maxActorLen)
}

// checkText accepts 1..max bytes of printable ASCII.
func checkText(field, s string, max int) error {
	if s == "" {
		return invalid(field, "must not be empty")
	}
	if len(s) > max {
		return invalid(field, fmt.Sprintf("longer than %d bytes", max))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return invalid(field, fmt.Sprintf("byte %d is not printable ASCII", i))
		}
	}
	return nil
}

// checkProvider accepts 1..64 bytes of letters, digits, '-', '_' and '.'.
func checkProvider(field, s string) error {
	if s == "" {
		return invalid(field, "must not be empty")
	}
	if len(s) > maxProviderLen {
		return invalid(field, fmt.Sprintf("longer than %d bytes", maxProviderLen))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalid(field, fmt.Sprintf("byte %d is not a letter, digit, '-', '_' or '.'", i))
		}
	}
	return nil
}

// parseIP returns the canonical address of s; empty is allowed when optional.
func parseIP(field, s string, optional bool) (netip.Addr, error) {
	if s == "" {
		if optional {
			return netip.Addr{}, nil
		}
		return netip.Addr{}, invalid(field, "must not be empty")
	}
	if len(s) > 128 {
		return netip.Addr{}, invalid(field, "longer than 128 bytes")
	}
	a, ok := clientip.Parse(s)
	if !ok {
		return netip.Addr{}, invalid(field, "is not an IP address")
	}
	return a, nil
}
