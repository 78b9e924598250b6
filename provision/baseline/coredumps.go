package baseline

import (
	"context"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files baseline.coredumps owns. A core dump of transferd or sshd can hold
// keys and customer data, so each path a dump could take is closed:
// PAM sessions (limits.d), login shells (profile.d: also a shell started
// without PAM), services (systemd's default limit), the kernel's handler
// (systemd-coredump storing nothing) and setuid programs.
const (
	LimitsFile   = "/etc/security/limits.d/60-bulwark-coredumps.conf"
	CoredumpFile = "/etc/systemd/coredump.conf.d/60-bulwark.conf"
	SystemFile   = "/etc/systemd/system.conf.d/60-bulwark-coredumps.conf"
	SuidFile     = "/etc/sysctl.d/61-bulwark-coredumps.conf"
	ProfileFile  = "/etc/profile.d/60-bulwark-coredumps.sh"
)

var coreFiles = []struct{ path, content string }{
	{LimitsFile, "# Written by bulwark (control baseline.coredumps).\n* hard core 0\n* soft core 0\n"},
	{CoredumpFile, "# Written by bulwark (control baseline.coredumps).\n[Coredump]\nStorage=none\nProcessSizeMax=0\n"},
	{SystemFile, "# Written by bulwark (control baseline.coredumps).\n[Manager]\nDefaultLimitCORE=0\n"},
	{SuidFile, "# Written by bulwark (control baseline.coredumps).\nfs.suid_dumpable = 0\n"},
	{ProfileFile, "# Written by bulwark (control baseline.coredumps).\nulimit -c 0\n"},
}

var coreMeta = provision.Meta{
	ID:    "baseline.coredumps",
	Title: "Core dumps disabled: no process memory written to disk",
	Rows:  []string{"SOC2:CC6", "SOC2:CC7"},
}

// CoreDumps is the control baseline.coredumps (policy baseline.core_dumps).
type CoreDumps struct{ Allowed bool }

func (*CoreDumps) Meta() provision.Meta { return coreMeta }

// Apply writes the files, or removes them when the policy allows dumps
// (so switching the policy back is also converged).
func (c *CoreDumps) Apply(ctx context.Context, h host.Host) error {
	for _, f := range coreFiles {
		var err error
		if c.Allowed {
			err = h.Remove(f.path)
		} else {
			err = h.WriteFile(f.path, []byte(f.content), 0o644)
		}
		if err != nil {
			return coreMeta.Wrap("converge "+f.path, err)
		}
	}
	return nil
}

// Verify checks each file and the effective fs.suid_dumpable.
func (c *CoreDumps) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	if c.Allowed {
		f := coreMeta.Finding("core dumps", "disabled")
		f.Status, f.Actual = provision.NotApplicable, "allowed by policy"
		f.Reason = "policy baseline.core_dumps is true"
		return []provision.Finding{f}
	}
	var out []provision.Finding
	for _, f := range coreFiles {
		out = append(out, check.File(coreMeta, h, f.path, []byte(f.content)))
	}
	eff, err := effectiveSysctl(h)
	out = append(out, checkSysctl(coreMeta, h, eff, err, "fs.suid_dumpable", "0"))
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}
