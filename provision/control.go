// Package provision holds the control contract every hardening family
// implements, the Finding record every verifier emits, and the registry that
// lists the families. The families themselves live one package each beside
// this one (provision/ssh, provision/firewall, …), Apply and Verify side by
// side so the fix and the check cannot drift apart.
package provision

import (
	"context"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Control is one hardening requirement.
//
// Apply converges the host idempotently: every write goes through the host,
// which compares before it writes and records what changed, so a second
// Apply with the same policy changes nothing. Verify reads the host and
// returns at least one Finding; it never changes anything.
type Control interface {
	// Meta is the control's ID, title and framework rows.
	Meta() Meta
	Apply(ctx context.Context, h host.Host) error
	Verify(ctx context.Context, h host.Host) []Finding
}

// Alone is implemented by a control whose Verify must not overlap
// another's, because it drives a shared daemon whose answer (or speed)
// depends on what else is asking: the EICAR probe makes clamd scan. The
// runner verifies the others concurrently and these one at a time after.
type Alone interface {
	VerifyAlone() bool
}

// Family builds a family's controls from the policy and the run's stage.
// Construction is where a family reads them, so Apply and Verify see the
// same values.
type Family struct {
	Name     string
	Controls func(p *policies.Policy, s Stage) []Control
	// Risky marks a family whose change can cut off the administrator's
	// session (the firewall, sshd): apply refuses it from an SSH session
	// the policy's firewall would not admit, unless told otherwise.
	Risky bool
	// Snapshot, when set, journals live state the family changes outside
	// files, so a rollback restores it too: the kernel's copy of the
	// firewall table, sshd re-reading its restored config. It runs once,
	// before the family's first control, on a live host that keeps a
	// journal; the family owns both the snapshot and its undo.
	Snapshot func(ctx context.Context, h *host.Local, j *host.Journal, p *policies.Policy) error
}

// Snapshots is the runner's before-family hook for fams: each family's
// Snapshot, on a live host with a journal (an offline root has no kernel
// state or daemon to restore, and the snapshot files are written at their
// live paths).
func Snapshots(fams []Family, h *host.Local, p *policies.Policy) func(ctx context.Context, family string) error {
	return func(ctx context.Context, family string) error {
		j := h.Journal()
		if j == nil || !h.Live() {
			return nil
		}
		for _, f := range fams {
			if f.Name == family && f.Snapshot != nil {
				return f.Snapshot(ctx, h, j, p)
			}
		}
		return nil
	}
}

// RiskyOf lists, once each and in order, the risky families among names.
func RiskyOf(fams []Family, names []string) []string {
	risky := map[string]bool{}
	for _, f := range fams {
		risky[f.Name] = f.Risky
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if risky[n] && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
