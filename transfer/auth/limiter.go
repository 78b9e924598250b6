package auth

import (
	"sync"
	"time"
)

// Limiter is the brute-force guard. It is keyed by account and by source
// address; a key with LockoutAfter failures inside LockoutWindow is locked,
// and every further lockout of the same key doubles the lock (exponential
// back-off, capped at a day). A locked key is refused before the password is
// even checked, so a locked attacker learns nothing and costs no bcrypt.
type Limiter struct {
	After  int
	Window time.Duration

	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	failures    []time.Time
	lockedUntil time.Time
	lockouts    int
}

// NewLimiter returns a limiter for the policy's numbers.
func NewLimiter(after int, window time.Duration) *Limiter {
	return &Limiter{After: after, Window: window, keys: map[string]*keyState{}}
}

// Allow reports whether an attempt for every key may proceed at now, and if
// not, until when the first locked key stays locked.
func (l *Limiter) Allow(now time.Time, keys ...string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if st := l.keys[k]; st != nil && now.Before(st.lockedUntil) {
			return false, st.lockedUntil
		}
	}
	return true, time.Time{}
}

// Fail records a failed attempt against every key; it returns true if that
// locked any of them.
func (l *Limiter) Fail(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	locked := false
	for _, k := range keys {
		st := l.keys[k]
		if st == nil {
			st = &keyState{}
			l.keys[k] = st
		}
		st.failures = append(recent(st.failures, now, l.Window), now)
		if len(st.failures) >= l.After {
			lock := min(l.Window<<st.lockouts, 24*time.Hour)
			st.lockedUntil = now.Add(lock)
			st.lockouts++
			st.failures = nil
			locked = true
		}
	}
	return locked
}

// Succeed clears an account's failures (not the address's: one good
// password must not reset an address that is guessing other accounts).
func (l *Limiter) Succeed(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, account)
}

func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	out := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	return out
}
