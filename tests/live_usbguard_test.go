//go:build linux

package tests

import (
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/provision/baseline"
)

// liveUSB gives the shared guest a USB bus: a keyboard, which
// baseline.usbguard's rules allow (a hypervisor console's), and a smart
// card reader (class 0b), which no rule allows.
var liveUSB = []string{"qemu-xhci,id=usb", "usb-kbd,bus=usb.0", "usb-ccid,bus=usb.0"}

// TestLiveUSBGuard applies baseline.usbguard in the shared guest and reads
// the kernel's own verdict on each device (sysfs authorized), then breaks
// the control twice: the daemon stopped, and its rules widened to allow
// everything (the reader is then authorized), each failing verify until
// apply repairs it and the reader is blocked again.
func TestLiveUSBGuard(t *testing.T) {
	g := liveGuest(t)
	const only = "baseline.usbguard"
	guestApply(t, g, only)
	if out := guestApply(t, g, only); strings.Contains(out, "write ") || strings.Contains(out, "exec") {
		t.Errorf("second apply changed something:\n%s", out)
	}
	requireVerify(t, g, only, 0)
	// One line per USB device (interfaces have no product file): its
	// product name and whether the kernel lets a driver bind to it.
	const authorized = `for d in /sys/bus/usb/devices/*; do [ -f "$d/product" ] && echo "$(cat "$d/product"): $(cat "$d/authorized")"; done`
	requireDevices := func(t *testing.T, want ...string) {
		t.Helper()
		out := guestRun(t, g, authorized).Stdout
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("sysfs does not show %q:\n%s", w, out)
			}
		}
	}
	requireDevices(t, "QEMU USB Keyboard: 1", "QEMU USB CCID: 0")

	t.Run("daemon stopped", func(t *testing.T) {
		guestRun(t, g, "systemctl stop usbguard.service")
		requireFailed(t, requireVerify(t, g, only, 1), "unit usbguard.service", "inactive")
		guestApply(t, g, only)
		requireVerify(t, g, only, 0)
	})
	t.Run("rules widened to allow every device", func(t *testing.T) {
		guestRun(t, g, "echo allow > "+baseline.USBGuardRules+" && systemctl restart usbguard.service")
		requireDevices(t, "QEMU USB CCID: 1")
		requireFailed(t, requireVerify(t, g, only, 1), "file "+baseline.USBGuardRules, "allow")
		guestApply(t, g, only)
		requireVerify(t, g, only, 0)
		requireDevices(t, "QEMU USB Keyboard: 1", "QEMU USB CCID: 0")
	})
}
