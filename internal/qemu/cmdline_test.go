//go:build linux

package qemu

import (
	"context"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	plan := Plan{ConsoleLog: "/w/console.log", Ports: map[int]int{22: 40022}}
	tests := []struct {
		name string
		opts Options
		plan Plan
	}{
		{"direct-kernel", Options{Disk: "/c/d.qcow2", Kernel: "/c/vmlinuz", Initrd: "/c/initrd", Cmdline: "root=/dev/vda1 console=ttyS0"}, plan},
		{"extra-disks-and-ports", Options{Disk: "/c/d.qcow2", ExtraDisks: []string{"/w/data.raw", "/w/b,c.qcow2"}, Memory: 2048, CPUs: 1},
			Plan{ConsoleLog: "/w/console.log", Ports: map[int]int{443: 40443, 22: 40022, 80: 40080}}},
		{"no-snapshot-kvm-pc", Options{Disk: "/c/d.raw", NoSnapshot: true, Accel: "kvm", Machine: "pc"}, plan},
		{"usb-devices", Options{Disk: "/c/d.qcow2", Devices: []string{"qemu-xhci,id=usb", "usb-kbd,bus=usb.0"}}, plan},
		{"tap-nic", Options{Disk: "/c/d.qcow2", Tap: &Tap{Ifname: "bwtap0", MAC: "52:54:00:b0:00:0a"}}, plan},
		{"uefi-vmdk", Options{Disk: "/c/d.vmdk", Firmware: UEFI},
			Plan{ConsoleLog: "/w/console.log", Ports: map[int]int{22: 40022}, Vars: "/w/OVMF_VARS.fd"}},
		{"secureboot-tpm-vhd", Options{Disk: "/c/d.vhd", Firmware: SecureBoot, TPMState: "/w/tpm"},
			Plan{ConsoleLog: "/w/console.log", Ports: map[int]int{22: 40022}, Vars: "/w/OVMF_VARS.fd", TPMSocket: "/w/swtpm.sock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.opts.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(Args(o, tc.plan), "\n") + "\n"
			golden(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	testutil.Golden(t, path, []byte(got))
}

func TestOptionsRejectBadInput(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no-disk", Options{}, "Options.Disk is empty"},
		{"initrd-without-kernel", Options{Disk: "d", Initrd: "i"}, "without Kernel"},
		{"bad-port", Options{Disk: "d", Forward: []int{70000}}, "Forward port 70000"},
		{"tap-without-ifname", Options{Disk: "d", Tap: &Tap{MAC: "52:54:00:b0:00:0a"}}, "Tap.Ifname is empty"},
		{"tap-bad-mac", Options{Disk: "d", Tap: &Tap{Ifname: "t0", MAC: "nope"}}, `Tap.MAC "nope"`},
		{"unknown-firmware", Options{Disk: "d", Firmware: "coreboot"}, `Firmware "coreboot"`},
		{"secureboot-needs-q35", Options{Disk: "d", Firmware: SecureBoot, Machine: "pc"}, "needs the q35 machine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.opts.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"plain":         "'plain'",
		"it's":          `'it'\''s'`,
		"a b; rm -rf /": "'a b; rm -rf /'",
	}
	for in, want := range tests {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestLoadOrCreateKeyIsStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "build")
	a, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Authorized != b.Authorized || !strings.HasPrefix(a.Authorized, "ssh-ed25519 ") {
		t.Fatalf("key changed or wrong type: %q vs %q", a.Authorized, b.Authorized)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o, want 600", st.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt key: err = %v, want one naming %s", err, path)
	}
}

// TestStartReportsQEMUFailure needs only the QEMU binary: a missing disk
// makes QEMU exit at once, and Start must say so with QEMU's own message
// instead of waiting out the boot timeout.
func TestStartReportsQEMUFailure(t *testing.T) {
	testutil.RequireTools(t, "qemu-system-x86_64")
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-disk.qcow2")
	// The error text tells "QEMU exited" from "timed out", so no clock is
	// needed to show Start did not wait out BootTimeout.
	g, err := Start(context.Background(), Options{Disk: missing, Signer: key, BootTimeout: time.Minute})
	if err == nil {
		g.Close()
		t.Fatal("Start succeeded with a missing disk")
	}
	if !strings.Contains(err.Error(), "exited before SSH") || !strings.Contains(err.Error(), "no-such-disk.qcow2") {
		t.Errorf("err = %v, want QEMU's exit and the disk named", err)
	}
}

func TestConsoleHostKey(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@bulwark"
	tests := []struct {
		name, console, want string
		ok                  bool
	}{
		{"journal+console line", "[  OK  ] Started x.\r\n[   41.2] sh[301]: bulwark-hostkey: ssh-rsa AAAAB3 root@b\r\n[   41.2] sh[301]: bulwark-hostkey: " + key + "\r\n", key, true},
		{"bare line", "bulwark-hostkey: " + key + "\n", key, true},
		{"only other key types", "bulwark-hostkey: ecdsa-sha2-nistp256 AAAAE2 root@b\n", "", false},
		{"no line yet", "Booting Linux\n", "", false},
	}
	for _, tt := range tests {
		got, ok := consoleHostKey(tt.console, "bulwark-hostkey: ")
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: got %q %v, want %q %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// TestPlanPortsAreDistinct: every forwarded guest port gets its own host
// port in one plan. Chosen one at a time with each listener closed at
// once, two could get the same one (seen in CI: SSH and 8443).
func TestPlanPortsAreDistinct(t *testing.T) {
	for range 50 {
		p, err := makePlan(t.TempDir(), []int{80, 443, 8443, 5432, 22, 80})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		for guest, host := range p.Ports {
			if other, dup := seen[host]; dup {
				t.Fatalf("host port %d forwards both guest %d and %d", host, other, guest)
			}
			seen[host] = guest
		}
		if len(p.Ports) != 5 {
			t.Fatalf("ports %v; want 22, 80, 443, 8443 and 5432", p.Ports)
		}
	}
}
