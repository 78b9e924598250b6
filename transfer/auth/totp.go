package auth

import (
	"crypto/fips140"
	"crypto/subtle"
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

// TOTPSkew is how many 30-second steps either side of the server's clock
// a code may come from: one, so a code is accepted for 60 to 90 seconds and
// a phone whose clock is up to 30 s off still works. Within that window
// each code is accepted once (the caller records the step).
const TOTPSkew = 1

// totpPeriod is RFC 6238's time step, in seconds.
const totpPeriod = 30

// MatchTOTP validates a code at t within TOTPSkew and returns the time step
// (Unix seconds / 30) it belongs to, so the caller can refuse that step a
// second time (RFC 6238 §5.2: a verifier must not accept a code twice).
// Every step in the window is computed and compared in constant time.
func MatchTOTP(secret, code string, t time.Time) (step int64, ok bool) {
	if len(code) != int(otp.DigitsSix) {
		return 0, false
	}
	now := t.Unix() / totpPeriod
	for s := now - TOTPSkew; s <= now+TOTPSkew; s++ {
		want, err := TOTPCode(secret, time.Unix(s*totpPeriod, 0))
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// TOTPCode returns the code for secret at t (enrolment checks and tests).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: TOTPAlgorithm()})
}
