//go:build linux

// Package rootfstest is what a family's offline tests share: apply and
// verify a set of controls on a copied Debian tree, find the finding a
// breakage must fail, and edit the tree the way an intruder or an operator
// would (directly, bypassing the host's change record).
package rootfstest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// NewHost is a fresh host on root, so its Changes are this step's alone.
func NewHost(t testing.TB, root string) *host.Local {
	t.Helper()
	h, err := host.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Apply applies every control in order, failing the test on an error.
func Apply(t testing.TB, ctx context.Context, cs []provision.Control, h host.Host) {
	t.Helper()
	for _, c := range cs {
		if err := c.Apply(ctx, h); err != nil {
			t.Fatalf("Apply %s: %v", c.ID(), err)
		}
	}
}

// Converge applies cs twice on root: the first must change something, the
// second nothing; then every finding must pass.
func Converge(t testing.TB, ctx context.Context, cs []provision.Control, root string) {
	t.Helper()
	h := NewHost(t, root)
	Apply(t, ctx, cs, h)
	if len(h.Changes()) == 0 {
		t.Fatal("first Apply changed nothing on a fresh Debian tree")
	}
	again := NewHost(t, root)
	Apply(t, ctx, cs, again)
	if len(again.Changes()) != 0 {
		t.Fatalf("second Apply changed %v; want nothing", again.Changes())
	}
	RequirePass(t, Verify(ctx, cs, again))
}

// Verify collects every control's findings.
func Verify(ctx context.Context, cs []provision.Control, h host.Host) []provision.Finding {
	var out []provision.Finding
	for _, c := range cs {
		out = append(out, c.Verify(ctx, h)...)
	}
	return out
}

// RequirePass reports every finding that did not pass.
func RequirePass(t testing.TB, fs []provision.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Status != provision.Pass {
			t.Errorf("%s %s: %s (%s) %s %v", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, f.Evidence)
		}
	}
}

// Breakage is one way to break a control and what Verify must then say.
type Breakage struct {
	Name     string
	Break    func(t *testing.T)
	Control  string // the control whose finding must fail
	Property string // that finding's property
	Evidence string // text its evidence must show
	// Cleanup undoes what Apply does not own (a foreign file bulwark must
	// not delete), before Apply repairs the rest.
	Cleanup func(t *testing.T)
}

// RequireBreakable runs each breakage as a subtest: break, Verify must
// fail the named property of the named control with the evidence, then
// Apply repairs and every finding passes again.
func RequireBreakable(t *testing.T, ctx context.Context, cs []provision.Control, root string, tests []Breakage) {
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			tt.Break(t)
			f := Find(t, Verify(ctx, cs, NewHost(t, root)), tt.Property)
			if f.Status != provision.Fail || f.ControlID != tt.Control {
				t.Fatalf("after breaking: %s %s = %s (%s); want %s fail", f.ControlID, f.Property, f.Status, f.Actual, tt.Control)
			}
			if ev := EvidenceText(f); !strings.Contains(ev, tt.Evidence) {
				t.Errorf("evidence %q does not show %q", ev, tt.Evidence)
			}
			if tt.Cleanup != nil {
				tt.Cleanup(t)
			}
			fix := NewHost(t, root)
			Apply(t, ctx, cs, fix)
			RequirePass(t, Verify(ctx, cs, fix))
		})
	}
}

// Find returns the finding for property, failing the test when none.
func Find(t testing.TB, fs []provision.Finding, property string) provision.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Property == property {
			return f
		}
	}
	t.Fatalf("no finding for %q", property)
	return provision.Finding{}
}

// EvidenceText flattens a finding's evidence for substring checks.
func EvidenceText(f provision.Finding) string {
	return checktest.EvidenceText(f)
}

// Edit replaces the first old with new in the tree's file p.
func Edit(t testing.TB, root, p, old, new string) {
	t.Helper()
	checktest.Edit(t, root, p, old, new)
}

// Append adds s to the end of the tree's file p.
func Append(t testing.TB, root, p, s string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	Write(t, root, p, string(b)+s)
}

// Write creates or replaces the tree's file p.
func Write(t testing.TB, root, p, s string) {
	t.Helper()
	checktest.Write(t, root, p, s)
}

// Remove deletes the tree's file p if present.
func Remove(t testing.TB, root, p string) {
	t.Helper()
	checktest.Remove(t, root, p)
}
