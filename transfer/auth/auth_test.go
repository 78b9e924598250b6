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
	now := time.Unix(1_800_000_015, 0) // mid-step, so ±30 s is one step away
	step := now.Unix() / 30
	codeAt := func(d time.Duration) string {
		c, err := TOTPCode(secret, now.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		code     string
		wantOK   bool
		wantStep int64
	}{
		{"current step", codeAt(0), true, step},
		{"one step behind (skew)", codeAt(-30 * time.Second), true, step - 1},
		{"one step ahead (skew)", codeAt(30 * time.Second), true, step + 1},
		{"two steps behind", codeAt(-60 * time.Second), false, 0},
		{"five minutes later", codeAt(5 * time.Minute), false, 0},
		{"malformed", "000000x", false, 0},
		{"too short", codeAt(0)[:5], false, 0},
		{"empty", "", false, 0},
	} {
		got, ok := MatchTOTP(secret, tc.code, now)
		if ok != tc.wantOK || got != tc.wantStep {
			t.Errorf("%s: MatchTOTP = step %d, %v; want step %d, %v", tc.name, got, ok, tc.wantStep, tc.wantOK)
		}
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
