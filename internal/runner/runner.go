// Package runner selects controls and runs Apply or Verify over them for the
// CLI and the Packer provisioner: one place decides what --only means, in
// which order controls run, and what a run records (timing, version,
// target, policy hash).
package runner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/version"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Select returns the controls named by only — control IDs or family names —
// in the order given by controls (apply order). An empty only selects all.
// A name that matches nothing is an error listing what exists, so a typo
// never silently selects nothing.
func Select(families []provision.Family, controls []provision.Control, only []string) ([]provision.Control, error) {
	if len(only) == 0 {
		return controls, nil
	}
	fams := map[string]bool{}
	for _, f := range families {
		fams[f.Name] = true
	}
	ids := map[string]bool{}
	for _, c := range controls {
		ids[c.ID()] = true
	}
	want := map[string]bool{}
	for _, o := range only {
		o = strings.TrimSpace(o)
		if !fams[o] && !ids[o] {
			return nil, fmt.Errorf("--only %q: no such control or family (families: %s; controls: %s)", o, keys(fams), keys(ids))
		}
		want[o] = true
	}
	var out []provision.Control
	for _, c := range controls {
		if want[c.ID()] || want[family(c.ID())] {
			out = append(out, c)
		}
	}
	return out, nil
}

// family is the part of a dotted control ID before the first dot.
func family(id string) string {
	f, _, _ := strings.Cut(id, ".")
	return f
}

func keys(m map[string]bool) string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return strings.Join(k, ", ")
}

// ControlChanges is what one control changed during Apply.
type ControlChanges struct {
	ID       string
	Changes  []host.Change
	Duration time.Duration
}

// ApplyReport is one Apply run, control by control, in run order.
type ApplyReport struct {
	Controls []ControlChanges
}

// Changed counts the controls that changed something.
func (r ApplyReport) Changed() int {
	n := 0
	for _, c := range r.Controls {
		if len(c.Changes) > 0 {
			n++
		}
	}
	return n
}

// Apply runs each control's Apply in order and stops at the first error,
// which names the control: later controls may depend on earlier ones, and
// a half-hardened host must not be reported as converged. The report holds
// what was changed up to the failure.
func Apply(ctx context.Context, h host.Host, controls []provision.Control) (ApplyReport, error) {
	var rep ApplyReport
	for _, c := range controls {
		before := len(h.Changes())
		start := time.Now()
		err := c.Apply(ctx, h)
		rep.Controls = append(rep.Controls, ControlChanges{ID: c.ID(), Changes: h.Changes()[before:], Duration: time.Since(start)})
		if err != nil {
			return rep, fmt.Errorf("apply stopped at control %s: %w", c.ID(), err)
		}
	}
	return rep, nil
}

// Verify runs each control's Verify and collects the findings, sorted by
// control and property so two runs diff cleanly. A control that returns no
// finding fails: a check that says nothing has proved nothing.
func Verify(ctx context.Context, h host.Host, controls []provision.Control, policyHash string) provision.Results {
	res := provision.Results{
		Tool: "bulwark", Version: version.Version, Target: h.Root(),
		PolicyHash: policyHash, Started: time.Now().UTC(),
	}
	for _, c := range controls {
		start := time.Now()
		fs := c.Verify(ctx, h)
		if len(fs) == 0 {
			fs = []provision.Finding{{
				ControlID: c.ID(), Title: c.Title(), Rows: c.Rows(), Property: "findings",
				Expected: "at least one", Actual: "none", Status: provision.Fail,
				Reason: "the control's Verify returned no findings", Duration: time.Since(start),
			}}
		}
		res.Findings = append(res.Findings, fs...)
	}
	sort.SliceStable(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if a.ControlID != b.ControlID {
			return a.ControlID < b.ControlID
		}
		return a.Property < b.Property
	})
	res.Finished = time.Now().UTC()
	return res
}
