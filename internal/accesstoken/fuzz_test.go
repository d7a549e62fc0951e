package accesstoken

import (
	"errors"
	"testing"
)

// FuzzVerify mutates genuine tokens. Whatever the input, Verify must not
// panic, must refuse with ErrInvalid, or must return the claims of a token
// the set minted: a signature cannot be moved onto other claims.
func FuzzVerify(f *testing.F) {
	ed, ec := newEd25519(f), newP256(f)
	edFirst, ecFirst := newKeySet(f, ed, ec), newKeySet(f, ec, ed)
	c := testClaims()
	f.Add(mint(f, edFirst, c))
	f.Add(mint(f, ecFirst, c))
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	opts := testOpts()
	f.Fuzz(func(t *testing.T, token string) {
		got, err := edFirst.Verify(token, opts)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an error wrapping ErrInvalid", err)
			}
			return
		}
		if got.Subject != c.Subject || got.SessionID != c.SessionID || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Fatalf("accepted %q with claims %+v, want only the minted claims %+v", token, got, c)
		}
	})
}
