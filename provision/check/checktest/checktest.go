// Package checktest holds what family tests share: running a family's
// controls against a root, breaking files inside it, and asserting on the
// findings Verify returns.
package checktest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// NewHost opens root as an offline (or, for "/", live) host.
func NewHost(t testing.TB, root string, opts ...host.Option) *host.Local {
	t.Helper()
	h, err := host.NewLocal(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Apply runs every control's Apply on a fresh host over root (opened with
// opts, e.g. host.DryRun()) and returns the host, so the caller can
// inspect what changed.
func Apply(t testing.TB, root string, cs []provision.Control, opts ...host.Option) *host.Local {
	t.Helper()
	h := NewHost(t, root, opts...)
	ApplyHost(t, h, cs)
	return h
}

// ApplyHost runs every control's Apply on h, which may be any host (a
// live one in a test's network namespace, say).
func ApplyHost(t testing.TB, h host.Host, cs []provision.Control) {
	t.Helper()
	for _, c := range cs {
		if err := c.Apply(context.Background(), h); err != nil {
			t.Fatalf("Apply %s: %v", c.Meta().ID, err)
		}
	}
}

// Verify runs every control's Verify.
func Verify(h host.Host, cs []provision.Control) []provision.Finding {
	var fs []provision.Finding
	for _, c := range cs {
		fs = append(fs, c.Verify(context.Background(), h)...)
	}
	return fs
}

// RequireOK fails the test for every finding that is not a pass (or a
// warning, when warnOK — e.g. signatures an offline image cannot have).
func RequireOK(t testing.TB, fs []provision.Finding, warnOK bool) {
	t.Helper()
	for _, f := range fs {
		if f.Status == provision.Pass || (warnOK && f.Status == provision.Warn) {
			continue
		}
		t.Errorf("%s %s: %s, actual %q: %s; evidence %s", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, EvidenceText(f))
	}
}

// Find returns the finding of control for property, failing if absent.
func Find(t testing.TB, fs []provision.Finding, control, property string) provision.Finding {
	t.Helper()
	for _, f := range fs {
		if f.ControlID == control && f.Property == property {
			return f
		}
	}
	t.Fatalf("no finding %s %q among %d", control, property, len(fs))
	return provision.Finding{}
}

// RequireBroken asserts the finding has status want (Fail, usually) and
// its evidence quotes what broke it.
func RequireBroken(t testing.TB, f provision.Finding, want provision.Status, evidence string) {
	t.Helper()
	if f.Status != want {
		t.Fatalf("%s %s = %s (actual %q, %s); want %s", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, want)
	}
	if ev := EvidenceText(f); !strings.Contains(ev, evidence) {
		t.Errorf("%s %s: evidence %q does not show %q", f.ControlID, f.Property, ev, evidence)
	}
}

// EvidenceText joins a finding's evidence as "source: read; …".
func EvidenceText(f provision.Finding) string {
	var s []string
	for _, e := range f.Evidence {
		s = append(s, e.Source+": "+e.Read)
	}
	return strings.Join(s, "; ")
}

// Write creates or replaces p inside root.
func Write(t testing.TB, root, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Edit replaces the first old with new in p, failing if old is absent.
func Edit(t testing.TB, root, p, old, new string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", p, old)
	}
	Write(t, root, p, strings.Replace(string(b), old, new, 1))
}

// Remove deletes p inside root if present.
func Remove(t testing.TB, root, p string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, p)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// Symlink makes p point at target inside root.
func Symlink(t testing.TB, root, target, p string) {
	t.Helper()
	Remove(t, root, p)
	if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
		t.Fatal(err)
	}
}

// ApplyTwice applies cs to a fresh tree twice: the first run must change
// something, the second nothing (idempotency). It returns the second host.
func ApplyTwice(t testing.TB, root string, cs []provision.Control) *host.Local {
	t.Helper()
	if h := Apply(t, root, cs); len(h.Changes()) == 0 {
		t.Fatal("first Apply changed nothing on a fresh Debian tree")
	}
	h := Apply(t, root, cs)
	if len(h.Changes()) != 0 {
		t.Fatalf("second Apply changed %v; want nothing", h.Changes())
	}
	return h
}

// Converge applies cs twice on root (see ApplyTwice), then every finding
// must pass.
func Converge(t testing.TB, root string, cs []provision.Control) {
	t.Helper()
	RequireOK(t, Verify(ApplyTwice(t, root, cs), cs), false)
}

// Breakage is one way to break a control and what Verify must then say.
type Breakage struct {
	Name     string
	Break    func(t *testing.T)
	Control  string // the control whose finding must fail
	Property string // that finding's property
	Evidence string // text its evidence must show
	// Status the finding must have; empty means provision.Fail (a
	// warning, for a breakage the control only warns about).
	Status provision.Status
	// Check, when set, makes further assertions on that finding.
	Check func(t *testing.T, f provision.Finding)
	// Cleanup undoes what Apply does not own (a foreign file bulwark must
	// not delete), before Apply repairs the rest.
	Cleanup func(t *testing.T)
}

// Rig is the system a family's breakages run on: how a run opens it, and
// what its repaired state may report.
type Rig struct {
	// Host opens a fresh host on the system; every Verify and Apply gets
	// its own, as every bulwark run does.
	Host func(t testing.TB) host.Host
	// Allow accepts a repaired finding that is not a pass (a reasoned
	// warning or not-applicable the test system cannot help); nil accepts
	// passes only.
	Allow func(f provision.Finding) bool
	// Repaired, when set, checks the changes the repairing Apply recorded.
	Repaired func(t *testing.T, changes []host.Change)
}

// Offline is the rig over an offline root: each run a fresh NewHost.
func Offline(root string) Rig {
	return Rig{Host: func(t testing.TB) host.Host { return NewHost(t, root) }}
}

// RequireBreakable runs each breakage as a subtest on the offline root:
// see RequireBreakableOn.
func RequireBreakable(t *testing.T, root string, cs []provision.Control, tests []Breakage) {
	RequireBreakableOn(t, Offline(root), cs, tests)
}

// RequireBreakableOn runs each breakage as a subtest on the rig: break,
// Verify must fail (or give the breakage's Status to) the named property
// of the named control with the evidence, then Apply repairs and every
// finding passes (or is one the rig allows) again.
func RequireBreakableOn(t *testing.T, r Rig, cs []provision.Control, tests []Breakage) {
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			tt.Break(t)
			f := Find(t, Verify(r.Host(t), cs), tt.Control, tt.Property)
			want := tt.Status
			if want == "" {
				want = provision.Fail
			}
			RequireBroken(t, f, want, tt.Evidence)
			if tt.Check != nil {
				tt.Check(t, f)
			}
			if tt.Cleanup != nil {
				tt.Cleanup(t)
			}
			h := r.Host(t)
			ApplyHost(t, h, cs)
			if r.Repaired != nil {
				r.Repaired(t, h.Changes())
			}
			r.RequireOK(t, Verify(h, cs))
		})
	}
}

