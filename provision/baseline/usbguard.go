package baseline

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files baseline.usbguard owns.
const (
	USBGuardConf   = "/etc/usbguard/usbguard-daemon.conf"
	USBGuardRules  = "/etc/usbguard/rules.conf"
	USBGuardDropIn = "/etc/systemd/system/usbguard.service.d/50-bulwark.conf"
	USBGuardUdev   = "/etc/udev/rules.d/60-bulwark-usbguard.rules"
	usbDevices     = "/sys/bus/usb/devices"
)

// usbguardDropIn and usbguardUdev start the daemon when there is a USB
// device to judge, and not before: usbguard-daemon exits with an error on
// a machine with no USB bus (most cloud instances, and QEMU without a USB
// controller: measured, "loadFiles: /sys/bus/usb/devices: No such file or
// directory", then systemd's restart limit). A controller that appears
// later (hot-plugged by the hypervisor) starts it through udev.
const usbguardDropIn = `# Written by bulwark (control baseline.usbguard).
[Unit]
ConditionDirectoryNotEmpty=` + usbDevices + `
`

const usbguardUdev = `# Written by bulwark (control baseline.usbguard): a USB device appearing starts usbguard.
ACTION=="add", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", TAG+="systemd", ENV{SYSTEMD_WANTS}+="usbguard.service"
`

// usbguardConf judges every device by the rules, those present at boot and
// the controllers too (Debian's default keeps whatever the kernel already
// authorized), blocks what no rule allows, and talks only to root: the
// package's postinst also grants plugdev, whose members could otherwise
// authorize a device over IPC. Decisions go to the Linux audit log, which
// audit.forward ships with the rest.
const usbguardConf = `# Written by bulwark (control baseline.usbguard).
RuleFile=` + USBGuardRules + `
RuleFolder=/etc/usbguard/rules.d/
ImplicitPolicyTarget=block
PresentDevicePolicy=apply-policy
PresentControllerPolicy=apply-policy
InsertedDevicePolicy=apply-policy
AuthorizedDefault=none
RestoreControllerDeviceState=false
DeviceManagerBackend=uevent
IPCAllowedUsers=root
IPCAllowedGroups=root
IPCAccessControlFiles=/etc/usbguard/IPCAccessControl.d/
DeviceRulesWithPort=false
AuditBackend=LinuxAudit
HidePII=false
`

// usbguardRules allow what an appliance's console needs and nothing that
// carries data: a hypervisor's virtual keyboard and tablet are USB HID
// devices (class 03) behind its root hub (class 09). Storage, network
// adapters and serial devices, and any composite device with such an
// interface, stay blocked.
const usbguardRules = `# Written by bulwark (control baseline.usbguard).
# Hubs and keyboards/pointers only: every interface must be one of these.
allow with-interface match-all { 09:*:* 03:*:* }
`

var usbguardUnit = check.Unit{Name: "usbguard.service", Target: "basic.target"}

var usbguardMeta = provision.Meta{
	ID:    "baseline.usbguard",
	Title: "USB devices are blocked unless a rule allows them (hubs and console input only)",
	Rows:  []string{"SOC2:CC6", "SOC2:C1.2"},
}

// USBGuard is the control baseline.usbguard (Lynis USB-3000). The
// usb-storage block in baseline.modules stops one driver; USBGuard stops
// the device before any driver binds, whatever its class.
type USBGuard struct{}

func (*USBGuard) Meta() provision.Meta { return usbguardMeta }

// usbguardFiles are written whole; the rules are 0600 because the daemon
// refuses a rule file others can read, and its configuration says who may
// change them.
var usbguardFiles = []struct {
	path, content string
	mode          fs.FileMode
}{
	{USBGuardConf, usbguardConf, 0o600},
	{USBGuardRules, usbguardRules, 0o600},
	{USBGuardDropIn, usbguardDropIn, 0o644},
	{USBGuardUdev, usbguardUdev, 0o644},
}

// Apply writes the daemon's files (its drop-in checked by systemd-analyze
// first), enables the daemon, and on a live host with a USB device
// restarts it when anything changed.
func (*USBGuard) Apply(ctx context.Context, h host.Host) error {
	if err := check.PreflightUnits(ctx, h, usbguardMeta, check.UnitFile{Path: USBGuardDropIn, Data: []byte(usbguardDropIn)}); err != nil {
		return err
	}
	before := len(h.Changes())
	for _, f := range usbguardFiles {
		if err := h.WriteFile(f.path, []byte(f.content), f.mode); err != nil {
			return usbguardMeta.Wrap("write "+f.path, err)
		}
	}
	if err := usbguardUnit.Enable(ctx, h); err != nil {
		return usbguardMeta.Wrap("enable", err)
	}
	bus, err := usbBus(h)
	if err != nil {
		return usbguardMeta.Wrap("read "+usbDevices, err)
	}
	var units []string // no device to judge: the daemon would exit at once
	if bus {
		units = []string{usbguardUnit.Name}
	}
	return check.Converge(ctx, h, usbguardMeta, len(h.Changes()) > before, units...)
}

// usbBus reports whether the live machine has a USB device (a root hub at
// least) for usbguard to judge.
func usbBus(h host.Host) (bool, error) {
	if !h.Live() {
		return false, nil
	}
	entries, err := host.ReadDir(h, usbDevices)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return len(entries) > 0, err
}

// Verify checks the files, that the daemon is enabled and, live, that it
// runs whenever there is a USB device to judge.
func (*USBGuard) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	for _, f := range usbguardFiles {
		out = append(out, check.File(usbguardMeta, h, f.path, []byte(f.content)))
	}
	out = append(out, usbguardUnit.Enabled(usbguardMeta, h))
	if !h.Live() {
		return check.Timed(out, start)
	}
	switch bus, err := usbBus(h); {
	case err != nil:
		f := usbguardMeta.Finding("unit "+usbguardUnit.Name, "active")
		out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: usbDevices, Read: err.Error()}))
	case !bus:
		f := usbguardMeta.Finding("unit "+usbguardUnit.Name, "active when a USB device exists")
		out = append(out, check.Pass(f, "no USB device", provision.Evidence{Source: usbDevices, Read: "absent or empty: no USB bus; udev starts usbguard when a device appears"}))
	default:
		out = append(out, check.Active(ctx, usbguardMeta, usbguardUnit.Name))
	}
	return check.Timed(out, start)
}
