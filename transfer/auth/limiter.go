package auth

import (
	"net/netip"
	"sync"
	"time"
)

// Limiter is the brute-force guard. It is keyed by account and by source
// address; a key with LockoutAfter failures inside LockoutWindow is locked,
// and every further lockout of the same key doubles the lock (exponential
// back-off, capped at a day). A locked key is refused before the password is
// even checked, so a locked attacker learns nothing and costs no bcrypt.
//
// Its memory is bounded whatever an attacker sends: keys are short (the
// caller refuses over-long usernames before they get here), a key is
// forgotten once it is neither locked nor failing nor remembered for
// back-off (a day after its last lock), and at MaxKeys the least valuable
// entries go first (see evict). IPv6 sources are counted per prefix
// (SourceKey), since one host owns a whole /64.
type Limiter struct {
	After  int
	Window time.Duration
	// MaxKeys bounds the entries held (default DefaultMaxKeys).
	MaxKeys int

	mu        sync.Mutex
	keys      map[string]*keyState
	lastSweep time.Time
}

// DefaultMaxKeys is about 10 MiB of limiter state at most.
const DefaultMaxKeys = 50_000

// backoffMemory is how long a key that was locked is remembered after its
// lock ends, so that its next lockout doubles.
const backoffMemory = 24 * time.Hour

type keyState struct {
	failures    []time.Time
	lockedUntil time.Time
	lockouts    int
}

// NewLimiter returns a limiter for the policy's numbers.
func NewLimiter(after int, window time.Duration) *Limiter {
	return &Limiter{After: after, Window: window, MaxKeys: DefaultMaxKeys, keys: map[string]*keyState{}}
}

// SourceKey is the limiter key for a client address: IPv4 (and IPv4 mapped
// in IPv6) per address, other IPv6 per prefix of ipv6Bits, so an attacker
// rotating through the /64 their provider gave them counts as one source.
// Anything unparseable is its own key.
func SourceKey(addr string, ipv6Bits int) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "addr:" + addr
	}
	a = a.Unmap()
	if a.Is4() {
		return "addr:" + a.String()
	}
	p, err := a.WithZone("").Prefix(ipv6Bits)
	if err != nil {
		return "addr:" + a.String()
	}
	return "addr:" + p.String()
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
	l.sweep(now)
	locked := false
	for _, k := range keys {
		st := l.keys[k]
		if st == nil {
			if len(l.keys) >= l.MaxKeys {
				l.evict(now)
			}
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

// Len is the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// expired reports whether st can be forgotten at now: not locked, no
// failure inside the window, and any lock over for backoffMemory.
func (l *Limiter) expired(st *keyState, now time.Time) bool {
	if !st.lockedUntil.IsZero() && now.Before(st.lockedUntil.Add(backoffMemory)) {
		return false
	}
	return len(st.failures) == 0 || now.Sub(st.failures[len(st.failures)-1]) >= l.Window
}

// sweep forgets expired keys, at most once per window (amortised: a sweep
// costs one pass over at most MaxKeys entries).
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.Window {
		return
	}
	l.lastSweep = now
	for k, st := range l.keys {
		if l.expired(st, now) {
			delete(l.keys, k)
		}
	}
}

// evict makes room at MaxKeys by dropping one key: the first expired or
// unlocked one met (map order is random, so an attacker cannot choose
// which; losing an unlocked key gives at most After-1 more guesses on it),
// and only when every key is locked, the one whose lock ends first.
func (l *Limiter) evict(now time.Time) {
	var soonest string
	for k, st := range l.keys {
		if l.expired(st, now) || !now.Before(st.lockedUntil) {
			delete(l.keys, k)
			return
		}
		if soonest == "" || st.lockedUntil.Before(l.keys[soonest].lockedUntil) {
			soonest = k
		}
	}
	delete(l.keys, soonest)
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
