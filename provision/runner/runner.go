// Package runner selects controls and runs Apply or Verify over them for the
// CLI and the Packer provisioner: one place decides what --only means, in
// which order controls run, and what a run records (timing, version,
// target, policy hash).
package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
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
		ids[c.Meta().ID] = true
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
		if id := c.Meta().ID; want[id] || want[family(id)] {
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
	return ApplyWith(ctx, h, controls, Options{})
}

// Options adjust ApplyWith.
type Options struct {
	// BeforeFamily runs once before the first control of each family, on
	// hosts that are really changed: the place to journal state the host
	// does not mediate (a kernel ruleset, a daemon to reload on rollback).
	BeforeFamily func(ctx context.Context, family string) error
}

// journaled is a host that keeps a journal of before-states.
type journaled interface{ Journal() *host.Journal }

// ApplyWith is Apply, transactional per control when the host keeps a
// journal: a control that fails has its own changes rolled back before the
// run stops, so the host is left as the previous controls made it. The
// journal ends "complete" or "failed".
func ApplyWith(ctx context.Context, h host.Host, controls []provision.Control, o Options) (ApplyReport, error) {
	var j *host.Journal
	if jh, ok := h.(journaled); ok {
		j = jh.Journal()
	}
	var rep ApplyReport
	seen := map[string]bool{}
	for _, c := range controls {
		id := c.Meta().ID
		if j != nil {
			j.Begin(id)
		}
		if fam := family(id); !seen[fam] && o.BeforeFamily != nil && !h.DryRun() {
			seen[fam] = true
			if err := o.BeforeFamily(ctx, fam); err != nil {
				return rep, finish(j, fmt.Errorf("apply stopped before control %s: %w", id, err))
			}
		}
		before := len(h.Changes())
		start := time.Now()
		err := c.Apply(ctx, h)
		rep.Controls = append(rep.Controls, ControlChanges{ID: id, Changes: h.Changes()[before:], Duration: time.Since(start)})
		if err != nil {
			return rep, finish(j, rollbackControl(ctx, h, j, id, err))
		}
	}
	return rep, finish(j, nil)
}

// rollbackControl undoes the failed control's journalled changes and says
// so in the error; a rollback that itself fails is reported too.
func rollbackControl(ctx context.Context, h host.Host, j *host.Journal, id string, cause error) error {
	err := fmt.Errorf("apply stopped at control %s: %w", id, cause)
	if j == nil {
		return err
	}
	run, ok := h.(interface {
		Run(ctx context.Context, argv []string) error
	})
	if !ok {
		return fmt.Errorf("%w; cannot roll back: host has no command runner", err)
	}
	undone, rbErr := j.Rollback(ctx, id, run.Run)
	if rbErr != nil {
		return fmt.Errorf("%w; rolling back %s failed after %d undos: %v (journal %s)", err, id, len(undone), rbErr, j.ID())
	}
	return fmt.Errorf("%w; rolled back %d change(s) of %s (journal %s)", err, len(undone), id, j.ID())
}

func finish(j *host.Journal, err error) error {
	if j == nil {
		return err
	}
	state := host.StateComplete
	if err != nil {
		state = host.StateFailed
	}
	if serr := j.SetState(state); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}
