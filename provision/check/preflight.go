//go:build linux

package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// analyzer is the target's systemd-analyze (Debian and Ubuntu alike).
const analyzer = "/usr/bin/systemd-analyze"

// UnitDir is where bulwark's unit files and drop-ins live.
const UnitDir = "/etc/systemd/system/"

// UnitFile is a unit file (UnitDir+"name.service") or a drop-in
// (UnitDir+"name.service.d/file.conf") with the content about to be written.
type UnitFile struct {
	Path string
	Data []byte
}

// unitName is the unit a unit file or drop-in configures.
func (u UnitFile) unitName() (string, error) {
	rel, ok := strings.CutPrefix(u.Path, UnitDir)
	if !ok || rel == "" {
		return "", fmt.Errorf("%s is not under %s", u.Path, UnitDir)
	}
	name, _, _ := strings.Cut(rel, "/")
	return strings.TrimSuffix(name, ".d"), nil
}

// PreflightUnits has systemd-analyze verify load the candidate unit files
// the way systemd will once they are written: the candidates go into a
// scratch directory placed first on SYSTEMD_UNIT_PATH (the trailing colon
// keeps the usual paths after it), so a candidate drop-in overrides the
// installed file of the same name and merges with the shipped unit. Files
// whose content is already in place are skipped; when none changed, nothing
// runs. A refusal names the control, the files and systemd's words, and
// nothing has been written.
//
// A missing executable is left to the owning control's Verify (the binary
// may be installed later in the same apply, e.g. by transfer.binary); every
// other complaint about a candidate fails the pre-flight, including the
// "ignoring" warnings systemd-analyze exits 0 on: a unit bulwark renders
// must load without a single warning.
//
// The target's own systemd-analyze does the checking (its version decides
// what a directive means). A target without one (systemd ships it) has no
// systemd to run the units either, so there is nothing to check them
// against and the files are written as data.
func PreflightUnits(ctx context.Context, h host.Host, m provision.Meta, files ...UnitFile) error {
	changed, names, err := changedUnits(h, files)
	if err != nil || len(changed) == 0 {
		return m.Wrap("pre-flight", err)
	}
	if _, err := h.Stat(analyzer); errors.Is(err, fs.ErrNotExist) {
		return nil // no systemd in the target: the files are inert data there
	} else if err != nil {
		return m.Wrap("pre-flight", err)
	}
	s, err := host.NewScratch(h, "units")
	if err != nil {
		return m.Wrap("pre-flight", err)
	}
	defer s.Close()
	for _, f := range changed {
		if err := s.Write(strings.TrimPrefix(f.Path, UnitDir), f.Data); err != nil {
			return m.Wrap("pre-flight", err)
		}
	}
	if err := standIns(h, s, files, names); err != nil {
		return m.Wrap("pre-flight", err)
	}
	args := append([]string{"SYSTEMD_UNIT_PATH=" + s.Target("") + ":", "systemd-analyze", "verify", "--man=no"}, names...)
	// systemd-analyze reports what it refuses on stderr, which is the
	// answer here (Query returns stdout), and exits 0 for unknown keys.
	out, err := Combined(ctx, h, "env", args...)
	problems := unitProblems(string(out), s.Target("")+"/", names)
	if len(problems) == 0 && err != nil && !strings.Contains(string(out), "is not executable") {
		problems = []string{err.Error()}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: pre-flight `systemd-analyze verify %s` refused %s, nothing written: %s",
			m.ID, strings.Join(names, " "), paths(changed), strings.ReplaceAll(strings.Join(problems, "; "), s.Target("")+"/", UnitDir))
	}
	return nil
}

// unitPaths are the directories systemd loads system units from, in the
// order it does.
var unitPaths = []string{UnitDir, "/run/systemd/system/", "/usr/lib/systemd/system/", "/lib/systemd/system/"}

// standIn is the smallest service a drop-in can be merged into.
const standIn = "# bulwark pre-flight stand-in: the real unit is installed later\n[Service]\nExecStart=/bin/true\n"

// standIns writes a stand-in for each service that only a drop-in names and
// that is not installed yet (fips.service's drop-in for transferd.service
// is written before transfer.units installs the unit): systemd-analyze
// does not read the drop-ins of a unit it cannot find, so without one the
// drop-in's own lines would go unchecked. Other unit types get no stand-in;
// their missing unit fails the pre-flight.
func standIns(h host.Host, s *host.Scratch, files []UnitFile, names []string) error {
	for _, name := range names {
		if !strings.HasSuffix(name, ".service") || installed(h, files, name) {
			continue
		}
		if err := s.Write(name, []byte(standIn)); err != nil {
			return err
		}
	}
	return nil
}

func installed(h host.Host, files []UnitFile, name string) bool {
	for _, f := range files {
		if f.Path == UnitDir+name {
			return true
		}
	}
	for _, dir := range unitPaths {
		if _, err := h.Stat(dir + name); err == nil {
			return true
		}
	}
	return false
}

// changedUnits is the candidates whose content differs from the target's
// and the units they configure.
func changedUnits(h host.Host, files []UnitFile) ([]UnitFile, []string, error) {
	var changed []UnitFile
	var names []string
	for _, f := range files {
		name, err := f.unitName()
		if err != nil {
			return nil, nil, err
		}
		if cur, err := h.ReadFile(f.Path); err == nil && bytes.Equal(cur, f.Data) {
			continue
		}
		changed = append(changed, f)
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return changed, names, nil
}

// unitProblems picks systemd-analyze's lines about the candidates: those
// naming a scratch file ("…/x.service:5: Unknown key …") and those about one
// of the units ("x.service: … Refusing.", "Unit x.service has a bad unit
// file setting."), except a missing executable.
func unitProblems(out, scratch string, names []string) []string {
	var ps []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "is not executable") {
			continue
		}
		if strings.Contains(line, scratch) || slices.ContainsFunc(names, func(n string) bool {
			return strings.HasPrefix(line, n+":") || strings.HasPrefix(line, "Unit "+n+" ")
		}) {
			ps = append(ps, line)
		}
	}
	return ps
}

func paths(fs []UnitFile) string {
	var ps []string
	for _, f := range fs {
		ps = append(ps, f.Path)
	}
	return strings.Join(ps, ", ")
}

// Combined runs a command on the host with its stderr folded into the
// output it returns. Host.Query keeps stdout only (tools such as systemd
// warn on stderr in a chroot); validators such as systemd-analyze verify
// and rsyslogd -N1 give their verdict on stderr, which is the evidence.
func Combined(ctx context.Context, h host.Host, name string, args ...string) ([]byte, error) {
	return h.Query(ctx, "sh", append([]string{"-c", `exec "$0" "$@" 2>&1`, name}, args...)...)
}
