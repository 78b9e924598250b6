package audit

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Throttle bounds the audit rows unauthenticated failures can write (bad
// download tokens, logins that fail, admin requests from outside the admin
// networks): without it every guessed token was a row, and an attacker
// could fill the disk through the audit table.
//
// Within one window, the first failure of each kind (event and reason)
// from each source is written in full; repeats are counted, and when the
// window ends one summary row per kind and source carries the count
// (field "repeated"). Past MaxKeys distinct (kind, source) pairs in a
// window, further sources share one "other" source per kind. So a window
// writes at most 2 × (MaxKeys + kinds) rows, whatever is sent: with the
// defaults (5 minutes, 50 pairs) and the dozen kinds transferd has, 124
// rows per 5 minutes, about 36 000 a day.
type Throttle struct {
	Window  time.Duration
	MaxKeys int

	mu      sync.Mutex
	start   time.Time
	tallies map[throttleKey]*tally
}

// Defaults for NewThrottle.
const (
	DefaultThrottleWindow = 5 * time.Minute
	DefaultMaxKeys        = 50
	// maxActors bounds the usernames a summary lists.
	maxActors = 10
)

// OtherSource is the source that sources past MaxKeys share.
const OtherSource = "other"

type throttleKey struct{ event, reason, source string }

type tally struct {
	repeated int
	actors   []string
}

// NewThrottle returns a throttle with the default window and source cap.
func NewThrottle() *Throttle {
	return &Throttle{Window: DefaultThrottleWindow, MaxKeys: DefaultMaxKeys}
}

// Note records failure e from source at now. It returns whether e is to be
// written (the first of its kind from that source in this window), and the
// summaries of a window that has ended, to be written as well.
func (t *Throttle) Note(now time.Time, source string, e Event) (write bool, due []Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	due = t.flushLocked(now)
	if t.tallies == nil {
		t.start, t.tallies = now, map[throttleKey]*tally{}
	}
	k := throttleKey{e.Event, fmt.Sprint(e.Fields["reason"]), source}
	if _, seen := t.tallies[k]; !seen && len(t.tallies) >= t.MaxKeys {
		k.source = OtherSource // the other-source tallies may pass MaxKeys, one per kind
	}
	tl := t.tallies[k]
	if tl == nil {
		t.tallies[k] = &tally{}
		return true, due
	}
	tl.repeated++
	if e.Actor != "" && len(tl.actors) < maxActors && !slices.Contains(tl.actors, e.Actor) {
		tl.actors = append(tl.actors, e.Actor)
	}
	return false, due
}

// Flush returns the summaries of the current window if it has ended by
// now (transferd calls it every window, so counts are written even when
// no further failure comes).
func (t *Throttle) Flush(now time.Time) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flushLocked(now)
}

func (t *Throttle) flushLocked(now time.Time) []Event {
	if t.tallies == nil || now.Sub(t.start) < t.Window {
		return nil
	}
	var out []Event
	for k, tl := range t.tallies {
		if tl.repeated == 0 {
			continue
		}
		f := map[string]any{"reason": k.reason, "repeated": tl.repeated,
			"window_start": t.start.UTC().Format(time.RFC3339), "window": t.Window.String()}
		if len(tl.actors) > 0 {
			slices.Sort(tl.actors)
			f["actors"] = tl.actors
		}
		out = append(out, Event{Event: k.event, Remote: k.source, Fields: f})
	}
	slices.SortFunc(out, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Event, b.Event), cmp.Compare(a.Remote, b.Remote), cmp.Compare(fmt.Sprint(a.Fields["reason"]), fmt.Sprint(b.Fields["reason"])))
	})
	t.tallies = nil
	return out
}
