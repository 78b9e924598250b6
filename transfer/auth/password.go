// Package auth is transferd's identity layer: bcrypt password hashes, the
// password strength policy (points with a dictionary check, or a regex),
// TOTP second factors, brute-force lockout, and roles.
package auth

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Roles, from most to least privileged.
const (
	RoleSysadmin = "sysadmin"
	RoleAdmin    = "admin"
	RoleUser     = "user"
)

// ValidRole reports whether r is one of the three roles.
func ValidRole(r string) bool { return r == RoleSysadmin || r == RoleAdmin || r == RoleUser }

// IsAdmin reports whether a role may use the admin API.
func IsAdmin(r string) bool { return r == RoleSysadmin || r == RoleAdmin }

// HashPassword returns a bcrypt hash. bcrypt is not a FIPS 140-3 approved
// algorithm; Go enforces approved-only algorithms only with
// GODEBUG=fips140=only, so under fips140=on it keeps working. Password
// hashing is authentication-at-rest, not data protection, and is listed as a
// non-approved use in the FIPS notes of the report.
func HashPassword(pw string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword compares in constant time (bcrypt does).
func CheckPassword(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// ErrWeak is wrapped by every password policy refusal.
var ErrWeak = errors.New("password does not meet the policy")

// Strength checks passwords against policies.Passwords.
type Strength struct {
	mode      string
	minPoints int
	re        *regexp.Regexp
	words     map[string]bool
}

// NewStrength loads the dictionary (points mode) or compiles the regex.
func NewStrength(p policies.Passwords) (*Strength, error) {
	s := &Strength{mode: p.Mode, minPoints: p.MinPoints}
	switch p.Mode {
	case "regex":
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return nil, fmt.Errorf("auth: passwords.regex %q: %w", p.Regex, err)
		}
		s.re = re
	case "points":
		words, err := loadWords(p.Dictionary)
		if err != nil {
			return nil, err
		}
		s.words = words
	default:
		return nil, fmt.Errorf("auth: passwords.mode %q: want points or regex", p.Mode)
	}
	return s, nil
}

// loadWords reads a word list (Debian's wamerican: /usr/share/dict/words),
// keeping lower-cased ASCII words of 4+ letters.
func loadWords(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: passwords.dictionary: %w (apt-get install wamerican)", err)
	}
	defer f.Close()
	words := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.ToLower(strings.TrimSpace(sc.Text()))
		if len(w) >= 4 && strings.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) < 0 {
			words[w] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read dictionary %s: %w", path, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("auth: dictionary %s has no words", path)
	}
	return words, nil
}

// Check returns nil or an error wrapping ErrWeak that says why.
func (s *Strength) Check(pw string) error {
	if s.re != nil {
		if !s.re.MatchString(pw) {
			return fmt.Errorf("%w: must match %s", ErrWeak, s.re)
		}
		return nil
	}
	if p := s.Points(pw); p < s.minPoints {
		return fmt.Errorf("%w: scores %d points, needs %d (longer, mixed character classes, fewer dictionary words)", ErrWeak, p, s.minPoints)
	}
	return nil
}

// Points estimates strength in bits: each dictionary word found counts as
// one pick from the dictionary (log2 of its size), every other character
// as one pick from the character classes the password uses.
func (s *Strength) Points(pw string) int {
	perChar := math.Log2(float64(charset(pw)))
	perWord := math.Log2(float64(len(s.words)))
	lower := strings.ToLower(pw)
	var bits float64
	for i := 0; i < len(lower); {
		if n := s.longestWord(lower[i:]); n > 0 {
			bits += perWord
			i += n
			continue
		}
		bits += perChar
		i++
	}
	return int(bits)
}

func (s *Strength) longestWord(p string) int {
	for n := min(len(p), 24); n >= 4; n-- {
		if s.words[p[:n]] {
			return n
		}
	}
	return 0
}

func charset(pw string) int {
	var lower, upper, digit, other bool
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	n := 0
	for _, c := range []struct {
		on   bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 33}} {
		if c.on {
			n += c.size
		}
	}
	return max(n, 2)
}
