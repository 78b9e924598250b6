//go:build linux

package fips

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

func policy(t *testing.T) *policies.Policy {
	t.Helper()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func kernelFinding(t *testing.T, root string, p *policies.Policy) provision.Finding {
	t.Helper()
	c := &Kernel{base: base{kernelMeta}, Mode: p.FIPS.Mode, TokenFile: p.FIPS.ProTokenFile}
	fs := c.Verify(context.Background(), checktest.NewHost(t, root))
	return checktest.Find(t, fs, "fips.kernel", fs[0].Property)
}

// TestKernel runs fips.kernel on one copy of the real Debian tree: first
// as it is, then with an os-release claiming Ubuntu.
func TestKernel(t *testing.T) {
	root := basetest.Copy(t)
	t.Run("debian", func(t *testing.T) { kernelOnDebian(t, root) })
	t.Run("fake ubuntu", func(t *testing.T) { kernelFakeUbuntu(t, root) })
}

// kernelOnDebian: on Debian the OS half is not applicable, with the
// reason, in both modes — never a pass; Apply changes nothing.
func kernelOnDebian(t *testing.T, root string) {
	for _, mode := range []string{"off", "ubuntu-pro"} {
		t.Run(mode, func(t *testing.T) {
			p := policy(t)
			p.FIPS.Mode = mode
			h := checktest.Apply(t, root, []provision.Control{&Kernel{base: base{kernelMeta}, Mode: mode}})
			if len(h.Changes()) != 0 {
				t.Errorf("Apply on Debian changed %v", h.Changes())
			}
			f := kernelFinding(t, root, p)
			if f.Status != provision.NotApplicable || f.Reason == "" {
				t.Fatalf("fips.kernel on Debian, mode %s = %s (%q); want not-applicable with a reason", mode, f.Status, f.Reason)
			}
			t.Logf("reason: %s", f.Reason)
		})
	}
}

// kernelFakeUbuntu: a Debian copy whose os-release says Ubuntu, with
// mode ubuntu-pro, has no FIPS kernel: Verify fails naming the package
// list and dpkg's status file; with the package and fips=1 it passes;
// a Pro token left in the image fails, as does a grub file without fips=1.
func kernelFakeUbuntu(t *testing.T, root string) {
	checktest.Remove(t, root, "/etc/os-release")
	checktest.Write(t, root, "/etc/os-release", "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n")
	p := policy(t)
	p.FIPS.Mode = "ubuntu-pro"
	p.FIPS.ProTokenFile = "/root/pro-token"
	c := &Kernel{base: base{kernelMeta}, Mode: p.FIPS.Mode, TokenFile: p.FIPS.ProTokenFile}
	verify := func() []provision.Finding { return c.Verify(context.Background(), checktest.NewHost(t, root)) }

	checktest.RequireBroken(t, checktest.Find(t, verify(), "fips.kernel", "FIPS kernel package"), provision.Fail, "/var/lib/dpkg/status: no installed ubuntu-fips")

	// Apply without the token file: a clear error, nothing changed.
	h := checktest.NewHost(t, root)
	err := c.Apply(context.Background(), h)
	if err == nil || len(h.Changes()) != 0 {
		t.Fatalf("Apply without a Pro token: err %v, changes %v; want an error and no change", err, h.Changes())
	}
	t.Logf("Apply without token: %v", err)

	// What pro enable fips-updates leaves behind, then our grub file.
	status, err := os.ReadFile(filepath.Join(root, dpkgStatus))
	if err != nil {
		t.Fatal(err)
	}
	checktest.Write(t, root, dpkgStatus, string(status)+"\nPackage: ubuntu-fips\nStatus: install ok installed\nVersion: 1.0\n")
	checktest.Write(t, root, GrubFile, string(grubCfg))
	checktest.RequireOK(t, verify(), false)

	checktest.RequireBreakable(t, root, []provision.Control{c}, []checktest.Breakage{
		{Name: "Pro token left in the image", Break: func(t *testing.T) {
			checktest.Write(t, root, p.FIPS.ProTokenFile, "C1234")
		}, Control: "fips.kernel", Property: "Pro token /root/pro-token", Evidence: "/root/pro-token: exists", Cleanup: func(t *testing.T) {
			// Apply deletes the token only after attaching Pro, which a
			// test tree cannot do.
			checktest.Remove(t, root, p.FIPS.ProTokenFile)
		}},
		{Name: "fips=1 dropped from the grub file", Break: func(t *testing.T) {
			checktest.Edit(t, root, GrubFile, " fips=1", "")
		}, Control: "fips.kernel", Property: "file " + GrubFile, Evidence: "GRUB_CMDLINE_LINUX_DEFAULT", Cleanup: func(t *testing.T) {
			// Apply's repair runs update-grub, which needs the booted
			// machine's disks: put the file back so Apply has nothing to do.
			checktest.Write(t, root, GrubFile, string(grubCfg))
		}},
	})
}

// buildProbe builds testdata/fipsprobe into root at Binary with the given
// GOFIPS140 ("" leaves it unset).
func buildProbe(t *testing.T, root, gofips string) {
	t.Helper()
	out := filepath.Join(root, Binary)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/fipsprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFIPS140="+gofips)
	if gofips == "" {
		cmd.Env = append(cmd.Env[:len(cmd.Env)-1], "GOFIPS140=off")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fipsprobe GOFIPS140=%q: %v\n%s", gofips, err, b)
	}
}

// TestService builds real Go binaries three ways and checks the drop-in:
// only a GOFIPS140=v1.0.0 build with the drop-in in place passes.
func TestService(t *testing.T) {
	testutil.RequireTools(t, "go")
	root := t.TempDir()
	c := &Service{base: base{serviceMeta}, Enabled: true}
	if h := checktest.Apply(t, root, []provision.Control{c}); len(h.Changes()) != 1 {
		t.Fatalf("first Apply changed %v; want the drop-in", h.Changes())
	}
	if h := checktest.Apply(t, root, []provision.Control{c}); len(h.Changes()) != 0 {
		t.Fatalf("second Apply changed %v; want nothing", h.Changes())
	}
	buildProbe(t, root, "v1.0.0")
	fs := c.Verify(context.Background(), checktest.NewHost(t, root))
	checktest.RequireBroken(t, checktest.Find(t, fs, "fips.service", "transferd build"), provision.Pass, "GOFIPS140=v1.0.0")
	checktest.RequireOK(t, fs, false)
	// Apply installs the drop-in, not transferd: the build is put back.
	rebuild := func(t *testing.T) { buildProbe(t, root, "v1.0.0") }
	checktest.RequireBreakable(t, root, []provision.Control{c}, []checktest.Breakage{
		{Name: "built without GOFIPS140", Break: func(t *testing.T) { buildProbe(t, root, "") },
			Control: "fips.service", Property: "transferd build", Evidence: "no GOFIPS140 setting", Cleanup: rebuild},
		{Name: "in-tree crypto (latest)", Break: func(t *testing.T) { buildProbe(t, root, "latest") },
			Control: "fips.service", Property: "transferd build", Evidence: "GOFIPS140=latest", Cleanup: rebuild},
		{Name: "drop-in deleted", Break: func(t *testing.T) { checktest.Remove(t, root, DropIn) },
			Control: "fips.service", Property: "file " + DropIn, Evidence: "no such file"},
	})

	off := &Service{base: base{serviceMeta}}
	if f := off.Verify(context.Background(), checktest.NewHost(t, root))[0]; f.Status != provision.NotApplicable || f.Reason == "" {
		t.Errorf("policy fips.service false: %s (%q); want not-applicable with a reason", f.Status, f.Reason)
	}
}

func TestFIPS140Env(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{nil, ""},
		{[]string{"GODEBUG=fips140=on"}, "on"},
		{[]string{"LANG=C", "GODEBUG=http2client=0,fips140=only"}, "only"},
		{[]string{"GODEBUG=fips140=on", "GODEBUG=http2client=0"}, ""}, // a later GODEBUG replaces the earlier
		{[]string{"GODEBUG=fips140=on,fips140=off"}, "off"},
	}
	for _, tt := range tests {
		if got := fips140(tt.env); got != tt.want {
			t.Errorf("fips140(%q) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
