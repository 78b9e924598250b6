//go:build linux

package baseline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestBaselineOnRootfs applies the family to a real Debian tree, proves
// the second Apply changes nothing, then breaks each control (one row per
// control × breakage): Verify must fail naming the control, the property
// and the evidence, and Apply must repair it.
func TestBaselineOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	controls := Controls(p)
	apply := func(t *testing.T) *host.Local {
		t.Helper()
		h := ct.NewHost(t, root)
		for _, c := range controls {
			if err := c.Apply(ctx, h); err != nil {
				t.Fatalf("Apply %s: %v", c.ID(), err)
			}
		}
		return h
	}
	verify := func(h host.Host) []provision.Finding {
		var fs []provision.Finding
		for _, c := range controls {
			fs = append(fs, c.Verify(ctx, h)...)
		}
		return fs
	}
	if h := apply(t); len(h.Changes()) == 0 {
		t.Fatal("first Apply changed nothing on a fresh Debian tree")
	}
	h := apply(t)
	if len(h.Changes()) != 0 {
		t.Fatalf("second Apply changed %v; want nothing", h.Changes())
	}
	requireAllPass(t, verify(h))

	tests := []struct {
		name     string
		break_   func(t *testing.T)
		control  string
		property string
		evidence string
	}{
		{"sysctl file deleted", func(t *testing.T) { ct.Remove(t, root, SysctlFile) },
			"baseline.sysctl", "file " + SysctlFile, "no such file"},
		{"sysctl value changed in our file", func(t *testing.T) {
			ct.Edit(t, root, SysctlFile, "kernel.kptr_restrict = 2", "kernel.kptr_restrict = 0")
		}, "baseline.sysctl", "kernel.kptr_restrict", SysctlFile + ": kernel.kptr_restrict = 0"},
		{"later file overrides a value", func(t *testing.T) {
			ct.Write(t, root, "/etc/sysctl.d/99-zz-local.conf", "net.ipv4.tcp_syncookies = 0\n")
		}, "baseline.sysctl", "net.ipv4.tcp_syncookies", "/etc/sysctl.d/99-zz-local.conf: net.ipv4.tcp_syncookies = 0"},
		{"coredump storage re-enabled", func(t *testing.T) {
			ct.Edit(t, root, CoredumpFile, "Storage=none", "Storage=external")
		}, "baseline.coredumps", "file " + CoredumpFile, "Storage=external"},
		{"core limit removed", func(t *testing.T) { ct.Remove(t, root, LimitsFile) },
			"baseline.coredumps", "file " + LimitsFile, "no such file"},
		{"suid dumps re-enabled by a later file", func(t *testing.T) {
			ct.Write(t, root, "/etc/sysctl.d/99-zz-local.conf", "fs.suid_dumpable = 2\n")
		}, "baseline.coredumps", "fs.suid_dumpable", "99-zz-local.conf: fs.suid_dumpable = 2"},
		{"tmp.mount without noexec", func(t *testing.T) {
			ct.Edit(t, root, TmpUnit, "nodev,noexec,", "nodev,")
		}, "baseline.tmp", "file " + TmpUnit, "Options=mode=1777,strictatime,nosuid,nodev,size"},
		{"tmp.mount disabled", func(t *testing.T) { ct.Remove(t, root, tmpWantsLink) },
			"baseline.tmp", "tmp.mount enabled", tmpWantsLink},
		{"timesyncd disabled", func(t *testing.T) { ct.Remove(t, root, timesyncdWants) },
			"baseline.timesync", TimesyncdUnit + " enabled", timesyncdWants},
		{"timesyncd masked", func(t *testing.T) {
			if err := os.Symlink("/dev/null", filepath.Join(root, timesyncdMask)); err != nil {
				t.Fatal(err)
			}
		}, "baseline.timesync", TimesyncdUnit + " enabled", "-> /dev/null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.break_(t)
			f := ct.FindProperty(t, only(verify(ct.NewHost(t, root)), tt.control), tt.property)
			if f.Status != provision.Fail || f.ControlID != tt.control {
				t.Fatalf("after breaking: %s %s = %s (%s); want %s fail", f.ControlID, f.Property, f.Status, f.Actual, tt.control)
			}
			if ev := ct.EvidenceText(f); !strings.Contains(ev, tt.evidence) {
				t.Errorf("evidence %q does not show %q", ev, tt.evidence)
			}
			ct.Remove(t, root, "/etc/sysctl.d/99-zz-local.conf")
			requireAllPass(t, verify(apply(t)))
		})
	}
}

// only keeps one control's findings: two controls may check one key.
func only(fs []provision.Finding, control string) []provision.Finding {
	var out []provision.Finding
	for _, f := range fs {
		if f.ControlID == control {
			out = append(out, f)
		}
	}
	return out
}

func requireAllPass(t *testing.T, fs []provision.Finding) {
	t.Helper()
	for _, f := range fs {
		// baseline.listeners reads sockets: not applicable to an offline root.
		if f.ControlID == "baseline.listeners" && f.Status == provision.NotApplicable {
			continue
		}
		if f.Status != provision.Pass {
			t.Errorf("%s %s: %s, actual %q: %s %v", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, f.Evidence)
		}
	}
}
