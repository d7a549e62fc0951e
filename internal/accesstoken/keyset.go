package accesstoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// KeySet holds the keys that sign and verify access tokens. The first key
// signs new tokens; every key verifies. A KeySet is immutable and safe for
// concurrent use.
//
// To rotate, build a new KeySet with the new key first and the old key
// after it, and switch to it (for example through an atomic.Pointer); keep
// the old key until the last token it signed has expired, then build a set
// without it. Publish [KeySet.JWKS] before the new key starts signing if
// other services verify the tokens.
type KeySet struct {
	keys   []key // keys[0] signs
	signer jose.Signer
	jwks   []byte
	cache  *cache
}

// key is one verification key with its algorithm pinned.
type key struct {
	kid    string
	alg    jose.SignatureAlgorithm
	algs   []jose.SignatureAlgorithm // []{alg}: the allow-list handed to go-jose
	public crypto.PublicKey          // ed25519.PublicKey or *ecdsa.PublicKey
}

// NewKeySet returns a KeySet whose first key signs and whose keys all
// verify. It accepts ed25519.PrivateKey (alg EdDSA) and *ecdsa.PrivateKey
// on P-256 (alg ES256), and refuses with an error wrapping ErrBadKey any
// other key (RSA, other curves, opaque signers such as HSM handles), nil,
// a malformed key, the same key twice, or no key at all.
//
// Each key's "kid" is its RFC 7638 JWK thumbprint (SHA-256, base64url), so
// it is stable across restarts and identical on every server.
func NewKeySet(keys ...crypto.Signer) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrBadKey)
	}
	ks := &KeySet{keys: make([]key, 0, len(keys)), cache: newCache()}
	for i, s := range keys {
		k, err := newKey(i, s)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(ks.keys, func(o key) bool { return o.kid == k.kid }) {
			return nil, badKey(i, "duplicate of an earlier key")
		}
		ks.keys = append(ks.keys, k)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: ks.keys[0].alg, Key: keys[0]},
		(&jose.SignerOptions{}).WithType(headerType).WithHeader("kid", ks.keys[0].kid),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: key 0: %w", ErrBadKey, err)
	}
	ks.signer = signer
	if ks.jwks, err = marshalJWKS(ks.keys); err != nil {
		return nil, fmt.Errorf("accesstoken: jwks: %w", err)
	}
	return ks, nil
}

// newKey checks one private key and derives its public half, algorithm
// and kid.
func newKey(i int, s crypto.Signer) (key, error) {
	var k key
	switch priv := s.(type) {
	case nil:
		return key{}, badKey(i, "nil")
	case ed25519.PrivateKey:
		if len(priv) != ed25519.PrivateKeySize {
			return key{}, badKey(i, "ed25519 key of the wrong length")
		}
		k.alg, k.public = jose.EdDSA, priv.Public()
	case *ecdsa.PrivateKey:
		if priv == nil || priv.Curve != elliptic.P256() {
			return key{}, badKey(i, "ecdsa key not on P-256")
		}
		// Bytes checks the scalar and the point, but panics on nil parts.
		//lint:ignore SA1019 only a nil check, before Bytes reads D
		if priv.X == nil || priv.Y == nil || priv.D == nil {
			return key{}, badKey(i, "ecdsa key with nil parts")
		}
		if _, err := priv.Bytes(); err != nil {
			return key{}, fmt.Errorf("%w: key %d: %w", ErrBadKey, i, err)
		}
		k.alg, k.public = jose.ES256, priv.Public()
	default:
		return key{}, badKey(i, fmt.Sprintf("%T: want ed25519.PrivateKey or *ecdsa.PrivateKey on P-256", s))
	}
	if err := selfTest(s, k.public); err != nil {
		return key{}, fmt.Errorf("%w: key %d: %w", ErrBadKey, i, err)
	}
	k.algs = []jose.SignatureAlgorithm{k.alg}
	tp, err := (&jose.JSONWebKey{Key: k.public}).Thumbprint(crypto.SHA256)
	if err != nil {
		return key{}, fmt.Errorf("%w: key %d: thumbprint: %w", ErrBadKey, i, err)
	}
	k.kid = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// selfTest signs and verifies a message, so that a private key whose public
// half does not match it is refused at start-up rather than minting tokens
// nobody can verify.
func selfTest(s crypto.Signer, pub crypto.PublicKey) error {
	msg := []byte("accesstoken self-test")
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			return errors.New("private and public halves do not match")
		}
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("private and public halves do not match")
		}
	}
	return nil
}

// marshalJWKS encodes the public keys as an RFC 7517 JWK Set.
func marshalJWKS(keys []key) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = jose.JSONWebKey{Key: k.public, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
	}
	return json.Marshal(set)
}

// JWKS returns the public keys as a JSON Web Key Set (RFC 7517), each with
// "kid", "alg" and "use": "sig", in the set's order (the signing key
// first). It never holds private material, so it can be served on a public
// route (conventionally /.well-known/jwks.json). The bytes are encoded
// once, by NewKeySet; each call returns a fresh copy.
func (k *KeySet) JWKS() []byte {
	return slices.Clone(k.jwks)
}

// lookup returns the key named kid.
func (k *KeySet) lookup(kid string) (*key, bool) {
	for i := range k.keys {
		if k.keys[i].kid == kid {
			return &k.keys[i], true
		}
	}
	return nil, false
}
