// Package token makes and checks download-link tokens: 384 random bits from
// crypto/rand, written as 64 base64url characters. Only the SHA-256 of a
// token is stored, so a database leak does not leak working links.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

// Bytes is the entropy of one token: 384 bits.
const Bytes = 48

// Len is the length of a token's text form.
var Len = base64.RawURLEncoding.EncodedLen(Bytes)

// ErrInvalid is returned for anything that is not a well-formed token.
var ErrInvalid = errors.New("invalid token")

// Hash is what the database stores for a token.
type Hash [sha256.Size]byte

// New returns a fresh token and its hash.
func New() (string, Hash, error) {
	var b [Bytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Hash{}, fmt.Errorf("token: read crypto/rand: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), sha256.Sum256(b[:]), nil
}

// Parse checks a token's form and returns its hash. It never says which
// part was wrong: to a caller every bad token looks the same.
func Parse(s string) (Hash, error) {
	if len(s) != Len {
		return Hash{}, ErrInvalid
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != Bytes {
		return Hash{}, ErrInvalid
	}
	return sha256.Sum256(b), nil
}

// Equal compares two hashes in constant time. The database lookup is by
// hash already; comparing again here keeps the final decision free of
// timing differences even if the lookup ever becomes a prefix scan.
func Equal(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }
