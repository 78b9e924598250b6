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
	// ID is stable and dotted: family.requirement, e.g. "ssh.daemon".
	ID() string
	Title() string
	// Rows are the framework rows this control serves, e.g. "SOC2:CC6",
	// "SOX:Network Security" (see policies/frameworks).
	Rows() []string
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

// Family builds a family's controls from the policy. Construction is where a
// family reads the policy, so Apply and Verify see the same values.
type Family struct {
	Name     string
	Controls func(p *policies.Policy) []Control
}
