package accesstoken

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrInvalid reports a token that must not be accepted, for any reason.
	ErrInvalid = errors.New("accesstoken: invalid token")
	// ErrExpired reports a token past its "exp". It wraps ErrInvalid.
	ErrExpired = fmt.Errorf("%w: expired", ErrInvalid)
	// ErrBadKey reports a key NewKeySet does not accept.
	ErrBadKey = errors.New("accesstoken: unsupported key")
)

// invalid returns an ErrInvalid saying why.
func invalid(why string) error {
	return fmt.Errorf("%w: %s", ErrInvalid, why)
}

// badKey returns an ErrBadKey naming the key by its position.
func badKey(i int, why string) error {
	return fmt.Errorf("%w: key %d: %s", ErrBadKey, i, why)
}
