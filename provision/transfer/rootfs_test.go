//go:build linux

package transfer

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestTransferOnRootfs installs transferd into a real Debian tree, proves a
// second Apply changes nothing, then breaks each control and checks Verify
// fails naming the control and the evidence, and Apply repairs it.
func TestTransferOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(defaultPolicy(t), provision.Instance)
	src := controls[0].(*Install).Source
	self, err := os.ReadFile("/proc/self/exe") // a real ELF stands in for transferd
	if err != nil {
		t.Fatal(err)
	}
	ct.Write(t, root, src, string(self))
	ct.ApplyExpect(t, root, controls, true)
	ct.ApplyExpect(t, root, controls, false)
	ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), controls), false)

	rig := ct.Offline(root)
	rig.Repaired = func(t *testing.T, changes []host.Change) {
		if len(changes) == 0 {
			t.Fatal("repair Apply changed nothing")
		}
	}
	ct.RequireBreakableOn(t, rig, controls, []ct.Breakage{
		{Name: "binary replaced", Control: "transfer.binary", Property: "binary " + Binary, Evidence: "sha256:", Break: func(t *testing.T) {
			ct.Write(t, root, Binary, "#!/bin/sh\necho not transferd\n")
			chmod(t, root, Binary, 0o755)
		}},
		{Name: "binary made world-writable", Control: "transfer.binary", Property: "binary " + Binary, Evidence: "mode 0777", Break: func(t *testing.T) {
			chmod(t, root, Binary, 0o777)
		}},
		{Name: "data dir opened to everyone", Control: "transfer.account", Property: "data directory /srv/bulwark/transfer", Evidence: "mode 0755", Break: func(t *testing.T) {
			chmod(t, root, "/srv/bulwark/transfer", 0o755)
		}},
		{Name: "service user given a shell", Control: "transfer.account", Property: "user transferd", Evidence: "/bin/bash", Break: func(t *testing.T) {
			pw := regexp.MustCompile(`(?m)^(transferd:.*):/usr/sbin/nologin$`)
			ct.Write(t, root, "/etc/passwd", pw.ReplaceAllString(ct.Read(t, root, "/etc/passwd"), "$1:/bin/bash"))
		}},
		{Name: "sandbox loosened in the drop-in", Control: "transfer.units", Property: "file " + DropIn, Evidence: "ProtectSystem=no", Break: func(t *testing.T) {
			ct.Edit(t, root, DropIn, "ReadWritePaths=\n", "ReadWritePaths=\nProtectSystem=no\n")
		}},
		{Name: "socket disabled", Control: "transfer.units", Property: "transferd.socket enabled", Evidence: "no such file", Break: func(t *testing.T) {
			ct.Remove(t, root, check.Unit{Name: "transferd.socket", Target: "sockets.target"}.WantsLink())
		}},
	})
}

// TestInstallWithoutStagedBinary: once the build's staging area is gone,
// Apply still converges an installed image; with nothing installed it fails
// naming the policy field, and changes nothing.
func TestInstallWithoutStagedBinary(t *testing.T) {
	dir := t.TempDir()
	c := &Install{Source: "/var/lib/bulwark-build/transferd"}
	h := ct.NewHost(t, dir)
	err := c.Apply(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "transfer.binary_source") {
		t.Fatalf("Apply with nothing staged = %v; want an error naming transfer.binary_source", err)
	}
	if len(h.Changes()) != 0 {
		t.Fatalf("failed Apply changed %v", h.Changes())
	}
	ct.Write(t, dir, Binary, "installed")
	chmod(t, dir, Binary, 0o755)
	h = ct.NewHost(t, dir)
	if err := c.Apply(context.Background(), h); err != nil || len(h.Changes()) != 0 {
		t.Fatalf("Apply with the binary installed and no source = %v, changes %v; want nil, none", err, h.Changes())
	}
	ct.RequireOK(t, c.Verify(context.Background(), h), false)
}

func TestAccountRefusesRelativeDataDir(t *testing.T) {
	h := ct.NewHost(t, t.TempDir())
	err := (&Account{DataDir: "srv/x"}).Apply(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "transfer.data_dir") || len(h.Changes()) != 0 {
		t.Fatalf("Apply = %v, changes %v; want an error naming transfer.data_dir and no change", err, h.Changes())
	}
}

func defaultPolicy(t testing.TB) *policies.Policy {
	t.Helper()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func chmod(t *testing.T, root, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(filepath.Join(root, p), m); err != nil {
		t.Fatal(err)
	}
}
