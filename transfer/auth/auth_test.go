package auth

import (
	"errors"
	"fmt"
	"runtime"
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

// guess makes n guesses, the i-th at at(i) against key(i), and returns
// how many the limiter let through to the password check (each fails).
func guess(l *Limiter, n int, at func(int) time.Time, key func(int) string) (allowed int) {
	for i := range n {
		if ok, _ := l.Allow(at(i), key(i)); ok {
			allowed++
			l.Fail(at(i), key(i))
		}
	}
	return allowed
}

func TestLimiterLocksAndBacksOff(t *testing.T) {
	l := NewLimiter(5, 15*time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	allowed := guess(l, 1000, func(i int) time.Time { return now.Add(time.Duration(i) * 10 * time.Millisecond) },
		func(int) string { return "addr:10.0.0.9" })
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

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7", "addr:192.0.2.7"},
		{"::ffff:192.0.2.7", "addr:192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "addr:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "addr:2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "addr:2001:db8:1:3::/64"},
		{"fe80::1%eth0", "addr:fe80::/64"},
		{"not-an-address", "addr:not-an-address"},
	} {
		if got := SourceKey(tc.addr, 64); got != tc.want {
			t.Errorf("SourceKey(%q, 64) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := SourceKey("2001:db8:1:2:aaaa::1", 48); got != "addr:2001:db8:1::/48" {
		t.Errorf("SourceKey at /48 = %q", got)
	}
}

// An attacker rotating through their /64 is one source: locked after
// After failures like a single address.
func TestLimiterIPv6Rotation(t *testing.T) {
	l := NewLimiter(5, 15*time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	allowed := guess(l, 1000, func(int) time.Time { return now },
		func(i int) string { return SourceKey(fmt.Sprintf("2001:db8:1:2::%x", i+1), 64) })
	if allowed != 5 {
		t.Fatalf("1000 guesses from 1000 addresses of one /64: %d reached the password check, want 5", allowed)
	}
}

// Entries expire: failures older than the window, and a lock a day after
// it ended (its back-off memory).
func TestLimiterForgets(t *testing.T) {
	l := NewLimiter(5, 15*time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.Fail(now, "addr:192.0.2.1")
	for range 5 {
		l.Fail(now, "addr:192.0.2.2") // locked for 15m
	}
	l.Fail(now.Add(16*time.Minute), "addr:192.0.2.3") // sweeps
	if l.Len() != 2 {
		t.Fatalf("after the window: %d keys, want 2 (the failing one gone, the locked one kept for back-off)", l.Len())
	}
	l.Fail(now.Add(15*time.Minute+backoffMemory+time.Minute), "addr:192.0.2.4")
	if l.Len() != 1 {
		t.Fatalf("a day after the lock: %d keys, want only the new one", l.Len())
	}
}

// 100,000 source addresses and usernames, each failing once inside one
// window (nothing expires): the limiter holds at most MaxKeys entries and
// its heap stays bounded; locked keys survive the churn.
func TestLimiterMemoryBounded(t *testing.T) {
	l := NewLimiter(5, 15*time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 5 {
		l.Fail(now, "user:victim") // locked
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 100_000
	for i := range n {
		at := now.Add(time.Duration(i) * time.Millisecond)
		l.Fail(at, fmt.Sprintf("user:guess-%d", i), SourceKey(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), 64))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("limiter after %d sources and usernames: %d keys (MaxKeys %d), heap grew %.1f MiB", n, l.Len(), l.MaxKeys, float64(grew)/(1<<20))
	if l.Len() > l.MaxKeys {
		t.Errorf("%d keys held, want at most %d", l.Len(), l.MaxKeys)
	}
	if grew > 32<<20 {
		t.Errorf("heap grew %d MiB for the limiter, want at most 32", grew>>20)
	}
	if ok, _ := l.Allow(now.Add(time.Minute), "user:victim"); ok {
		t.Error("the locked account was evicted by the churn")
	}
}
