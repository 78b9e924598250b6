//go:build linux

package ssh

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestDaemonOnRootfs applies ssh.daemon to a real Debian tree, proves a
// second Apply changes nothing, then breaks the control one way per row
// and checks Verify fails naming the property and the evidence, and that
// Apply repairs it.
func TestDaemonOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	cs := []provision.Control{defaultDaemon(t)}
	ct.Converge(t, root, cs)

	// The stray earlier drop-in is the operator's file, not bulwark's:
	// the test takes it back before Apply repairs the rest.
	local := "/etc/ssh/sshd_config.d/10-local.conf"
	unplant := func(t *testing.T) { ct.Remove(t, root, local) }
	ct.RequireBreakable(t, root, cs, []ct.Breakage{
		{Name: "password login switched on in the drop-in", Break: func(t *testing.T) {
			ct.Edit(t, root, DropIn, "PasswordAuthentication no", "PasswordAuthentication yes")
		}, Control: "ssh.daemon", Property: "passwordauthentication", Evidence: "sshd -T: passwordauthentication yes"},
		{Name: "drop-in edited", Break: func(t *testing.T) {
			ct.Edit(t, root, DropIn, "MaxAuthTries 3", "MaxAuthTries 10")
		}, Control: "ssh.daemon", Property: "drop-in " + DropIn, Evidence: "MaxAuthTries 10"},
		{Name: "drop-in deleted", Break: func(t *testing.T) {
			ct.Remove(t, root, DropIn)
		}, Control: "ssh.daemon", Property: "drop-in " + DropIn, Evidence: "no such file"},
		{Name: "earlier drop-in permits root", Break: func(t *testing.T) {
			ct.Write(t, root, local, "PermitRootLogin yes\n")
		}, Control: "ssh.daemon", Property: "permitrootlogin", Evidence: "sshd -T: permitrootlogin yes", Cleanup: unplant},
		{Name: "Include removed from sshd_config", Break: func(t *testing.T) {
			ct.Edit(t, root, MainConfig, "Include /etc/ssh/sshd_config.d/*.conf", "")
		}, Control: "ssh.daemon", Property: "allowgroups", Evidence: "sshd -T: allowgroups"},
		{Name: "weak MAC in the drop-in", Break: func(t *testing.T) {
			ct.Edit(t, root, DropIn, "MACs hmac-sha2-512-etm@openssh.com,", "MACs hmac-sha1,")
		}, Control: "ssh.daemon", Property: "macs", Evidence: "sshd -T: macs hmac-sha1,"},
		{Name: "listen on one address only", Break: func(t *testing.T) {
			ct.Edit(t, root, DropIn, "ListenAddress ::\n", "")
		}, Control: "ssh.daemon", Property: "listenaddress", Evidence: "sshd -T: listenaddress 0.0.0.0:22"},
	})
}

// TestPreflightRefusesBadConfig: a policy sshd rejects must never reach
// the live drop-in.
func TestPreflightRefusesBadConfig(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	d := defaultDaemon(t)
	if err := d.Apply(ctx, ct.NewHost(t, root)); err != nil {
		t.Fatal(err)
	}
	before := ct.Read(t, root, DropIn)
	d.SSH.Ciphers = []string{"rot13-cbc"}
	h := ct.NewHost(t, root)
	err := d.Apply(ctx, h)
	if err == nil || !strings.Contains(err.Error(), "pre-flight") || !strings.Contains(err.Error(), "ssh.daemon") {
		t.Fatalf("Apply with an unknown cipher = %v; want a pre-flight error", err)
	}
	if after := ct.Read(t, root, DropIn); after != before {
		t.Error("the refused config reached the drop-in")
	}
	for _, c := range h.Changes() {
		if c.Path == DropIn {
			t.Errorf("refused config recorded as a change: %v", c)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(root, "tmp", ".bulwark-sshd-*")); len(m) != 0 {
		t.Errorf("pre-flight scratch left behind: %v", m)
	}
}

// TestApplyCreatesGroupAndInclude: a tree without the admin group or the
// Include gets both, once.
func TestApplyCreatesGroupAndInclude(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	ct.Edit(t, root, MainConfig, "Include /etc/ssh/sshd_config.d/*.conf", "")
	d := defaultDaemon(t)
	if err := d.Apply(ctx, ct.NewHost(t, root)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct.Read(t, root, MainConfig), include+"\n") {
		t.Error("Include not put first in sshd_config")
	}
	if !hasGroup(ct.Read(t, root, "/etc/group"), "bulwark-sysadmin") {
		t.Error("group bulwark-sysadmin not created")
	}
	h := ct.NewHost(t, root)
	if err := d.Apply(ctx, h); err != nil || len(h.Changes()) != 0 {
		t.Fatalf("second Apply: %v, %v; want no changes", err, h.Changes())
	}
}

// TestHostKeysOnRootfs: ssh.hostkeys installs its first-boot unit (which
// systemd-analyze accepts, through the pre-flight), converges, is broken
// by disabling or editing the unit, and Seal leaves no host key in the
// tree while Apply leaves existing keys alone.
func TestHostKeysOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	cs := []provision.Control{&HostKeys{}}
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	if len(keys) == 0 {
		t.Fatal("the base tree has no host keys to start with")
	}
	ct.Converge(t, root, cs)
	if after, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(after) != len(keys) {
		t.Fatalf("Apply touched the host keys: %d before, %d after", len(keys), len(after))
	}
	ct.RequireBreakable(t, root, cs, []ct.Breakage{
		{Name: "first-boot unit disabled", Break: func(t *testing.T) { ct.Remove(t, root, hostKeyWants.WantsLink()) },
			Control: hostKeysMeta.ID, Property: HostKeyUnit + " enabled", Evidence: hostKeyWants.WantsLink()},
		{Name: "condition dropped from the unit", Break: func(t *testing.T) {
			ct.Edit(t, root, HostKeyUnitFile, "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n", "")
		}, Control: hostKeysMeta.ID, Property: "file " + HostKeyUnitFile, Evidence: "Before=ssh.service"},
	})
	h := ct.NewHost(t, root)
	if err := (&HostKeys{}).Seal(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(left) != 0 {
		t.Errorf("sealed tree still holds %v", left)
	}
	if len(h.Changes()) != len(keys) {
		t.Errorf("seal recorded %d changes, want one per key (%d)", len(h.Changes()), len(keys))
	}
}
