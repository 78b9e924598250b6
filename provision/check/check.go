// Package check holds the finding helpers families share: a control's
// metadata, the pass/fail/warn constructors, the "file holds exactly what
// we rendered" check, unit enablement by wants link and the live unit state
// over D-Bus (through internal/probe). Families import this instead of
// growing their own copies.
package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Pass marks f passed with what was read.
func Pass(f provision.Finding, actual string, ev ...provision.Evidence) provision.Finding {
	f.Actual, f.Status, f.Evidence = actual, provision.Pass, ev
	return f
}

// Fail marks f failed; reason says why and what to do.
func Fail(f provision.Finding, actual, reason string, ev ...provision.Evidence) provision.Finding {
	f.Actual, f.Status, f.Reason, f.Evidence = actual, provision.Fail, reason, ev
	return f
}

// Warn marks f as holding but needing attention.
func Warn(f provision.Finding, actual, reason string, ev ...provision.Evidence) provision.Finding {
	f.Actual, f.Status, f.Reason, f.Evidence = actual, provision.Warn, reason, ev
	return f
}

// NotApplicable marks f as not applicable; reason is required because a
// bare not-applicable reads like a quiet pass.
func NotApplicable(f provision.Finding, actual, reason string, ev ...provision.Evidence) provision.Finding {
	f.Actual, f.Status, f.Reason, f.Evidence = actual, provision.NotApplicable, reason, ev
	return f
}

// Timed stamps every finding with the time since start.
func Timed(fs []provision.Finding, start time.Time) []provision.Finding {
	d := time.Since(start)
	for i := range fs {
		fs[i].Duration = d
	}
	return fs
}

// File checks that a file bulwark owns holds exactly want.
func File(m provision.Meta, h host.Host, path string, want []byte) provision.Finding {
	f := m.Finding("file "+path, "present, as rendered from the policy")
	got, err := h.ReadFile(path)
	if err != nil {
		return Fail(f, "missing", err.Error(), provision.Evidence{Source: path, Read: err.Error()})
	}
	ev := provision.Evidence{Source: path, Read: strings.TrimSpace(string(got))}
	if string(got) != string(want) {
		return Fail(f, "differs", "the file was edited or the policy changed; run bulwark apply", ev)
	}
	return Pass(f, "as rendered", ev)
}

// Unit is a systemd unit enabled by a wants link under /etc/systemd/system.
type Unit struct {
	Name   string // "apt-daily.timer"
	Target string // the unit that wants it: "timers.target"
}

// WantsLink is the enablement symlink systemctl enable creates.
func (u Unit) WantsLink() string {
	return "/etc/systemd/system/" + u.Target + ".wants/" + u.Name
}

// MaskLink is where systemctl mask puts its /dev/null link.
func (u Unit) MaskLink() string { return "/etc/systemd/system/" + u.Name }

// Masked reports whether the unit is masked in the target.
func (u Unit) Masked(h host.Host) bool {
	target, err := h.Readlink(u.MaskLink())
	return err == nil && target == "/dev/null"
}

// Enable unmasks and enables the unit unless its wants link exists already,
// so a converged host records no change. systemctl runs inside the root
// when the host is offline.
func (u Unit) Enable(ctx context.Context, h host.Host) error {
	if u.Masked(h) {
		if err := h.Exec(ctx, "unmask "+u.Name, "systemctl", "unmask", u.Name); err != nil {
			return fmt.Errorf("unmask %s: %w", u.Name, err)
		}
	}
	_, err := h.Lstat(u.WantsLink())
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", u.WantsLink(), err)
	}
	if err := h.Exec(ctx, "enable "+u.Name, "systemctl", "enable", u.Name); err != nil {
		return fmt.Errorf("enable %s: %w", u.Name, err)
	}
	return nil
}

// Enabled checks the wants link (offline and live alike): a masked or
// unlinked unit never starts at boot.
func (u Unit) Enabled(m provision.Meta, h host.Host) provision.Finding {
	f := m.Finding(u.Name+" enabled", "wanted by "+u.Target+", not masked")
	if u.Masked(h) {
		return Fail(f, "masked", u.Name+" is masked; run bulwark apply", provision.Evidence{Source: u.MaskLink(), Read: "-> /dev/null"})
	}
	target, err := h.Readlink(u.WantsLink())
	if err != nil {
		return Fail(f, "not enabled", u.Name+" does not start at boot; run bulwark apply", provision.Evidence{Source: u.WantsLink(), Read: err.Error()})
	}
	return Pass(f, "enabled", provision.Evidence{Source: u.WantsLink(), Read: "-> " + target})
}

// Active reads the unit's state over systemd's D-Bus API (never by
// parsing systemctl) and passes when it is active.
func Active(ctx context.Context, m provision.Meta, unit string) provision.Finding {
	f := m.Finding("unit "+unit, "active")
	src := "systemd D-Bus " + unit
	st, err := probe.Unit(ctx, unit)
	if err != nil {
		return Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	ev := provision.Evidence{Source: src, Read: st.String()}
	if st.ActiveState != "active" {
		return Fail(f, st.ActiveState, unit+" is not running", ev)
	}
	return Pass(f, st.ActiveState, ev)
}

// Converge brings units in line with what Apply just wrote (live hosts
// only): when this Apply changed anything, systemd rereads its unit files
// and the units restart; otherwise a unit that is not running is started.
// Running units with unchanged configuration are left alone, so a second
// Apply records nothing.
func Converge(ctx context.Context, h host.Host, m provision.Meta, changed bool, units ...string) error {
	if !h.Live() {
		return nil
	}
	if changed {
		if err := h.Exec(ctx, "reload unit files", "systemctl", "daemon-reload"); err != nil {
			return m.Wrap("daemon-reload", err)
		}
	}
	for _, u := range units {
		st, err := probe.Unit(ctx, u)
		if err != nil {
			return m.Wrap("read "+u, err)
		}
		verb := "restart"
		if !changed {
			if st.ActiveState == "active" {
				continue
			}
			verb = "start"
		}
		if err := h.Exec(ctx, verb+" "+u, "systemctl", verb, u); err != nil {
			return m.Wrap(verb+" "+u, err)
		}
	}
	return nil
}
