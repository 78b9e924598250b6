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
	controls := Controls(defaultPolicy(t))
	src := controls[0].(*Install).Source
	self, err := os.ReadFile("/proc/self/exe") // a real ELF stands in for transferd
	if err != nil {
		t.Fatal(err)
	}
	ct.Write(t, root, src, string(self))
	ct.ApplyExpect(t, root, controls, true)
	ct.ApplyExpect(t, root, controls, false)
	ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), controls), false)

	tests := []struct {
		name, control, property, evidence string
		break_                            func(t *testing.T)
	}{
		{"binary replaced", "transfer.binary", "binary " + Binary, "sha256:", func(t *testing.T) {
			ct.Write(t, root, Binary, "#!/bin/sh\necho not transferd\n")
			chmod(t, root, Binary, 0o755)
		}},
		{"binary made world-writable", "transfer.binary", "binary " + Binary, "mode 0777", func(t *testing.T) {
			chmod(t, root, Binary, 0o777)
		}},
		{"data dir opened to everyone", "transfer.account", "data directory /srv/bulwark/transfer", "mode 0755", func(t *testing.T) {
			chmod(t, root, "/srv/bulwark/transfer", 0o755)
		}},
		{"service user given a shell", "transfer.account", "user transferd", "/bin/bash", func(t *testing.T) {
			pw := regexp.MustCompile(`(?m)^(transferd:.*):/usr/sbin/nologin$`)
			ct.Write(t, root, "/etc/passwd", pw.ReplaceAllString(ct.Read(t, root, "/etc/passwd"), "$1:/bin/bash"))
		}},
		{"sandbox loosened in the drop-in", "transfer.units", "file " + DropIn, "ProtectSystem=no", func(t *testing.T) {
			ct.Edit(t, root, DropIn, "ReadWritePaths=\n", "ReadWritePaths=\nProtectSystem=no\n")
		}},
		{"socket disabled", "transfer.units", "transferd.socket enabled", "no such file", func(t *testing.T) {
			ct.Remove(t, root, check.Unit{Name: "transferd.socket", Target: "sockets.target"}.WantsLink())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.break_(t)
			ct.RequireBroken(t, ct.Find(t, ct.Verify(ct.NewHost(t, root), controls), tt.control, tt.property), provision.Fail, tt.evidence)
			ct.ApplyExpect(t, root, controls, true)
			ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), controls), false)
		})
	}
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
