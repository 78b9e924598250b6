package baseline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// ModulesFile is the modprobe.d file baseline.modules owns. Its name sorts
// early on purpose: kmod runs the first install command it reads for a
// module, and reads every directory's files in one sorted list.
const ModulesFile = "/etc/modprobe.d/10-bulwark-blocked.conf"

// modprobeDirs are kmod's configuration directories, in its priority order.
var modprobeDirs = []string{"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"}

var modulesMeta = provision.Meta{
	ID:    "baseline.modules",
	Title: "Unused network protocols, removable storage and filesystems cannot be loaded into the kernel",
	Rows:  []string{"SOC2:CC6", "SOC2:CC7", "SOX:Vulnerability Management"},
}

// Modules is the control baseline.modules (policy baseline.blocked_modules).
// A blacklist line alone only stops loading by alias; any local user can
// still make the kernel load dccp by opening a DCCP socket. So each module
// also gets `install <m> /bin/false`, which makes every load fail.
type Modules struct{ Blocked []string }

func (*Modules) Meta() provision.Meta { return modulesMeta }

// Render is the drop-in's content.
func (m *Modules) Render() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control baseline.modules) from policy baseline.blocked_modules.\n")
	b.WriteString("# An install command runs instead of loading the module: these never load.\n")
	for _, mod := range m.Blocked {
		fmt.Fprintf(&b, "blacklist %s\ninstall %s /bin/false\n", mod, mod)
	}
	return []byte(b.String())
}

// Apply writes the drop-in, or removes it when the policy blocks nothing.
func (m *Modules) Apply(ctx context.Context, h host.Host) error {
	if len(m.Blocked) == 0 {
		return modulesMeta.Wrap("remove "+ModulesFile, h.Remove(ModulesFile))
	}
	return modulesMeta.Wrap("write "+ModulesFile, h.WriteFile(ModulesFile, m.Render(), 0o644))
}

// Verify checks the file, then for each module the install command kmod
// would really run (the first one across all modprobe.d files, so an
// earlier-sorting file can undo ours), and live that it is not loaded now.
func (m *Modules) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	if len(m.Blocked) == 0 {
		return []provision.Finding{check.NotApplicable(modulesMeta.Finding("blocked modules", "none"), "none", "policy baseline.blocked_modules is empty")}
	}
	out := []provision.Finding{check.File(modulesMeta, h, ModulesFile, m.Render())}
	installs, err := effectiveInstalls(h)
	var loaded map[string]bool
	var loadErr error
	if h.Live() {
		loaded, loadErr = loadedModules(h)
	}
	for _, mod := range m.Blocked {
		f := modulesMeta.Finding("module "+mod, "install "+mod+" /bin/false; not loaded")
		name := modname(mod)
		in, ok := installs[name]
		ev := provision.Evidence{Source: "modprobe.d", Read: "no install command for " + mod}
		if ok {
			ev = provision.Evidence{Source: in.file, Read: "install " + mod + " " + in.value}
		}
		switch {
		case err != nil:
			f = check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "modprobe.d", Read: err.Error()})
		case !ok:
			f = check.Fail(f, "loadable", "no install command blocks it; run bulwark apply", ev)
		case !blocks(in.value):
			f = check.Fail(f, "install "+in.value, "the install command kmod runs first loads the module", ev)
		case loadErr != nil:
			f = check.Fail(f, "unknown", "read /proc/modules: "+loadErr.Error(), provision.Evidence{Source: "/proc/modules", Read: loadErr.Error()})
		case loaded[name]:
			f = check.Fail(f, "loaded", "loaded before it was blocked; unload it (modprobe -r) or reboot", ev,
				provision.Evidence{Source: "/proc/modules", Read: name})
		default:
			f = check.Pass(f, "install "+in.value, ev)
		}
		out = append(out, f)
	}
	return check.Timed(out, start)
}

// blocks reports whether an install command refuses the load: it runs
// /bin/false or /bin/true (as Lynis and CIS accept) and nothing else.
func blocks(cmd string) bool {
	switch strings.Join(strings.Fields(cmd), " ") {
	case "/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true":
		return true
	}
	return false
}

// modname is kmod's canonical module name: '-' and '_' are the same.
func modname(s string) string { return strings.ReplaceAll(s, "-", "_") }

// effectiveInstalls reads every modprobe.d file in kmod's order and keeps
// each module's first install command, the one modprobe runs.
func effectiveInstalls(h host.Host) (map[string]assignment, error) {
	files, err := dropIns(h, modprobeDirs)
	if err != nil {
		return nil, err
	}
	out := map[string]assignment{}
	for _, file := range files {
		b, err := h.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		// A backslash at the end of a line continues it.
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "install" {
				continue
			}
			if _, seen := out[modname(f[1])]; !seen {
				out[modname(f[1])] = assignment{value: strings.Join(f[2:], " "), file: file}
			}
		}
	}
	return out, nil
}

// loadedModules is the running kernel's module list.
func loadedModules(h host.Host) (map[string]bool, error) {
	b, err := h.ReadFile("/proc/modules")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out[f[0]] = true
		}
	}
	return out, nil
}
