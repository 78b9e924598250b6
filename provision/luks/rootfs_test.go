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
	controls := Controls(p, provision.Instance)
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
	rig := checktest.Offline(root)
	rig.Allow = func(f provision.Finding) bool { return f.Status == provision.NotApplicable }
	rig.RequireOK(t, fs)

	// What Apply does not own (keys planted in the image) or cannot
	// restore (the binary the Packer provisioner uploads) is put back by
	// hand: everything the rows below create or delete.
	restore := func(t *testing.T) {
		for _, p := range []string{"/run/bulwark/luks.key", "/etc/bulwark/data.key", "/etc/luks/k", "/etc/crypttab"} {
			checktest.Remove(t, root, p)
		}
		checktest.Write(t, root, Binary, string(self))
		if err := os.Chmod(filepath.Join(root, Binary), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hasReason := func(t *testing.T, f provision.Finding) {
		if f.Reason == "" {
			t.Error("failing finding gives no reason")
		}
	}
	bs := []checktest.Breakage{
		{Name: "unit deleted", Break: func(t *testing.T) { checktest.Remove(t, root, UnitFile) },
			Property: "file " + UnitFile, Evidence: "no such file"},
		{Name: "unit no longer before postgres", Break: func(t *testing.T) {
			checktest.Edit(t, root, UnitFile, "Before=postgresql.service ", "Before=")
		}, Property: "file " + UnitFile, Evidence: "Before=transferd.service"},
		{Name: "fw_cfg module no longer loaded at boot", Break: func(t *testing.T) { checktest.Remove(t, root, ModulesLoadFile) },
			Property: "file " + ModulesLoadFile, Evidence: "no such file"},
		{Name: "mount unit deleted: services would not wait for the volume", Break: func(t *testing.T) { checktest.Remove(t, root, MountUnitFile(p.LUKS)) },
			Property: "file " + MountUnitFile(p.LUKS), Evidence: "no such file"},
		{Name: "mount no longer requires firstboot", Break: func(t *testing.T) {
			checktest.Edit(t, root, MountUnitFile(p.LUKS), "Requires="+UnitName+"\n", "")
			// The evidence is the unit as read: the ordering line now
			// follows DefaultDependencies directly.
		}, Property: "file " + MountUnitFile(p.LUKS), Evidence: "DefaultDependencies=no\nAfter=" + UnitName},
		{Name: "unit disabled", Break: func(t *testing.T) { checktest.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/"+UnitName) },
			Property: UnitName + " enabled", Evidence: "no such file"},
		{Name: "unit masked", Break: func(t *testing.T) { checktest.Symlink(t, root, "/dev/null", "/etc/systemd/system/"+PathName) },
			Property: PathName + " enabled", Evidence: "-> /dev/null"},
		{Name: "firstboot policy edited", Break: func(t *testing.T) {
			checktest.Edit(t, root, PolicyFile, "aes-xts-plain64", "aes-cbc-essiv:sha256")
		}, Property: "file " + PolicyFile, Evidence: "aes-cbc-essiv"},
		{Name: "bulwark binary missing", Break: func(t *testing.T) { checktest.Remove(t, root, Binary) },
			Property: "file " + Binary, Evidence: "no such file", Cleanup: restore},
		{Name: "key baked at key_file", Break: func(t *testing.T) { checktest.Write(t, root, p.LUKS.KeyFile, "secret") },
			Property: "key material in the image", Evidence: p.LUKS.KeyFile, Cleanup: restore},
		{Name: "stray key under /etc/bulwark", Break: func(t *testing.T) { checktest.Write(t, root, "/etc/bulwark/data.key", "secret") },
			Property: "key material in the image", Evidence: "/etc/bulwark/data.key", Cleanup: restore},
		{Name: "crypttab names a key in the image", Break: func(t *testing.T) {
			checktest.Write(t, root, "/etc/luks/k", "secret")
			checktest.Write(t, root, "/etc/crypttab", "bulwark-data /dev/vdb /etc/luks/k luks\n")
		}, Property: "key material in the image", Evidence: "bulwark-data /dev/vdb /etc/luks/k luks", Cleanup: restore},
	}
	for i := range bs {
		bs[i].Control, bs[i].Check = "luks.firstboot", hasReason
	}
	checktest.RequireBreakableOn(t, rig, controls, bs)
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
	controls := Controls(p, provision.Instance)
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
	for _, c := range Controls(p, provision.Instance) {
		err := c.Apply(context.Background(), h)
		if c.Meta().ID == "luks.firstboot" && (err == nil || !strings.Contains(err.Error(), `key source "usb"`)) {
			t.Errorf("Apply with key_source usb: %v; want an error naming the source", err)
		}
	}
	if len(h.Changes()) != 0 {
		t.Errorf("refused Apply still changed %v", h.Changes())
	}
	f := checktest.Find(t, checktest.Verify(h, Controls(p, provision.Instance)), "luks.firstboot", "luks.key_source")
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
