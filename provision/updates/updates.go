// Package updates keeps the appliance patched without an operator:
// unattended-upgrades installs security updates only, on the policy's
// schedule, reboots in the policy's window when a kernel or libc needs it,
// and needrestart restarts services still running old libraries. Each is a
// control with Apply and Verify side by side.
package updates

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/aptlock"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Family is the updates family for provision/all.
var Family = provision.Family{Name: "updates", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, _ provision.Stage) []provision.Control {
	// Both wait the policy's bounded time for dpkg's lock, which the
	// system's own apt timers may hold.
	lock := p.Apply.DpkgLockTimeout.Duration
	return []provision.Control{&Unattended{Updates: p.Updates, LockTimeout: lock}, &Needrestart{}, &Patched{LockTimeout: lock}}
}

var rows = []string{"SOC2:CC7", "SOC2:CC8", "SOX:Update Mechanism", "SOX:Vulnerability Management"}

// packages are what the family configures; the base image ships them, so
// Apply installs them only on a host that lacks them.
var packages = []struct{ name, binary string }{
	{"unattended-upgrades", "/usr/bin/unattended-upgrade"},
	{"needrestart", "/usr/sbin/needrestart"},
}

// ensurePackages installs whichever package is missing, waiting (bounded)
// for the dpkg lock first: unattended-upgrades itself may hold it.
func ensurePackages(ctx context.Context, h host.Host, m provision.Meta, timeout time.Duration) error {
	var missing []string
	for _, p := range packages {
		if _, err := h.Stat(p.binary); err != nil {
			missing = append(missing, p.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	say := func(s string) { fmt.Fprintf(os.Stderr, "%s: %s\n", m.ID, s) }
	if err := aptlock.Wait(ctx, h.Root(), timeout, say); err != nil {
		return m.Wrap("install "+strings.Join(missing, " "), err)
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	return m.Wrap("install", h.Exec(ctx, "install "+strings.Join(missing, " "), "apt-get", args...))
}

// waitForAptIdle waits (bounded) for the dpkg lock before the family
// rewrites apt configuration that differs from what is on disk:
// unattended-upgrades and apt read apt.conf.d while they run, so a rewrite
// under a running upgrade would change its behaviour half-way. When every
// file already matches there is nothing to wait for, so an idempotent
// rerun never blocks on apt. It never kills the holder.
func waitForAptIdle(ctx context.Context, h host.Host, m provision.Meta, timeout time.Duration, files []struct {
	path string
	data []byte
}) error {
	if h.DryRun() {
		return nil // a dry run writes nothing, so it has nothing to wait for
	}
	for _, f := range files {
		if cur, err := h.ReadFile(f.path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		say := func(s string) { fmt.Fprintf(os.Stderr, "%s: %s\n", m.ID, s) }
		if err := aptlock.Wait(ctx, h.Root(), timeout, say); err != nil {
			return m.Wrap("wait for the dpkg lock before writing "+f.path, err)
		}
		return nil
	}
	return nil
}

// aptConfig is `apt-config dump` parsed: the effective configuration after
// every apt.conf.d file, keyed by option; list items ("Key:: value") are
// collected under the key without the trailing "::".
type aptConfig map[string][]string

// effectiveAPT runs apt-config inside the target, so the answer is apt's
// own reading of every file, not ours.
func effectiveAPT(ctx context.Context, h host.Host) (aptConfig, []byte, error) {
	out, err := h.Query(ctx, "apt-config", "dump")
	if err != nil {
		return nil, out, err
	}
	return parseAPTDump(out), out, nil
}

func parseAPTDump(out []byte) aptConfig {
	c := aptConfig{}
	for _, line := range bytes.Split(out, []byte("\n")) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), " ")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSuffix(v, ";"), `"`)
		if strings.HasSuffix(k, "::") {
			k = strings.TrimSuffix(k, "::")
			c[k] = append(c[k], v)
			continue
		}
		if v != "" {
			c[k] = []string{v}
		}
	}
	return c
}

// dumpLines quotes the dump lines mentioning key, as evidence.
func dumpLines(dump []byte, key string) string {
	var out []string
	for _, l := range strings.Split(string(dump), "\n") {
		if strings.HasPrefix(l, key+" ") || strings.HasPrefix(l, key+":: ") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return key + " not set"
	}
	return strings.Join(out, "\n")
}
