package baseline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
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

// StatOverride is dpkg's list of modes it keeps: a package upgrade that
// installs one of these paths again gives it the override's mode, not the
// package's, so the narrowed mode survives unattended upgrades.
const StatOverride = "/var/lib/dpkg/statoverride"

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

// overrides reads dpkg's stat overrides: path -> "owner group mode".
func overrides(h host.Host) (map[string][]string, error) {
	b, err := h.ReadFile(StatOverride)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			out[f[3]] = f[:3]
		}
	}
	return out, nil
}

// Apply registers each present path's narrowed mode with dpkg-statoverride
// --update, which also sets it now. An existing override for the path
// that allows more is replaced; one that is already narrow enough stays.
func (*Permissions) Apply(ctx context.Context, h host.Host) error {
	ov, err := overrides(h)
	if err != nil {
		return permissionsMeta.Wrap("read "+StatOverride, err)
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
			if m, err := parseMode(o[2]); err == nil && m&^p.max == 0 && st.Mode().Perm() == m {
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

func parseMode(s string) (fs.FileMode, error) {
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil {
		return 0, fmt.Errorf("mode %q: %w", s, err)
	}
	return fs.FileMode(m).Perm(), nil
}

// Verify reads each present path's mode and dpkg's override for it: both
// must be within the bound, or the next upgrade of the package widens it.
func (*Permissions) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	ov, ovErr := overrides(h)
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
		ev := []provision.Evidence{{Source: p.path, Read: fmt.Sprintf("mode %04o", mode)}, {Source: StatOverride, Read: strings.Join(append(o, p.path), " ")}}
		if !has {
			ev[1].Read = "no override for " + p.path
		}
		om, omErr := fs.FileMode(0), error(nil)
		if has {
			om, omErr = parseMode(o[2])
		}
		switch {
		case ovErr != nil:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o", mode), ovErr.Error(), provision.Evidence{Source: StatOverride, Read: ovErr.Error()}))
		case mode&^p.max != 0:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o", mode), "readable or writable beyond root; run bulwark apply", ev...))
		case !has:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o, no override", mode), "the next upgrade of its package puts the package's mode back; run bulwark apply", ev...))
		case omErr != nil || om&^p.max != 0:
			out = append(out, check.Fail(f, fmt.Sprintf("%04o, override %s", mode, o[2]), "dpkg's override allows more, and the next upgrade applies it; run bulwark apply", ev...))
		default:
			out = append(out, check.Pass(f, fmt.Sprintf("%04o", mode), ev...))
		}
	}
	return check.Timed(out, start)
}
