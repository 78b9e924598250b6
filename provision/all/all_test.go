package all

import (
	"slices"
	"testing"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/policies/frameworks"
	"github.com/bulwark-appliance/bulwark/provision"
)

// TestRegistry holds every family to the contract the CLI, the verifier and
// the evidence writers rely on: named families, every control with an ID
// and a title, IDs unique across families, and every framework row a
// control names present in the catalogues. It is trivially true while no
// family is registered and bites as families land.
func TestRegistry(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatalf("default policy: %v", err)
	}
	cats, err := frameworks.Load()
	if err != nil {
		t.Fatalf("catalogues: %v", err)
	}
	families := map[string]bool{}
	owner := map[string]string{} // control ID -> family
	for _, f := range Families() {
		if f.Name == "" || f.Controls == nil {
			t.Errorf("family %q: needs a Name and a Controls constructor", f.Name)
			continue
		}
		if families[f.Name] {
			t.Errorf("family %q is registered twice", f.Name)
		}
		families[f.Name] = true
		for _, c := range f.Controls(p, provision.Instance) {
			checkControl(t, f.Name, c, cats, owner)
		}
	}
}

func checkControl(t *testing.T, family string, c provision.Control, cats []*frameworks.Catalogue, owner map[string]string) {
	t.Helper()
	id := c.Meta().ID
	switch {
	case id == "":
		t.Errorf("family %s: a control has an empty ID (title %q)", family, c.Meta().Title)
		return
	case c.Meta().Title == "":
		t.Errorf("control %s (family %s): empty title", id, family)
	}
	if other, dup := owner[id]; dup {
		t.Errorf("control ID %s is used by family %s and family %s", id, other, family)
	}
	owner[id] = family
	for _, key := range c.Meta().Rows {
		if _, _, ok := frameworks.Lookup(cats, key); !ok {
			t.Errorf("control %s names row %q, which no catalogue holds (want e.g. SOC2:CC6, SOX:Network Security)", id, key)
		}
	}
}

// TestControlsHonoursPolicy: Controls returns every registered control by
// default, and a control the policy disables is left out.
func TestControlsHonoursPolicy(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var registered int
	for _, f := range Families() {
		registered += len(f.Controls(p, provision.Instance))
	}
	got := Controls(p, provision.Instance)
	if len(got) != registered {
		t.Fatalf("default policy: %d controls, want all %d registered", len(got), registered)
	}
	if len(got) == 0 {
		return // nothing registered yet
	}
	off := got[0].Meta().ID
	p.Controls.Disabled = []string{off}
	for _, c := range Controls(p, provision.Instance) {
		if c.Meta().ID == off {
			t.Errorf("control %s was disabled by the policy but still listed", off)
		}
	}
	if n := len(Controls(p, provision.Instance)); n != registered-1 {
		t.Errorf("disabling one control left %d of %d", n, registered)
	}
}

// TestRiskyFamilies pins which families safe apply guards and snapshots:
// the two whose change can cut off the admin session. A family that became
// risky without a snapshot would be guarded but not restored by rollback.
func TestRiskyFamilies(t *testing.T) {
	var names []string
	for _, f := range Families() {
		names = append(names, f.Name)
		if f.Risky && f.Snapshot == nil {
			t.Errorf("family %s is risky but journals no snapshot for rollback", f.Name)
		}
	}
	got := provision.RiskyOf(Families(), append(names, "firewall"))
	if want := []string{"firewall", "ssh"}; !slices.Equal(got, want) {
		t.Errorf("RiskyOf(all families) = %v, want %v", got, want)
	}
	if got := provision.RiskyOf(Families(), []string{"baseline", "updates"}); len(got) != 0 {
		t.Errorf("RiskyOf(baseline, updates) = %v, want none", got)
	}
}
