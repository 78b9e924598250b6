//go:build linux

package updates

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestUpdatesOnRootfs applies the family to a real Debian tree (apt-config
// and systemctl run inside it by chroot), proves the second Apply changes
// nothing, then breaks each control: Verify must fail naming the control,
// the property and the evidence, and Apply must repair it.
func TestUpdatesOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	p := policiestest.Default(t)
	// updates.patched asks apt for a dist-upgrade plan on every Apply and
	// Verify (seconds each); it has its own test, TestPatchedOnRootfs.
	var cs []provision.Control
	for _, c := range Controls(p, provision.Instance) {
		if c.Meta().ID != PatchedID {
			cs = append(cs, c)
		}
	}
	ct.ApplyTwice(t, root, cs)
	ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), cs), false)

	const (
		uu    = "updates.unattended"
		nr    = "updates.needrestart"
		local = "/etc/apt/apt.conf.d/99zz-local"
		nrLoc = "/etc/needrestart/conf.d/99-local.conf"
		wants = "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer"
	)
	tests := []struct {
		name                        string
		break_                      func(t *testing.T)
		control, property, evidence string
	}{
		{"our origins file deleted: distribution's non-security origins come back",
			func(t *testing.T) { ct.Remove(t, root, UUFile) },
			uu, "effective Unattended-Upgrade::Origins-Pattern", `codename=${distro_codename},label=Debian"`},
		{"our origins file deleted: file finding",
			func(t *testing.T) { ct.Remove(t, root, UUFile) },
			uu, "file " + UUFile, "no such file"},
		{"later apt file turns unattended upgrades off",
			func(t *testing.T) { ct.Write(t, root, local, "APT::Periodic::Unattended-Upgrade \"0\";\n") },
			uu, "effective APT::Periodic::Unattended-Upgrade", `APT::Periodic::Unattended-Upgrade "0";`},
		{"later apt file disables automatic reboot",
			func(t *testing.T) { ct.Write(t, root, local, "Unattended-Upgrade::Automatic-Reboot \"false\";\n") },
			uu, "effective Unattended-Upgrade::Automatic-Reboot", `Unattended-Upgrade::Automatic-Reboot "false";`},
		{"later apt file adds a non-security origin",
			func(t *testing.T) {
				ct.Write(t, root, local, "Unattended-Upgrade::Origins-Pattern { \"origin=Debian,codename=${distro_codename}-updates\"; };\n")
			}, uu, "effective Unattended-Upgrade::Origins-Pattern", "-updates"},
		{"periodic file edited",
			func(t *testing.T) {
				ct.Edit(t, root, PeriodicFile, `Update-Package-Lists "1"`, `Update-Package-Lists "0"`)
			},
			uu, "effective APT::Periodic::Update-Package-Lists", `Update-Package-Lists "0"`},
		{"upgrade timer schedule edited",
			func(t *testing.T) { ct.Edit(t, root, UpgrDropIn, "OnCalendar=*-*-* 03:30", "OnCalendar=monthly") },
			uu, "file " + UpgrDropIn, "OnCalendar=monthly"},
		{"upgrade timer disabled",
			func(t *testing.T) { ct.Remove(t, root, wants) },
			uu, "apt-daily-upgrade.timer enabled", wants},
		{"upgrade timer masked",
			func(t *testing.T) { ct.Symlink(t, root, "/dev/null", "/etc/systemd/system/apt-daily-upgrade.timer") },
			uu, "apt-daily-upgrade.timer enabled", "-> /dev/null"},
		{"needrestart back to interactive in a later file",
			func(t *testing.T) { ct.Write(t, root, nrLoc, "$nrconf{restart} = 'i';\n") },
			nr, "effective $nrconf{restart}", nrLoc + ": $nrconf{restart} = 'i'"},
		{"needrestart file deleted",
			func(t *testing.T) { ct.Remove(t, root, NeedrestartFile) },
			nr, "effective $nrconf{restart}", "(default: interactive)"},
	}
	// The operator's stray files are not ours to delete.
	removeLocal := func(t *testing.T) {
		ct.Remove(t, root, local)
		ct.Remove(t, root, nrLoc)
	}
	var bs []ct.Breakage
	for _, tt := range tests {
		bs = append(bs, ct.Breakage{Name: tt.name, Break: tt.break_, Control: tt.control, Property: tt.property, Evidence: tt.evidence, Cleanup: removeLocal})
	}
	ct.RequireBreakable(t, root, cs, bs)
}

// TestUpdatesBadInput: a policy systemd cannot schedule is refused before
// anything is written, naming the policy key.
func TestUpdatesBadInput(t *testing.T) {
	root := basetest.Copy(t)
	p := policiestest.Default(t)
	for _, tt := range []struct{ name, schedule, want string }{
		{"not a calendar expression", "every tuesday-ish", "updates.schedule"},
		{"quote injection", `03:30" ; evil`, "must not contain quotes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := &Unattended{Updates: p.Updates}
			u.Schedule = tt.schedule
			h := ct.NewHost(t, root)
			err := u.Apply(context.Background(), h)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), uuMeta.ID) {
				t.Fatalf("Apply = %v; want an error naming %s and %q", err, uuMeta.ID, tt.want)
			}
			if len(h.Changes()) != 0 {
				t.Fatalf("bad input changed %v", h.Changes())
			}
			if _, err := os.Stat(filepath.Join(root, UpgrDropIn)); !os.IsNotExist(err) {
				t.Fatalf("drop-in written despite bad input: %v", err)
			}
		})
	}
}

func TestParseAPTDump(t *testing.T) {
	dump := []byte(`APT "";
APT::Periodic::Unattended-Upgrade "1";
Unattended-Upgrade::Origins-Pattern "";
Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
Unattended-Upgrade::Origins-Pattern:: "b";
`)
	c := parseAPTDump(dump)
	if got := strings.Join(c["Unattended-Upgrade::Origins-Pattern"], "|"); got != "origin=Debian,codename=${distro_codename}-security,label=Debian-Security|b" {
		t.Errorf("origins = %q", got)
	}
	if got := c["APT::Periodic::Unattended-Upgrade"]; len(got) != 1 || got[0] != "1" {
		t.Errorf("periodic = %q", got)
	}
	if _, ok := c["APT"]; ok {
		t.Error("empty tree node kept as a value")
	}
}
