//go:build linux

package luks

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestLUKSOnRootfs applies the family to a real Debian tree, proves a
// second Apply changes nothing, that the offline volume check is
// not-applicable (never pass), then breaks luks.firstboot one way per row:
// Verify fails naming the control, the property and the evidence.
func TestLUKSOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	controls := Controls(p)
	// The Packer provisioner uploads bulwark; stand in with this test binary.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	checktest.Write(t, root, Binary, string(self))
	if err := os.Chmod(filepath.Join(root, Binary), 0o755); err != nil {
		t.Fatal(err)
	}

	h := checktest.ApplyTwice(t, root, controls)
	fs := checktest.Verify(h, controls)
	vol := checktest.Find(t, fs, "luks.volume", "data volume")
	if vol.Status != provision.NotApplicable || vol.Reason == "" {
		t.Errorf("offline luks.volume = %s (%q); want not-applicable with a reason", vol.Status, vol.Reason)
	}
	checktest.RequireOK(t, withoutNA(fs), false)

	tests := []struct {
		name     string
		break_   func(t *testing.T)
		property string
		evidence string
		repair   bool // Apply restores it; otherwise the test removes the breakage
	}{
		{"unit deleted", func(t *testing.T) { checktest.Remove(t, root, UnitFile) },
			"file " + UnitFile, "no such file", true},
		{"unit no longer before postgres", func(t *testing.T) {
			checktest.Edit(t, root, UnitFile, "Before=postgresql.service ", "Before=")
		}, "file " + UnitFile, "Before=transferd.service", true},
		{"fw_cfg module no longer loaded at boot", func(t *testing.T) { checktest.Remove(t, root, ModulesLoadFile) },
			"file " + ModulesLoadFile, "no such file", true},
		{"mount unit deleted: services would not wait for the volume", func(t *testing.T) { checktest.Remove(t, root, MountUnitFile(p.LUKS)) },
			"file " + MountUnitFile(p.LUKS), "no such file", true},
		{"mount no longer requires firstboot", func(t *testing.T) {
			checktest.Edit(t, root, MountUnitFile(p.LUKS), "Requires="+UnitName+"\n", "")
			// The evidence is the unit as read: the ordering line now
			// follows DefaultDependencies directly.
		}, "file " + MountUnitFile(p.LUKS), "DefaultDependencies=no\nAfter=" + UnitName, true},
		{"unit disabled", func(t *testing.T) { checktest.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/"+UnitName) },
			UnitName + " enabled", "no such file", true},
		{"unit masked", func(t *testing.T) { checktest.Symlink(t, root, "/dev/null", "/etc/systemd/system/"+PathName) },
			PathName + " enabled", "-> /dev/null", true},
		{"firstboot policy edited", func(t *testing.T) {
			checktest.Edit(t, root, PolicyFile, "aes-xts-plain64", "aes-cbc-essiv:sha256")
		}, "file " + PolicyFile, "aes-cbc-essiv", true},
		{"bulwark binary missing", func(t *testing.T) { checktest.Remove(t, root, Binary) },
			"file " + Binary, "no such file", false},
		{"key baked at key_file", func(t *testing.T) { checktest.Write(t, root, p.LUKS.KeyFile, "secret") },
			"key material in the image", p.LUKS.KeyFile, false},
		{"stray key under /etc/bulwark", func(t *testing.T) { checktest.Write(t, root, "/etc/bulwark/data.key", "secret") },
			"key material in the image", "/etc/bulwark/data.key", false},
		{"crypttab names a key in the image", func(t *testing.T) {
			checktest.Write(t, root, "/etc/luks/k", "secret")
			checktest.Write(t, root, "/etc/crypttab", "bulwark-data /dev/vdb /etc/luks/k luks\n")
		}, "key material in the image", "bulwark-data /dev/vdb /etc/luks/k luks", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backup := snapshot(t, root)
			tt.break_(t)
			h := checktest.NewHost(t, root)
			f := checktest.Find(t, checktest.Verify(h, controls), "luks.firstboot", tt.property)
			checktest.RequireBroken(t, f, provision.Fail, tt.evidence)
			if f.Reason == "" {
				t.Error("failing finding gives no reason")
			}
			if tt.repair {
				checktest.Apply(t, root, controls)
			} else {
				backup(t)
			}
			checktest.RequireOK(t, withoutNA(checktest.Verify(checktest.NewHost(t, root), controls)), false)
		})
	}
}

