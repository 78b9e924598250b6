//go:build linux

package ssh

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestDaemonOnRootfs applies ssh.daemon to a real Debian tree, proves a
// second Apply changes nothing, then breaks the control one way per row
// and checks Verify fails naming the property and the evidence, and that
// Apply repairs it.
func TestDaemonOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	d := defaultDaemon(t)
	h := newHost(t, root)
	if err := d.Apply(ctx, h); err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	if len(h.Changes()) == 0 {
		t.Fatal("first Apply changed nothing on a fresh Debian tree")
	}
	again := newHost(t, root)
	if err := d.Apply(ctx, again); err != nil || len(again.Changes()) != 0 {
		t.Fatalf("second Apply: %v, changes %v; want none", err, again.Changes())
	}
	requireAllPass(t, d.Verify(ctx, again))

	tests := []struct {
		name     string
		break_   func(t *testing.T)
		property string // the finding that must fail
		evidence string // and what its evidence must show
	}{
		{"password login switched on in the drop-in", func(t *testing.T) {
			edit(t, root, DropIn, "PasswordAuthentication no", "PasswordAuthentication yes")
		}, "passwordauthentication", "sshd -T: passwordauthentication yes"},
		{"drop-in edited", func(t *testing.T) {
			edit(t, root, DropIn, "MaxAuthTries 3", "MaxAuthTries 10")
		}, "drop-in " + DropIn, "MaxAuthTries 10"},
		{"drop-in deleted", func(t *testing.T) {
			rm(t, root, DropIn)
		}, "drop-in " + DropIn, "no such file"},
		{"earlier drop-in permits root", func(t *testing.T) {
			checktest.Write(t, root, "/etc/ssh/sshd_config.d/10-local.conf", "PermitRootLogin yes\n")
		}, "permitrootlogin", "sshd -T: permitrootlogin yes"},
		{"Include removed from sshd_config", func(t *testing.T) {
			edit(t, root, MainConfig, "Include /etc/ssh/sshd_config.d/*.conf", "")
		}, "allowgroups", "sshd -T: allowgroups"},
		{"weak MAC in the drop-in", func(t *testing.T) {
			edit(t, root, DropIn, "MACs hmac-sha2-512-etm@openssh.com,", "MACs hmac-sha1,")
		}, "macs", "sshd -T: macs hmac-sha1,"},
		{"listen on one address only", func(t *testing.T) {
			edit(t, root, DropIn, "ListenAddress ::\n", "")
		}, "listenaddress", "sshd -T: listenaddress 0.0.0.0:22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.break_(t)
			f := find(t, d.Verify(ctx, newHost(t, root)), tt.property)
			if f.Status != provision.Fail || f.ControlID != "ssh.daemon" {
				t.Fatalf("after breaking: %s = %s (%s); want fail", f.Property, f.Status, f.Actual)
			}
			if ev := checktest.EvidenceText(f); !strings.Contains(ev, tt.evidence) {
				t.Errorf("evidence %q does not show %q", ev, tt.evidence)
			}
			rm(t, root, "/etc/ssh/sshd_config.d/10-local.conf")
			fix := newHost(t, root)
			if err := d.Apply(ctx, fix); err != nil {
				t.Fatalf("repair Apply: %v", err)
			}
			requireAllPass(t, d.Verify(ctx, fix))
		})
	}
}

// TestPreflightRefusesBadConfig: a policy sshd rejects must never reach
// the live drop-in.
func TestPreflightRefusesBadConfig(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	d := defaultDaemon(t)
	if err := d.Apply(ctx, newHost(t, root)); err != nil {
		t.Fatal(err)
	}
	before := read(t, root, DropIn)
	d.SSH.Ciphers = []string{"rot13-cbc"}
	h := newHost(t, root)
	err := d.Apply(ctx, h)
	if err == nil || !strings.Contains(err.Error(), "pre-flight") || !strings.Contains(err.Error(), "ssh.daemon") {
		t.Fatalf("Apply with an unknown cipher = %v; want a pre-flight error", err)
	}
	if after := read(t, root, DropIn); after != before {
		t.Error("the refused config reached the drop-in")
	}
	for _, c := range h.Changes() {
		if c.Path == DropIn {
			t.Errorf("refused config recorded as a change: %v", c)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(root, candidate)); len(m) != 0 {
		t.Errorf("candidate left behind: %v", m)
	}
}

// TestApplyCreatesGroupAndInclude: a tree without the admin group or the
// Include gets both, once.
func TestApplyCreatesGroupAndInclude(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	edit(t, root, MainConfig, "Include /etc/ssh/sshd_config.d/*.conf", "")
	d := defaultDaemon(t)
	if err := d.Apply(ctx, newHost(t, root)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(read(t, root, MainConfig), include+"\n") {
		t.Error("Include not put first in sshd_config")
	}
	if !hasGroup(read(t, root, "/etc/group"), "bulwark-sysadmin") {
		t.Error("group bulwark-sysadmin not created")
	}
	h := newHost(t, root)
	if err := d.Apply(ctx, h); err != nil || len(h.Changes()) != 0 {
		t.Fatalf("second Apply: %v, %v; want no changes", err, h.Changes())
	}
}

func newHost(t *testing.T, root string) *host.Local {
	t.Helper()
	h, err := host.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func requireAllPass(t *testing.T, fs []provision.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Status != provision.Pass {
			t.Errorf("%s %s: %s, actual %q: %s %v", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, f.Evidence)
		}
	}
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func edit(t *testing.T, root, p, old, new string) {
	t.Helper()
	s := read(t, root, p)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", p, old)
	}
	st, _ := os.Stat(filepath.Join(root, p))
	if err := os.WriteFile(filepath.Join(root, p), []byte(strings.Replace(s, old, new, 1)), st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, root, p string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, p)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
