package baseline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// SysctlFile is the drop-in baseline.sysctl owns.
const SysctlFile = "/etc/sysctl.d/60-bulwark.conf"

// sysctlDirs are read by systemd-sysctl at boot, in this priority: a file
// name in an earlier directory hides the same name in later ones.
var sysctlDirs = []string{"/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"}

var sysctlKey = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$`)

// Sysctl is the control baseline.sysctl: kernel network and information-leak
// parameters from policy baseline.sysctl.
type Sysctl struct{ Values map[string]string }

var sysctlMeta = provision.Meta{
	ID:    "baseline.sysctl",
	Title: "Kernel parameters: no redirects or source routing, reverse-path filter, restricted kernel pointers",
	Rows:  []string{"SOC2:CC6", "SOC2:CC7", "SOX:Vulnerability Management"},
}

func (*Sysctl) Meta() provision.Meta { return sysctlMeta }
func (s *Sysctl) keys() []string {
	k := make([]string, 0, len(s.Values))
	for key := range s.Values {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// Render is the drop-in's content, sorted so it is stable.
func (s *Sysctl) Render() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control baseline.sysctl) from the appliance policy.\n")
	for _, k := range s.keys() {
		fmt.Fprintf(&b, "%s = %s\n", k, s.Values[k])
	}
	return []byte(b.String())
}

func (s *Sysctl) validate() error {
	for _, k := range s.keys() {
		v := s.Values[k]
		if !sysctlKey.MatchString(k) {
			return fmt.Errorf("baseline.sysctl: policy baseline.sysctl key %q is not a sysctl name (want e.g. net.ipv4.tcp_syncookies)", k)
		}
		if v == "" || strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("baseline.sysctl: policy baseline.sysctl.%s: value %q must be one non-empty line", k, v)
		}
	}
	return nil
}

// Apply writes the drop-in; on the live system it also loads it, so the
// running kernel matches without a reboot.
func (s *Sysctl) Apply(ctx context.Context, h host.Host) error {
	if err := s.validate(); err != nil {
		return err
	}
	before := len(h.Changes())
	if err := h.WriteFile(SysctlFile, s.Render(), 0o644); err != nil {
		return sysctlMeta.Wrap("write "+SysctlFile, err)
	}
	if h.Live() && len(h.Changes()) > before {
		return sysctlMeta.Wrap("load "+SysctlFile, h.Exec(ctx, "load "+SysctlFile+" into the running kernel", "sysctl", "-p", SysctlFile))
	}
	return nil
}

// Verify checks the file, then each key's effective boot-time value (the
// last assignment across all sysctl.d files, as systemd-sysctl applies
// them), and live also the running kernel's /proc/sys value.
func (s *Sysctl) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{check.File(sysctlMeta, h, SysctlFile, s.Render())}
	eff, err := effectiveSysctl(h)
	for _, k := range s.keys() {
		out = append(out, checkSysctl(sysctlMeta, h, eff, err, k, s.Values[k]))
	}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

// checkSysctl is one key: boot-time value, and live the running value.
func checkSysctl(m provision.Meta, h host.Host, eff sysctlState, effErr error, key, want string) provision.Finding {
	f := m.Finding(key, want)
	if effErr != nil {
		return check.Fail(f, "unreadable", effErr.Error(), provision.Evidence{Source: "sysctl.d", Read: effErr.Error()})
	}
	a, ok := eff.lookup(key)
	if !ok {
		return check.Fail(f, "unset", "no sysctl.d file sets "+key, provision.Evidence{Source: strings.Join(sysctlDirs, ", "), Read: key + " not set"})
	}
	ev := []provision.Evidence{{Source: a.file, Read: key + " = " + a.value}}
	if a.value != want {
		return check.Fail(f, a.value, "boot-time value differs from the policy (set last by "+a.file+")", ev...)
	}
	if !h.Live() {
		return check.Pass(f, a.value, ev...)
	}
	proc := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	b, err := h.ReadFile(proc)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), append(ev, provision.Evidence{Source: proc, Read: err.Error()})...)
	}
	run := strings.Join(strings.Fields(string(b)), " ")
	ev = append(ev, provision.Evidence{Source: proc, Read: run})
	if run != want {
		return check.Fail(f, run, "running kernel differs from the policy", ev...)
	}
	return check.Pass(f, run, ev...)
}

type assignment struct{ value, file string }

// sysctlState is every assignment systemd-sysctl would make at boot.
// Explicit keys win over glob patterns ("net.ipv4.conf.*.rp_filter")
// whatever their order, as systemd-sysctl does; among globs the last wins.
type sysctlState struct {
	explicit map[string]assignment
	globs    []globAssignment
}

type globAssignment struct {
	pattern string
	assignment
}

func (s sysctlState) lookup(key string) (assignment, bool) {
	if a, ok := s.explicit[key]; ok {
		return a, true
	}
	for i := len(s.globs) - 1; i >= 0; i-- {
		if ok, _ := path.Match(s.globs[i].pattern, key); ok {
			return s.globs[i].assignment, true
		}
	}
	return assignment{}, false
}

// effectiveSysctl replays every sysctl.d file in systemd-sysctl's order,
// a later assignment of a key overriding an earlier one.
func effectiveSysctl(h host.Host) (sysctlState, error) {
	st := sysctlState{explicit: map[string]assignment{}}
	files, err := dropIns(h, sysctlDirs)
	if err != nil {
		return st, err
	}
	for _, f := range files {
		b, err := h.ReadFile(f) // links (99-sysctl.conf -> ../sysctl.conf) resolve inside the root
		if err != nil {
			return st, fmt.Errorf("read %s: %w", f, err)
		}
		st.add(string(b), f)
	}
	return st, nil
}

// dropIns lists the *.conf files of a drop-in directory set the way
// systemd-sysctl and kmod read them: all names sorted together, and a
// name in an earlier directory hiding the same name in later ones.
func dropIns(h host.Host, dirs []string) ([]string, error) {
	files := map[string]string{} // base name -> target path
	for _, d := range dirs {
		ents, err := host.ReadDir(h, d)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a missing directory sets nothing
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", d, err)
		}
		for _, e := range ents {
			if _, seen := files[e.Name()]; !seen && strings.HasSuffix(e.Name(), ".conf") {
				files[e.Name()] = d + "/" + e.Name()
			}
		}
	}
	names := slices.Sorted(maps.Keys(files))
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = files[n]
	}
	return out, nil
}

func (s *sysctlState) add(content, file string) {
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		// "-key" only means "ignore errors"; "a/b" is the same key as "a.b".
		k = strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(k), "/", "."), "-")
		a := assignment{value: strings.TrimSpace(v), file: file}
		if strings.ContainsAny(k, "*?[") {
			s.globs = append(s.globs, globAssignment{k, a})
			continue
		}
		s.explicit[k] = a
	}
}
