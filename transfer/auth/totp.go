package auth

import (
	"crypto/fips140"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTPAlgorithm is the HMAC hash for TOTP: SHA-1, which every
// authenticator app implements, except when Go enforces FIPS 140-only mode
// (GODEBUG=fips140=only), where HMAC-SHA-1 panics; there it is SHA-256
// (RFC 6238 allows it; the otpauth URL says so, and apps that ignore the
// parameter cannot be used in that mode). Enrol and check in the same mode.
func TOTPAlgorithm() otp.Algorithm {
	if fips140.Enforced() {
		return otp.AlgorithmSHA256
	}
	return otp.AlgorithmSHA1
}

// NewTOTP enrols a TOTP secret (RFC 6238, 30 s, 6 digits). It returns the
// secret and the otpauth URL for a QR code.
func NewTOTP(issuer, account string) (secret, url string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Algorithm: TOTPAlgorithm()})
	if err != nil {
		return "", "", fmt.Errorf("auth: generate TOTP for %q: %w", account, err)
	}
	return k.Secret(), k.URL(), nil
}

// CheckTOTP validates a code at t, allowing one step of clock skew.
func CheckTOTP(secret, code string, t time.Time) bool {
	ok, err := totp.ValidateCustom(code, secret, t, totp.ValidateOpts{
		Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: TOTPAlgorithm(),
	})
	return err == nil && ok
}

// TOTPCode returns the code for secret at t (enrolment checks and tests).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: TOTPAlgorithm()})
}