// TestLUKSTPM2OnRootfs: with key_source tpm2 the image carries the
// firstboot and mount units but no key-delivery path unit, and needs
// systemd-cryptenroll: removing it fails Verify naming the package.
func TestLUKSTPM2OnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p.LUKS.KeySource = policies.KeySourceTPM2
	controls := Controls(p)
	checktest.Write(t, root, Binary, "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(root, Binary), 0o755); err != nil {
		t.Fatal(err)
	}
	h := checktest.ApplyTwice(t, root, controls)
	checktest.RequireOK(t, withoutNA(checktest.Verify(h, controls)), false)
	for _, absent := range []string{PathFile, ModulesLoadFile} {
		if _, err := os.Lstat(filepath.Join(root, absent)); err == nil {
			t.Errorf("%s installed for key_source tpm2; it only serves a delivered key", absent)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, MountUnitFile(p.LUKS))); err != nil || !strings.Contains(string(b), "Where="+p.LUKS.MountPoint) {
		t.Errorf("mount unit %s: %v\n%s", MountUnitFile(p.LUKS), err, b)
	}
	checktest.Remove(t, root, "/usr/bin/systemd-cryptenroll")
	f := checktest.Find(t, checktest.Verify(checktest.NewHost(t, root), controls), "luks.firstboot", "file /usr/bin/systemd-cryptenroll")
	checktest.RequireBroken(t, f, provision.Fail, "no such file")
	if !strings.Contains(f.Expected, "systemd-cryptsetup") {
		t.Errorf("expected %q does not name the package to install", f.Expected)
	}
}

// TestLUKSBadKeySource: a key source firstboot cannot serve is refused at
// image time, naming the policy field, and nothing is written.
func TestLUKSBadKeySource(t *testing.T) {
	root := t.TempDir()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p.LUKS.KeySource = "usb" // what a hand-edited policy file might hold
	h := checktest.NewHost(t, root)
	for _, c := range Controls(p) {
		err := c.Apply(context.Background(), h)
		if c.ID() == "luks.firstboot" && (err == nil || !strings.Contains(err.Error(), `key source "usb"`)) {
			t.Errorf("Apply with key_source usb: %v; want an error naming the source", err)
		}
	}
	if len(h.Changes()) != 0 {
		t.Errorf("refused Apply still changed %v", h.Changes())
	}
	f := checktest.Find(t, checktest.Verify(h, Controls(p)), "luks.firstboot", "luks.key_source")
	checktest.RequireBroken(t, f, provision.Fail, "usb")
}

// TestBootRefusesOffline: firstboot formats devices, so it must never run
// against an image being built.
func TestBootRefusesOffline(t *testing.T) {
	h := checktest.NewHost(t, t.TempDir())
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	err = Boot(context.Background(), h, p.LUKS, p.Transfer.DataDir, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "booted instance only") {
		t.Fatalf("Boot on an offline root: %v; want a refusal", err)
	}
	if len(h.Changes()) != 0 {
		t.Errorf("refused Boot changed %v", h.Changes())
	}
}

func withoutNA(fs []provision.Finding) []provision.Finding {
	var out []provision.Finding
	for _, f := range fs {
		if f.Status != provision.NotApplicable {
			out = append(out, f)
		}
	}
	return out
}

// snapshot records the paths a non-repairable breakage touches so the row
// can undo it: everything the rows above create or delete.
func snapshot(t *testing.T, root string) func(t *testing.T) {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(root, Binary))
	if err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T) {
		t.Helper()
		for _, p := range []string{"/run/bulwark/luks.key", "/etc/bulwark/data.key", "/etc/luks/k", "/etc/crypttab"} {
			checktest.Remove(t, root, p)
		}
		checktest.Write(t, root, Binary, string(bin))
		if err := os.Chmod(filepath.Join(root, Binary), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
