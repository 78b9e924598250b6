package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
)

func TestStrengthPoints(t *testing.T) {
	const dict = "/usr/share/dict/words"
	s, err := NewStrength(policies.Passwords{Mode: "points", MinPoints: 50, Dictionary: dict})
	if err != nil {
		testutil.Skipf(t, "%v", err)
	}
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"password", false},
		{"Password1!", false},               // one word plus a few chars
		{"sunshinesunshine", false},         // two words
		{"correcthorsebatterystaple", true}, // four words
		{"Tr0ub4dor&3xQ", true},
		{"aaaaaaaa", false},
		{"", false},
	} {
		err := s.Check(tc.pw)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v (points %d), want ok=%v", tc.pw, err, s.Points(tc.pw), tc.ok)
		}
		if err != nil && !errors.Is(err, ErrWeak) {
			t.Errorf("Check(%q) error %v does not wrap ErrWeak", tc.pw, err)
		}
	}
}

func TestStrengthRegexAndBadPolicy(t *testing.T) {
	s, err := NewStrength(policies.Passwords{Mode: "regex", Regex: `^.{12,}$`})
	if err != nil {
		t.Fatal(err)
	}
	if s.Check("short") == nil || s.Check("long enough pass") != nil {
		t.Error("regex mode does not apply the regex")
	}
	for _, p := range []policies.Passwords{
		{Mode: "regex", Regex: "("},
		{Mode: "points", Dictionary: "/nonexistent/words"},
		{Mode: "bogus"},
	} {
		if _, err := NewStrength(p); err == nil {
			t.Errorf("NewStrength(%+v) accepted a broken policy", p)
		}
	}
}

func TestLimiterLocksAndBacksOff(t *testing.T) {
	l := NewLimiter(5, 15*time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	allowed := 0
	for i := range 1000 {
		at := now.Add(time.Duration(i) * 10 * time.Millisecond)
		if ok, _ := l.Allow(at, "addr:10.0.0.9"); ok {
			allowed++
			l.Fail(at, "addr:10.0.0.9")
		}
	}
	if allowed != 5 {
		t.Fatalf("1000 guesses in one window: %d reached the password check, want 5", allowed)
	}
	// After the first lock (15m) expires, 5 more, then a 30m lock.
	at := now.Add(16 * time.Minute)
	for range 5 {
		if ok, _ := l.Allow(at, "addr:10.0.0.9"); !ok {
			t.Fatal("refused after first lock expired")
		}
		l.Fail(at, "addr:10.0.0.9")
	}
	if ok, until := l.Allow(at.Add(20*time.Minute), "addr:10.0.0.9"); ok || until.Sub(at) != 30*time.Minute {
		t.Fatalf("second lockout: allowed=%v until +%s, want locked for 30m (doubled)", ok, until.Sub(at))
	}
}

func TestTOTP(t *testing.T) {
	secret, url, err := NewTOTP("bulwark", "alice")
	if err != nil || url == "" {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := TOTPCode(secret, now)
	if !CheckTOTP(secret, code, now) {
		t.Error("current code refused")
	}
	if CheckTOTP(secret, code, now.Add(5*time.Minute)) {
		t.Error("code accepted 5 minutes later")
	}
	if CheckTOTP(secret, "000000x", now) {
		t.Error("malformed code accepted")
	}
}

func TestBcrypt(t *testing.T) {
	h, err := HashPassword("correct horse", 4)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "correct horse") || CheckPassword(h, "wrong") {
		t.Error("bcrypt check wrong")
	}
}
