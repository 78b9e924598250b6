//go:build linux

package firewall

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision/runner"
)

// TestLiveOnlyDriftIsAChange: when the live table has drifted but its
// files have not, the repair is a change like any other. Run as `bulwark
// apply` runs it (runner.ApplyWith on a journalled host), it is reported
// as one change in one control (cmd/bulwark prints that report),
// which is what keeps apply from discarding the journal, and the journal
// on disk holds it; a rollback of that journal runs through it. Under
// --dry-run it is reported as a change that would be made and the kernel
// keeps the drift.
func TestLiveOnlyDriftIsAChange(t *testing.T) {
	const replaced = "exec: replace table inet bulwark ("
	for _, tc := range []struct {
		name   string
		dryRun bool
	}{
		{"apply", false},
		{"dry run", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ns := newNetns(t, "rec")
			root := t.TempDir()
			converged, err := host.NewLocal(root)
			if err != nil {
				t.Fatal(err)
			}
			var rep reports
			applyFamily(t, ns, liveAt{converged}, &rep)
			// Drift the kernel only: the files on disk stay as applied.
			ns.nft(t, "add", "rule", "inet", "bulwark", "input", "tcp", "dport", "5432", "accept")

			// The host bulwark apply builds: journalled, or dry-running
			// without a journal.
			var j *host.Journal
			opt := host.DryRun()
			if !tc.dryRun {
				if j, err = host.NewJournal(root); err != nil {
					t.Fatal(err)
				}
				opt = host.WithJournal(j)
			}
			l, err := host.NewLocal(root, opt)
			if err != nil {
				t.Fatal(err)
			}
			cs := ControlsWith(testNetwork(t), Options{Conn: ns.conn(t), Report: rep.add})
			ar, applyErr := runner.ApplyWith(ctx, liveAt{l}, cs, runner.Options{})
			var changes []string
			for _, c := range ar.Controls {
				for _, ch := range c.Changes {
					changes = append(changes, c.ID+": "+ch.String())
				}
			}
			if applyErr != nil || ar.Changed() != 1 || len(ar.Controls) != 7 || len(changes) != 1 ||
				!strings.HasPrefix(changes[0], "firewall.default-deny: "+replaced) {
				t.Fatalf("apply: err %v, %d of %d controls changed: %q; want the one change %q", applyErr, ar.Changed(), len(ar.Controls), changes, replaced)
			}
			if live := ns.nft(t, "list", "table", "inet", "bulwark"); strings.Contains(live, "5432") != tc.dryRun {
				t.Errorf("dry run %v: live table after apply:\n%s", tc.dryRun, live)
			}
			if tc.dryRun {
				return
			}

			// The journal on disk holds the replacement, and only it: no
			// file was changed.
			disk, err := host.OpenJournal(root, j.ID())
			if err != nil {
				t.Fatal(err)
			}
			es := disk.Entries()
			if len(es) != 1 || es[0].Action != "exec" || es[0].Control != "firewall.default-deny" || !strings.HasPrefix(es[0].Detail, "replace table inet bulwark (") {
				t.Fatalf("journal %s entries %+v, want the one table replacement", j.ID(), es)
			}
			// Its undo is the table snapshot bulwark apply journals before
			// the family (snapshotTable), not this entry: rolling
			// it back runs nothing and does not stop the rollback.
			lines, err := disk.Rollback(ctx, "", l.Run)
			if err != nil || len(lines) != 1 || !strings.Contains(lines[0], "replace table inet bulwark") {
				t.Errorf("rollback: %q, %v", lines, err)
			}
		})
	}
}
