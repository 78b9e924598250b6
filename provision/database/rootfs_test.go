//go:build linux

package database

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// rootfs is a private Debian tree PostgreSQL can run in. The cached
// tree's top directory is 0700 (debootstrap's temp dir); an installed
// system's / is 0755, and postgres (not root) must traverse it to run
// initdb and postgres -C inside the chroot.
func rootfs(t *testing.T) string {
	root := basetest.Copy(t)
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// discover is the layout of the server installed in root.
func discover(t *testing.T, root string) Layout {
	t.Helper()
	l, err := Discover(ct.NewHost(t, root))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// controls are the family's controls for the embedded default policy.
func controls(t *testing.T) []provision.Control {
	t.Helper()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return Controls(p, provision.Instance)
}

// TestDatabaseOnRootfs applies the family to a real Debian tree (creating
// the cluster, as the package leaves none there), proves a second Apply
// changes nothing, then breaks each control on purpose and checks Verify
// fails naming the control, the property and the evidence.
func TestDatabaseOnRootfs(t *testing.T) {
	root := rootfs(t)
	l := discover(t, root)
	controls := controls(t)
	ct.Converge(t, root, controls)
	local := l.ConfDir + "/conf.d/zz-local.conf"
	removeLocal := func(t *testing.T) { ct.Remove(t, root, local) }
	ct.RequireBreakable(t, root, controls, []ct.Breakage{
		{Name: "listen on every address in the drop-in", Break: func(t *testing.T) {
			ct.Edit(t, root, l.DropIn, "listen_addresses = ''", "listen_addresses = '*'")
		}, Control: "database.config", Property: "listen_addresses (postgres -C)", Evidence: "listen_addresses = '*'"},
		{Name: "a later conf.d file reopens TCP", Break: func(t *testing.T) {
			ct.Write(t, root, local, "listen_addresses = '0.0.0.0'\n")
		}, Control: "database.config", Property: "listen_addresses (postgres -C)", Evidence: "listen_addresses = '0.0.0.0'", Cleanup: removeLocal},
		{Name: "pg_hba admits the internet", Break: func(t *testing.T) {
			ct.Append(t, root, l.HBAFile, "host all all 0.0.0.0/0 md5\n")
		}, Control: "database.config", Property: "pg_hba.conf TCP entries", Evidence: "host all all 0.0.0.0/0 md5"},
		{Name: "postgresql.conf readable by others again", Break: func(t *testing.T) {
			if err := os.Chmod(filepath.Join(root, l.MainConf), 0o644); err != nil {
				t.Fatal(err)
			}
		}, Control: "database.config", Property: "files under " + l.ConfDir, Evidence: "postgresql.conf 0644 postgres"},
		{Name: "ssl switched back on", Break: func(t *testing.T) {
			ct.Edit(t, root, l.DropIn, "ssl = off", "ssl = on")
		}, Control: "database.config", Property: "ssl (postgres -C)", Evidence: "ssl = 'on'"},
		{Name: "server disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/postgresql.service")
		}, Control: "database.config", Property: "postgresql.service enabled", Evidence: "no such file"},
		{Name: "init unit disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/"+InitUnit)
		}, Control: "database.role", Property: InitUnit + " enabled", Evidence: "no such file"},
		{Name: "data directory back on the root disk in a later conf.d file", Break: func(t *testing.T) {
			ct.Write(t, root, local, "data_directory = '"+l.DataDir+"'\n")
		}, Control: "database.encrypted", Property: "data_directory (postgres -C)", Evidence: "data_directory = '" + l.DataDir + "'", Cleanup: removeLocal},
		{Name: "cluster no longer waits for the volume", Break: func(t *testing.T) {
			ct.Remove(t, root, l.unitDropIn())
		}, Control: "database.encrypted", Property: "file " + l.unitDropIn(), Evidence: "no such file"},
		{Name: "init SQL edited", Break: func(t *testing.T) {
			ct.Edit(t, root, InitSQL, "NOSUPERUSER", "SUPERUSER")
		}, Control: "database.role", Property: "file " + InitSQL, Evidence: "LOGIN SUPERUSER"},
	})
}

// TestDryRunChangesNothing: --dry-run on a fresh tree records the changes
// and leaves every file as it was.
func TestDryRunChangesNothing(t *testing.T) {
	root := rootfs(t)
	l := discover(t, root)
	h := ct.Apply(t, root, controls(t), host.DryRun())
	if len(h.Changes()) == 0 {
		t.Fatal("dry run recorded no changes on a fresh tree")
	}
	for _, p := range []string{l.MainConf, l.DropIn, InitSQL, initPath, l.volumeConf(), l.unitDropIn()} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("dry run created %s", p)
		}
	}
}
