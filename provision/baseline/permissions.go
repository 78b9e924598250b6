package baseline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// privatePath is a system file or directory only root reads, and the
// broadest mode it may have.
type privatePath struct {
	path string
	max  fs.FileMode
}

// PrivatePaths are what baseline.permissions narrows (Lynis FILE-7524
// reads the same list): cron's schedules, which say what runs as root and
// when, and sshd's main configuration. Only root (cron, run-parts, sshd)
// reads them. /boot/grub/grub.cfg is not here: grub-mkconfig writes it
// 0444 on every kernel update, it holds no password, and a control that
// every unattended kernel upgrade breaks would cry wolf.
var PrivatePaths = []privatePath{
	{"/etc/crontab", 0o600},
	{"/etc/cron.d", 0o700},
	{"/etc/cron.hourly", 0o700},
	{"/etc/cron.daily", 0o700},
	{"/etc/cron.weekly", 0o700},
	{"/etc/cron.monthly", 0o700},
	{"/etc/cron.yearly", 0o700},
	{"/etc/ssh/sshd_config", 0o600},
}

var permissionsMeta = provision.Meta{
	ID:    "baseline.permissions",
	Title: "Cron's schedules and sshd's configuration readable by root only, kept so across package upgrades",
	Rows:  []string{"SOC2:CC6"},
}

// Permissions is the control baseline.permissions.
type Permissions struct{}

func (*Permissions) Meta() provision.Meta { return permissionsMeta }

// narrowed is the mode p should have: its own bits within max.
func (p privatePath) narrowed(mode fs.FileMode) fs.FileMode { return mode.Perm() & p.max }

// overrideMode is o's mode and whether it is within p's bound (a mode
// dpkg wrote that does not parse is not).
func (p privatePath) overrideMode(o host.StatOverride) (fs.FileMode, bool) {
	m, err := strconv.ParseUint(o.Mode, 8, 32)
	return fs.FileMode(m).Perm(), err == nil && fs.FileMode(m)&^p.max == 0
}

// Apply registers each present path's narrowed mode with dpkg-statoverride
// --update, which also sets it now. An existing override for the path
// that allows more is replaced; one that is already narrow enough stays.
func (*Permissions) Apply(ctx context.Context, h host.Host) error {
	ov, err := host.StatOverrides(h)
	if err != nil {
		return permissionsMeta.Wrap("overrides", err)
	}
	for _, p := range PrivatePaths {
		st, err := h.Lstat(p.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not installed: nothing to narrow
		}
		if err != nil {
			return permissionsMeta.Wrap("stat "+p.path, err)
		}
		if !st.Mode().IsRegular() && !st.IsDir() {
			return permissionsMeta.Wrap("narrow "+p.path, fmt.Errorf("%s is a %s, not a file or directory; nothing changed", p.path, st.Mode().Type()))
		}
		want := p.narrowed(st.Mode())
		if o, ok := ov[p.path]; ok {
			if m, within := p.overrideMode(o); within && st.Mode().Perm() == m {
				continue
			}
			if err := h.Exec(ctx, "drop the wider stat override of "+p.path, "dpkg-statoverride", "--remove", p.path); err != nil {
				return permissionsMeta.Wrap("statoverride "+p.path, err)
			}
		}
		if err := h.Exec(ctx, fmt.Sprintf("keep %s at %04o across upgrades", p.path, want),
			"dpkg-statoverride", "--update", "--add", "root", "root", fmt.Sprintf("%04o", want), p.path); err != nil {
			return permissionsMeta.Wrap("statoverride "+p.path, err)
		}
	}
	return nil
}

// Verify reads each present path's mode and dpkg's override for it: both
// must be within the bound, or the next upgrade of the package widens it.
func (*Permissions) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	ov, ovErr := host.StatOverrides(h)
	for _, p := range PrivatePaths {
		f := permissionsMeta.Finding("mode "+p.path, fmt.Sprintf("%04o or stricter, kept by dpkg-statoverride", p.max))
		st, err := h.Lstat(p.path)
		if errors.Is(err, fs.ErrNotExist) {
			out = append(out, check.NotApplicable(f, "absent", "not installed on this system", provision.Evidence{Source: p.path, Read: err.Error()}))
			continue
		}
		if err != nil {
			out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: p.path, Read: err.Error()}))
			continue
		}
		mode := st.Mode().Perm()
		o, has := ov[p.path]
		ev := []provision.Evidence{{Source: p.path, Read: fmt.Sprintf("mode %04o", mode)}, {Source: host.StatOverrideFile, Read: "no override for " + p.path}}
		if has {
			ev[1].Read = o.Line(p.path)
		}
		_, within := p.overrideMode(o)
		switch {
		case ovErr != nil:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o", mode), ovErr.Error(), provision.Evidence{Source: host.StatOverrideFile, Read: ovErr.Error()}))
		case mode&^p.max != 0:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o", mode), "readable or writable beyond root; run bulwark apply", ev...))
		case !has:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o, no override", mode), "the next upgrade of its package puts the package's mode back; run bulwark apply", ev...))
		case !within:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o, override %s", mode, o.Mode), "dpkg's override allows more, and the next upgrade applies it; run bulwark apply", ev...))
		default:
			out = append(out, check.Pass(f, fmt.Sprintf("%04o", mode), ev...))
		}
	}
	return check.Timed(out, start)
}
