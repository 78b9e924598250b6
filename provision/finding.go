package provision

import (
	"time"
)

// Status is a finding's verdict.
type Status string

const (
	// Pass: the property holds, with evidence.
	Pass Status = "pass"
	// Fail: the property does not hold, or could not be read (a missing
	// file or an unreadable unit is a failure, never a skip).
	Fail Status = "fail"
	// Warn: holds, but needs attention (e.g. stale signatures).
	Warn Status = "warn"
	// NotApplicable: cannot hold on this platform; Reason says why. Never
	// counted as a pass.
	NotApplicable Status = "not-applicable"
)

// Evidence is one thing a verifier read: where from, and what it saw.
type Evidence struct {
	Source string `json:"source"` // a path, a unit, a netlink table, a URL
	Read   string `json:"read"`   // the excerpt or value that was read
}

// Finding is the one record every verifier produces and every evidence
// writer (OSCAL, JUnit, XLSX, HTML, JSON) reads.
type Finding struct {
	ControlID string        `json:"control_id"`
	Title     string        `json:"title"`
	Rows      []string      `json:"rows"`
	Property  string        `json:"property"`
	Expected  string        `json:"expected"`
	Actual    string        `json:"actual"`
	Status    Status        `json:"status"`
	Reason    string        `json:"reason,omitempty"`
	Evidence  []Evidence    `json:"evidence,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
}

// Results is what `bulwark verify --format json` writes and `bulwark
// evidence` reads.
type Results struct {
	Tool       string    `json:"tool"`
	Version    string    `json:"version"`
	Target     string    `json:"target"` // "/" for the live host, else the root dir
	PolicyHash string    `json:"policy_sha256"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Findings   []Finding `json:"findings"`
}

// Failed reports whether any finding failed.
func (r Results) Failed() bool {
	for _, f := range r.Findings {
		if f.Status == Fail {
			return true
		}
	}
	return false
}
