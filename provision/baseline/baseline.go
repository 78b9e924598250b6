// Package baseline is the OS hardening baseline every appliance gets:
// kernel parameters, no core dumps, a noexec /tmp, and clock sync. Each is
// its own control with Apply and Verify side by side.
package baseline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Family is the baseline family for provision/all.
var Family = provision.Family{Name: "baseline", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy) []provision.Control {
	b := p.Baseline
	return []provision.Control{
		&Sysctl{Values: b.Sysctl},
		&CoreDumps{Allowed: b.CoreDumps},
		&Tmp{Noexec: b.TmpNoexec},
		&Timesync{Servers: b.NTPServers},
		&Listeners{Network: p.Network},
	}
}

// meta is what every finding of a control repeats.
type meta struct {
	id, title string
	rows      []string
}

func (m meta) finding(property, expected string) provision.Finding {
	return provision.Finding{ControlID: m.id, Title: m.title, Rows: m.rows, Property: property, Expected: expected}
}

func pass(f provision.Finding, actual string, ev ...provision.Evidence) provision.Finding {
	f.Actual, f.Status, f.Evidence = actual, provision.Pass, ev
	return f
}

func fail(f provision.Finding, actual, reason string, ev ...provision.Evidence) provision.Finding {
	f.Actual, f.Status, f.Reason, f.Evidence = actual, provision.Fail, reason, ev
	return f
}

// fileFinding checks that a file bulwark owns holds exactly want.
func fileFinding(m meta, h host.Host, path string, want []byte) provision.Finding {
	f := m.finding("file "+path, "present, as rendered from the policy")
	got, err := h.ReadFile(path)
	if err != nil {
		return fail(f, "missing", err.Error(), provision.Evidence{Source: path, Read: err.Error()})
	}
	ev := provision.Evidence{Source: path, Read: strings.TrimSpace(string(got))}
	if string(got) != string(want) {
		return fail(f, "differs", "the file was edited or the policy changed; run bulwark apply", ev)
	}
	return pass(f, "as rendered", ev)
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

// unitActive reads a unit's state over systemd's D-Bus API (through
// internal/probe, shared with every family).
func unitActive(ctx context.Context, m meta, unit string) provision.Finding {
	return check.Active(ctx, check.Meta{ID: m.id, Title: m.title, Rows: m.rows}, unit)
}

func wrap(id, step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s: %w", id, step, err)
}
