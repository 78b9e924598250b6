//go:build linux

package baseline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestBaselineOnRootfs applies the family to a real Debian tree, proves
// the second Apply changes nothing, then breaks each control (one row per
// control × breakage): Verify must fail naming the control, the property
// and the evidence, and Apply must repair it.
func TestBaselineOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	controls := Controls(p, provision.Instance)
	rig := ct.Offline(root)
	// baseline.listeners reads sockets: not applicable to an offline root.
	rig.Allow = func(f provision.Finding) bool {
		return f.ControlID == "baseline.listeners" && f.Status == provision.NotApplicable
	}
	rig.RequireOK(t, ct.Verify(ct.ApplyTwice(t, root, controls), controls))

	const local = "/etc/sysctl.d/99-zz-local.conf"
	removeLocal := func(t *testing.T) { ct.Remove(t, root, local) }
	const earlyModprobe = "/etc/modprobe.d/00-local.conf"
	removeEarly := func(t *testing.T) { ct.Remove(t, root, earlyModprobe) }
	ct.RequireBreakableOn(t, rig, controls, []ct.Breakage{
		{Name: "sysctl file deleted", Break: func(t *testing.T) { ct.Remove(t, root, SysctlFile) },
			Control: "baseline.sysctl", Property: "file " + SysctlFile, Evidence: "no such file"},
		{Name: "sysctl value changed in our file", Break: func(t *testing.T) {
			ct.Edit(t, root, SysctlFile, "kernel.kptr_restrict = 2", "kernel.kptr_restrict = 0")
		}, Control: "baseline.sysctl", Property: "kernel.kptr_restrict", Evidence: SysctlFile + ": kernel.kptr_restrict = 0"},
		{Name: "later file overrides a value", Break: func(t *testing.T) {
			ct.Write(t, root, local, "net.ipv4.tcp_syncookies = 0\n")
		}, Control: "baseline.sysctl", Property: "net.ipv4.tcp_syncookies", Evidence: "/etc/sysctl.d/99-zz-local.conf: net.ipv4.tcp_syncookies = 0", Cleanup: removeLocal},
		{Name: "coredump storage re-enabled", Break: func(t *testing.T) {
			ct.Edit(t, root, CoredumpFile, "Storage=none", "Storage=external")
		}, Control: "baseline.coredumps", Property: "file " + CoredumpFile, Evidence: "Storage=external"},
		{Name: "core limit removed", Break: func(t *testing.T) { ct.Remove(t, root, LimitsFile) },
			Control: "baseline.coredumps", Property: "file " + LimitsFile, Evidence: "no such file"},
		{Name: "suid dumps re-enabled by a later file", Break: func(t *testing.T) {
			ct.Write(t, root, local, "fs.suid_dumpable = 2\n")
		}, Control: "baseline.coredumps", Property: "fs.suid_dumpable", Evidence: "99-zz-local.conf: fs.suid_dumpable = 2", Cleanup: removeLocal},
		{Name: "tmp.mount without noexec", Break: func(t *testing.T) {
			ct.Edit(t, root, TmpUnit, "nodev,noexec,", "nodev,")
		}, Control: "baseline.tmp", Property: "file " + TmpUnit, Evidence: "Options=mode=1777,strictatime,nosuid,nodev,size"},
		{Name: "tmp.mount disabled", Break: func(t *testing.T) { ct.Remove(t, root, tmpWantsLink) },
			Control: "baseline.tmp", Property: "tmp.mount enabled", Evidence: tmpWantsLink},
		{Name: "dccp let back in by an earlier-sorting file", Break: func(t *testing.T) {
			ct.Write(t, root, earlyModprobe, "install dccp /sbin/modprobe --ignore-install dccp\n")
		}, Control: "baseline.modules", Property: "module dccp", Evidence: earlyModprobe + ": install dccp /sbin/modprobe --ignore-install dccp", Cleanup: removeEarly},
		{Name: "modules file deleted", Break: func(t *testing.T) { ct.Remove(t, root, ModulesFile) },
			Control: "baseline.modules", Property: "module usb-storage", Evidence: "no install command for usb-storage"},
		{Name: "ssh banner back to the distribution's", Break: func(t *testing.T) {
			ct.Write(t, root, "/etc/issue.net", "Debian GNU/Linux 13\n")
		}, Control: "baseline.banner", Property: "file /etc/issue.net", Evidence: "Debian GNU/Linux 13"},
		{Name: "weaker hashing in a later login.defs line", Break: func(t *testing.T) {
			ct.Append(t, root, LoginDefs, "ENCRYPT_METHOD\tMD5\n")
		}, Control: "baseline.accounts", Property: LoginDefs + " ENCRYPT_METHOD", Evidence: "ENCRYPT_METHOD MD5"},
		{Name: "home directory readable by everyone", Break: func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(root, "home/alice"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(root, "home/alice"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, Control: "baseline.accounts", Property: "home /home/alice", Evidence: "mode 0755"},
		// postgres logs in with bash; its home is not under /home.
		{Name: "a service account's login home opened", Break: func(t *testing.T) {
			if err := os.Chmod(filepath.Join(root, "var/lib/postgresql"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, Control: "baseline.accounts", Property: "home /var/lib/postgresql", Evidence: "mode 0755"},
		{Name: "crontab readable by everyone", Break: func(t *testing.T) {
			if err := os.Chmod(filepath.Join(root, "etc/crontab"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, Control: "baseline.permissions", Property: "mode /etc/crontab", Evidence: "mode 0644"},
		// The mode is still right; the next upgrade of cron-daemon-common
		// would put the package's 0755 back on the directory.
		{Name: "cron.d's stat override dropped", Break: func(t *testing.T) {
			ct.Edit(t, root, host.StatOverrideFile, "root root 700 /etc/cron.d\n", "")
		}, Control: "baseline.permissions", Property: "mode /etc/cron.d", Evidence: "no override for /etc/cron.d"},
		{Name: "cron.daily's stat override widened", Break: func(t *testing.T) {
			ct.Edit(t, root, host.StatOverrideFile, "root root 700 /etc/cron.daily\n", "root root 755 /etc/cron.daily\n")
		}, Control: "baseline.permissions", Property: "mode /etc/cron.daily", Evidence: "root root 755 /etc/cron.daily"},
		{Name: "idle timeout lifted", Break: func(t *testing.T) {
			ct.Edit(t, root, SessionFile, "\tTMOUT=900\n", "\tTMOUT=0\n")
		}, Control: "baseline.session", Property: "file " + SessionFile, Evidence: "TMOUT=0"},
		{Name: "shells may dump core again", Break: func(t *testing.T) { ct.Remove(t, root, ProfileFile) },
			Control: "baseline.coredumps", Property: "file " + ProfileFile, Evidence: "no such file"},
		// pam-auth-update regenerates the file: the repair is Debian's
		// own tool, not an edit behind its back.
		{Name: "password quality check dropped from common-password", Break: func(t *testing.T) {
			ct.Edit(t, root, "/etc/pam.d/common-password", "pam_pwquality.so", "pam_permit.so")
		}, Control: "baseline.pam", Property: "/etc/pam.d/common-password pam_pwquality.so", Evidence: "no active line names pam_pwquality.so"},
		{Name: "failed passwords no longer counted", Break: func(t *testing.T) {
			ct.Edit(t, root, "/etc/pam.d/common-auth", "pam_faillock.so authfail", "pam_permit.so")
		}, Control: "baseline.pam", Property: "/etc/pam.d/common-auth pam_faillock.so authfail", Evidence: "no active line names pam_faillock.so authfail"},
		{Name: "shorter passwords allowed", Break: func(t *testing.T) {
			ct.Edit(t, root, PwqualityFile, "minlen = 15", "minlen = 6")
		}, Control: "baseline.pam", Property: "file " + PwqualityFile, Evidence: "minlen = 6"},
		{Name: "USB controllers kept as the kernel authorized them", Break: func(t *testing.T) {
			ct.Edit(t, root, USBGuardConf, "PresentControllerPolicy=apply-policy", "PresentControllerPolicy=keep")
		}, Control: "baseline.usbguard", Property: "file " + USBGuardConf, Evidence: "PresentControllerPolicy=keep"},
		{Name: "usbguard disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/basic.target.wants/usbguard.service")
		}, Control: "baseline.usbguard", Property: "usbguard.service enabled", Evidence: "no such file"},
		{Name: "timesyncd disabled", Break: func(t *testing.T) { ct.Remove(t, root, timesyncdWants) },
			Control: "baseline.timesync", Property: TimesyncdUnit + " enabled", Evidence: timesyncdWants},
		{Name: "timesyncd masked", Break: func(t *testing.T) {
			if err := os.Symlink("/dev/null", filepath.Join(root, timesyncdMask)); err != nil {
				t.Fatal(err)
			}
		}, Control: "baseline.timesync", Property: TimesyncdUnit + " enabled", Evidence: "-> /dev/null"},
	})
}