// RequireOK is RequireOK with the rig's allowance: every finding passes or
// is one the rig allows.
func (r Rig) RequireOK(t testing.TB, fs []provision.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Status == provision.Pass || (r.Allow != nil && r.Allow(f)) {
			continue
		}
		t.Errorf("%s %s: %s, actual %q: %s; evidence %s", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, EvidenceText(f))
	}
}

// Append adds s to the end of p inside root.
func Append(t testing.TB, root, p, s string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	Write(t, root, p, string(b)+s)
}

// ApplyExpect applies cs on a fresh host over root; wantChanges says
// whether it must change something (first run, repair) or nothing (a
// converged tree).
func ApplyExpect(t testing.TB, root string, cs []provision.Control, wantChanges bool) {
	t.Helper()
	h := Apply(t, root, cs)
	if got := len(h.Changes()) > 0; got != wantChanges {
		t.Fatalf("Apply changed %v; want changes: %v", h.Changes(), wantChanges)
	}
}

// FindProperty returns the first finding for property, whatever its
// control, failing the test when there is none.
func FindProperty(t testing.TB, fs []provision.Finding, property string) provision.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Property == property {
			return f
		}
	}
	var have []string
	for _, f := range fs {
		have = append(have, f.Property)
	}
	t.Fatalf("no finding for %q; have %v", property, have)
	return provision.Finding{}
}

// Read returns p inside root.
func Read(t testing.TB, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
