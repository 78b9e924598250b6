//go:build linux

package firewall

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// TestPreflightReadBack: the scratch load compares what the kernel holds
// with the model, so a kernel that stored something else is refused. The
// model here is the real one; the expectation it is compared with has one
// rule more and one rule changed, as if the kernel had dropped or altered
// them.
func TestPreflightReadBack(t *testing.T) {
	testutil.RequireRoot(t)
	rs, err := Render(testNetwork(t))
	if err != nil {
		t.Fatal(err)
	}
	o := rs.build()
	if err := inScratchNetns(func(c *nftables.Conn) error { return loadAndCompare(c, o, o.state(), rs.Table) }); err != nil {
		t.Fatalf("the rendered model does not survive its own pre-flight: %v", err)
	}
	altered := rs.build()
	err = inScratchNetns(func(c *nftables.Conn) error {
		if err := altered.queue(c); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			return err
		}
		// The kernel now holds the model; compare it with a model that
		// differs, through the same check the pre-flight uses.
		other, err := Render(testNetwork(t))
		if err != nil {
			return err
		}
		other.Chains[0].Rules = append(other.Chains[0].Rules, rule("extra", tcpDport(9999), accept))
		return compareOnly(c, other.build().state(), rs.Table)
	})
	if err == nil || !strings.Contains(err.Error(), `extra`) {
		t.Errorf("read-back of a different table: err = %v, want a difference naming rule extra", err)
	}
}

// TestPreflightLeavesTheCallersRulesetAlone: the scratch load happens in
// its own namespace, never in the caller's (the test process runs in the
// host's namespace; its ruleset is only read).
func TestPreflightLeavesTheCallersRulesetAlone(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "nft")
	before := run(t, "nft", "list", "ruleset")
	f := New(testNetwork(t), Options{Report: func(string) {}})
	o := f.rs.build()
	for range 3 {
		if err := f.preflight(o, o.state()); err != nil {
			t.Fatal(err)
		}
	}
	if after := run(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("the caller's ruleset changed during pre-flight:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestPreflightReadBackCatchesAlteredSets: the pre-flight's read-back
// finds a set the kernel accepted but holds differently from the batch.
// The first case is the bug the read-back once caught: one netlink message
// per set wrapped its 16-bit attribute length and the kernel kept only the
// elements before the wrap. Each case sends an altered batch and compares
// what the kernel holds with the unaltered model, exactly as preflight
// does; the set has 2 000 networks, so the read-back spans many dump
// messages.
func TestPreflightReadBackCatchesAlteredSets(t *testing.T) {
	testutil.RequireRoot(t)
	rs, err := Render(benchNetwork(t, 2000))
	if err != nil {
		t.Fatal(err)
	}
	want := rs.build().state()
	extra := []nftables.SetElement{
		{Key: []byte{203, 0, 113, 0}},
		{Key: []byte{203, 0, 113, 1}, IntervalEnd: true},
	}
	tests := []struct {
		name  string
		alter func([]nftables.SetElement) []nftables.SetElement
		found string
	}{
		{"truncated", func(e []nftables.SetElement) []nftables.SetElement { return e[:340] }, "set ssh_admin4 element 10.3.84.0/24: expected present, kernel has missing"},
		{"empty", func([]nftables.SetElement) []nftables.SetElement { return nil }, "set ssh_admin4 element 198.51.100.0/24: expected present, kernel has missing"},
		{"extra element", func(e []nftables.SetElement) []nftables.SetElement { return append(slices.Clone(e), extra...) }, "set ssh_admin4 element 203.0.113.0/32: expected absent, kernel has extra element"},
		{"range end moved", func(e []nftables.SetElement) []nftables.SetElement {
			e = slices.Clone(e)
			e[1] = nftables.SetElement{Key: []byte{10, 0, 2, 128}, IntervalEnd: true} // 10.0.2.0/24 loses its top half
			return e
		}, "set ssh_admin4 element 10.0.2.0/25: expected absent, kernel has extra element"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := rs.build()
			i := slices.IndexFunc(o.sets, func(s *nftables.Set) bool { return s.Name == "ssh_admin4" })
			o.elems[i] = tt.alter(o.elems[i])
			err := inScratchNetns(func(c *nftables.Conn) error { return loadAndCompare(c, o, want, rs.Table) })
			if err == nil || !strings.Contains(err.Error(), tt.found) {
				t.Errorf("read-back of an altered set: err = %.600v\nwant it to name %q", err, tt.found)
			}
		})
	}
}
