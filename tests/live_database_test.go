//go:build linux

package tests

import (
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/provision/database"
)

// TestLiveDatabase applies the database family in the shared guest (the
// cluster, socket-only config and transferd's role), proves a second apply
// changes nothing, then opens TCP, admits the internet in pg_hba and drops
// the role, each time showing verify fail with the evidence, and repairs.
//
// database.encrypted is left to the tests that give the guest an encrypted
// volume (TestLiveLUKSControl, TestLiveLUKSTPM2): it moves the data
// directory onto the volume, and the shared guest has none.
func TestLiveDatabase(t *testing.T) {
	const server = "database.config,database.role"
	g := liveGuest(t)
	guestApply(t, g, server)
	if out := guestApply(t, g, server); strings.Contains(out, "write ") || strings.Contains(out, "exec") {
		t.Errorf("second apply changed something:\n%s", out)
	}
	requireVerify(t, g, server, 0)
	l := guestLayout(t, g)

	t.Run("listen on every address", func(t *testing.T) {
		guestRun(t, g, `sed -i "s/^listen_addresses = ''/listen_addresses = '*'/" `+l.DropIn+
			" && systemctl restart "+l.ClusterSvc)
		fs := requireVerify(t, g, server, 1)
		requireFailed(t, fs, "TCP listeners on port 5432", "0.0.0.0:5432")
		requireFailed(t, fs, "listen_addresses (SHOW)", "listen_addresses = '*'")
		guestApply(t, g, server)
		requireVerify(t, g, server, 0)
	})
	t.Run("pg_hba admits the internet", func(t *testing.T) {
		guestRun(t, g, "echo 'host all all 0.0.0.0/0 md5' >> "+l.HBAFile)
		requireFailed(t, requireVerify(t, g, server, 1), "pg_hba.conf TCP entries", "host all all 0.0.0.0/0 md5")
		guestApply(t, g, server)
		requireVerify(t, g, server, 0)
	})
	t.Run("role dropped", func(t *testing.T) {
		guestRun(t, g, "runuser -u postgres -- psql -X -c 'DROP DATABASE transfer' -c 'DROP ROLE transferd'")
		requireFailed(t, requireVerify(t, g, server, 1), "role transferd and database transfer", "no role no database")
		guestApply(t, g, server)
		requireVerify(t, g, server, 0)
	})
}

// guestLayout is the layout of the guest's cluster "main", as the guest's
// own pg_lsclusters reports it: the image's PostgreSQL major version is the
// distribution's (15 on Debian 12, 17 on Debian 13), not the build
// machine's.
func guestLayout(t *testing.T, g *qemu.Guest) database.Layout {
	t.Helper()
	r := guestRun(t, g, "pg_lsclusters --no-header")
	for _, line := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "main" {
			return database.LayoutFor(f[0])
		}
	}
	t.Fatalf("pg_lsclusters: no cluster main (exit %d)\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	return database.Layout{}
}
