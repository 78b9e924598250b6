//go:build linux

package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/images/base"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// BootEvidenceFile is what the e2e run adds to the build's evidence: the
// boot properties only a boot of the artifact can show (the build's verify
// runs in Packer's VM, which boots SeaBIOS). It records what was observed,
// failures included, and is written even when a check fails, so it never
// claims a boot that did not happen.
const BootEvidenceFile = "boot.json"

// secureBootVar is the EFI global variable SecureBoot: 4 attribute bytes,
// then 1 when the firmware enforces signatures.
const secureBootVar = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

type bootRecord struct {
	mu   sync.Mutex
	path string // "" when BULWARK_E2E_EVIDENCE is unset: nothing written
	data bootEvidence
}

type bootEvidence struct {
	Image   string     `json:"image"`
	Written time.Time  `json:"written"`
	Boots   []bootSeen `json:"boots"`
	// Patch level as the running instance sees it after apt-get update
	// against the mirror; nil until measured.
	SecurityUpgradable *int   `json:"security_upgradable_after_apt_update,omitempty"`
	UpgradableListing  string `json:"upgradable_listing,omitempty"`
	// InitrdMissing: the platform drivers (base.InitrdModules) absent from
	// the booted kernel's initramfs; nil until measured.
	InitrdKernel  string   `json:"initrd_kernel,omitempty"`
	InitrdMissing []string `json:"initrd_missing_modules"`
	InitrdChecked bool     `json:"initrd_checked"`
}

type bootSeen struct {
	Disk       string `json:"disk"`
	Firmware   string `json:"firmware"`
	BootToSSH  string `json:"boot_to_ssh"`
	EFI        bool   `json:"efi"`
	SBState    string `json:"mokutil_sb_state,omitempty"`
	SBVariable string `json:"secureboot_efi_variable,omitempty"`
	OK         bool   `json:"ok"`
}

func newBootRecord(t *testing.T, image string) *bootRecord {
	r := &bootRecord{data: bootEvidence{Image: filepath.Base(image)}}
	if dir := os.Getenv("BULWARK_E2E_EVIDENCE"); dir != "" {
		r.path = filepath.Join(dir, BootEvidenceFile)
	}
	t.Cleanup(func() { r.write(t) })
	return r
}

func (r *bootRecord) write(t *testing.T) {
	if r.path == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data.Written = time.Now().UTC()
	b, err := json.MarshalIndent(r.data, "", "  ")
	if err != nil {
		t.Errorf("boot evidence: %v", err)
		return
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		t.Errorf("boot evidence: %v", err)
		return
	}
	if err := os.Rename(tmp, r.path); err != nil {
		t.Errorf("boot evidence: %v", err)
		return
	}
	t.Logf("boot evidence: %s", r.path)
}

// firmware checks that the guest booted the way fw boots: EFI or not, and
// under Secure Boot the firmware enforcing it, read both by mokutil and
// from the EFI variable itself.
func (r *bootRecord) firmware(t *testing.T, g *qemu.Guest, disk string, fw qemu.Firmware, took time.Duration) {
	seen := bootSeen{Disk: filepath.Base(disk), Firmware: string(fw), BootToSSH: took.Round(time.Second).String()}
	defer func() {
		seen.OK = !t.Failed()
		r.mu.Lock()
		r.data.Boots = append(r.data.Boots, seen)
		r.mu.Unlock()
	}()
	seen.EFI = strings.TrimSpace(run(t, g, "test -d /sys/firmware/efi && echo efi || echo bios").Stdout) == "efi"
	if want := fw != qemu.BIOS; seen.EFI != want {
		t.Errorf("booted through %s but /sys/firmware/efi present = %v", fw, seen.EFI)
	}
	if fw == qemu.BIOS {
		return
	}
	seen.SBState = strings.TrimSpace(run(t, g, "mokutil --sb-state 2>&1 || true").Stdout)
	seen.SBVariable = strings.TrimSpace(run(t, g, "od -An -tu1 "+secureBootVar+" 2>&1 || true").Stdout)
	enforced := strings.HasSuffix(seen.SBVariable, " 1")
	if want := fw == qemu.SecureBoot; enforced != want || strings.Contains(seen.SBState, "enabled") != want {
		t.Errorf("%s: Secure Boot enforced = %v (mokutil %q, SecureBoot variable %q), want %v", fw, enforced, seen.SBState, seen.SBVariable, want)
	}
	t.Logf("%s %s: %s; SecureBoot variable %q; boot to SSH %s", seen.Disk, fw, seen.SBState, seen.SBVariable, seen.BootToSSH)
}

// initrd reads the booted kernel's own initramfs (and modules.builtin)
// for the drivers every platform's disk and network need.
func (r *bootRecord) initrd(t *testing.T, g *qemu.Guest) {
	kernel := strings.TrimSpace(run(t, g, "uname -r").Stdout)
	res := run(t, g, "sudo -n lsinitramfs /boot/initrd.img-"+kernel+" && cat /lib/modules/"+kernel+"/modules.builtin")
	if res.ExitCode != 0 {
		t.Fatalf("lsinitramfs: exit %d: %s", res.ExitCode, res.Stderr)
	}
	missing := []string{} // recorded as [], not null, when none is missing
	for _, m := range base.InitrdModules {
		if base.MissingModules(res.Stdout, []string{m}) != nil {
			missing = append(missing, m)
		}
	}
	r.mu.Lock()
	r.data.InitrdKernel, r.data.InitrdMissing, r.data.InitrdChecked = kernel, missing, true
	r.mu.Unlock()
	if len(missing) > 0 {
		t.Errorf("initramfs of %s lacks %v", kernel, missing)
	}
	t.Logf("initramfs of %s holds %d of %d platform drivers", kernel, len(base.InitrdModules)-len(missing), len(base.InitrdModules))
}

// patched refreshes the package lists against the mirror, as the issue's
// reporter did, and counts upgradable packages from a security archive.
func (r *bootRecord) patched(t *testing.T, g *qemu.Guest) {
	if res := run(t, g, "sudo -n apt-get -q update"); res.ExitCode != 0 {
		t.Fatalf("apt-get update in the guest: exit %d: %s", res.ExitCode, res.Stderr)
	}
	list := run(t, g, "apt list --upgradable 2>/dev/null").Stdout
	n := 0
	var security []string
	for _, l := range strings.Split(list, "\n") {
		if name, rest, ok := strings.Cut(l, "/"); ok && strings.Contains(strings.SplitN(rest, " ", 2)[0], "-security") {
			n++
			security = append(security, name)
		}
	}
	r.mu.Lock()
	r.data.SecurityUpgradable, r.data.UpgradableListing = &n, strings.TrimSpace(list)
	r.mu.Unlock()
	if n != 0 {
		t.Errorf("%d security updates upgradable after apt-get update: %v\n%s", n, security, list)
	}
	t.Logf("apt list --upgradable after apt-get update: %s security updates (listing %q)", strconv.Itoa(n), strings.TrimSpace(list))
}
