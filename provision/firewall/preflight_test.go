//go:build linux

package firewall

import (
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
	if err := inScratchNetns(func(c *nftables.Conn) error { return loadAndCompare(c, rs.build(), rs.Table) }); err != nil {
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
		return compareOnly(c, other.build(), rs.Table)
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
	for range 3 {
		if err := f.preflight(); err != nil {
			t.Fatal(err)
		}
	}
	if after := run(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("the caller's ruleset changed during pre-flight:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
