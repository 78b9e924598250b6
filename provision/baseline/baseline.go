// Package baseline is the OS hardening baseline every appliance gets:
// kernel parameters, no core dumps, a noexec /tmp, clock sync, blocked
// kernel modules, a legal banner, private local accounts, root-only
// cron and sshd configuration, idle shells ended, password quality and
// private temporary directories in PAM, and USB devices allowed by rule.
// Each is
// its own control with Apply and Verify side by side.
package baseline

import (
	"errors"
	"io/fs"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Family is the baseline family for provision/all.
var Family = provision.Family{Name: "baseline", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, _ provision.Stage) []provision.Control {
	b := p.Baseline
	return []provision.Control{
		&Sysctl{Values: b.Sysctl},
		&CoreDumps{Allowed: b.CoreDumps},
		&Tmp{Noexec: b.TmpNoexec},
		&Timesync{Servers: b.NTPServers},
		&Listeners{Network: p.Network},
		&Modules{Blocked: b.BlockedModules},
		&Banner{Text: b.Banner},
		&Accounts{},
		&Permissions{},
		&Session{Timeout: b.ShellTimeout.Duration},
		&PAM{},
		&USBGuard{},
	}
}

// link reads a symlink inside the target without following it: its target
// is absolute as seen from inside the root, not from this machine. The
// host resolves the parents inside the root too.
func link(h host.Host, path string) (string, error) {
	return h.Readlink(path)
}

// exists reports whether path exists inside the target, not following a
// final symlink (an enablement link may point at a path only the booted
// system resolves).
func exists(h host.Host, path string) (bool, error) {
	_, err := h.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
