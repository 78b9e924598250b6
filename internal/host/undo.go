package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
)

// inferUndo works out how to reverse the few state-changing commands
// controls run whose effect the host can read beforehand: unit enablement
// (systemctl enable/disable/mask/unmask of one unit), a created group, a
// path's mode or group (chmod, chgrp of one path) and dpkg's stat
// overrides.
// It asks the target's current state first, so the undo restores exactly
// that state; a command that would change nothing gets an empty undo.
// Anything else returns nil: journalled as done, not reversible.
func (l *Local) inferUndo(ctx context.Context, name string, args []string) (undo []string, known bool) {
	switch {
	case name == "systemctl" && len(args) == 2:
		return l.unitUndo(ctx, args[0], args[1])
	case name == "groupadd" && len(args) > 0:
		g := args[len(args)-1]
		if _, err := l.Query(ctx, "getent", "group", g); err == nil {
			return nil, true // already there: groupadd will fail or change nothing
		}
		return []string{"groupdel", g}, true
	case name == "chmod" && len(args) == 2:
		return l.modeUndo(args[1])
	case name == "chgrp" && len(args) == 2:
		st, err := l.Lstat(args[1])
		if err != nil {
			return nil, false
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return nil, false
		}
		return []string{"chgrp", strconv.FormatUint(uint64(sys.Gid), 10), args[1]}, true
	case name == "dpkg-statoverride":
		return l.statOverrideUndo(args)
	case name == "pam-auth-update" && len(args) > 1 && args[0] == "--enable":
		// pam-auth-update regenerates /etc/pam.d/common-* from the enabled
		// profiles, so disabling the same ones regenerates what was there.
		// With --force it also overwrites hand edits, which nothing can
		// give back: that form stays unknown.
		return append([]string{"pam-auth-update", "--disable"}, args[1:]...), true
	}
	return nil, false
}

// modeUndo is the chmod that puts p's mode, special bits included, back.
// Five octal digits: GNU chmod keeps a directory's setgid bit on a
// four-digit mode and clears it only when told with the fifth.
func (l *Local) modeUndo(p string) ([]string, bool) {
	st, err := l.Lstat(p)
	if err != nil {
		return nil, false
	}
	m := uint32(st.Mode().Perm())
	for bit, oct := range map[fs.FileMode]uint32{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if st.Mode()&bit != 0 {
			m |= oct
		}
	}
	return []string{"chmod", fmt.Sprintf("%05o", m), p}, true
}

// StatOverrideFile is dpkg's list of owners and modes it keeps: a package
// upgrade that installs one of its paths again gives it the override's
// mode, not the package's.
const StatOverrideFile = "/var/lib/dpkg/statoverride"

// StatOverride is one line of StatOverrideFile, as dpkg writes it (the
// mode in octal without a leading zero).
type StatOverride struct{ Owner, Group, Mode string }

// Line is the override as dpkg-statoverride --list prints it for path.
func (o StatOverride) Line(path string) string {
	return strings.Join([]string{o.Owner, o.Group, o.Mode, path}, " ")
}

// StatOverrides reads StatOverrideFile on h: path -> override. No file
// means no overrides.
func StatOverrides(h Host) (map[string]StatOverride, error) {
	b, err := h.ReadFile(StatOverrideFile)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]StatOverride{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host: read %s: %w", StatOverrideFile, err)
	}
	out := map[string]StatOverride{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			out[f[3]] = StatOverride{Owner: f[0], Group: f[1], Mode: f[2]}
		}
	}
	return out, nil
}

// statOverrideUndo reverses `--update --add OWNER GROUP MODE PATH` (remove
// the override, put the mode back) and `--remove PATH` (add the override
// that was there back).
func (l *Local) statOverrideUndo(args []string) ([]string, bool) {
	if len(args) == 0 {
		return nil, false
	}
	p := args[len(args)-1]
	ov, err := StatOverrides(l)
	if err != nil {
		return nil, false
	}
	old, had := ov[p]
	switch {
	case len(args) == 6 && args[0] == "--update" && args[1] == "--add":
		if had {
			return nil, false // --add refuses an existing override: nothing changes
		}
		chmod, ok := l.modeUndo(p)
		if !ok {
			return nil, false
		}
		return []string{"sh", "-c", `dpkg-statoverride --remove "$1" && ` + strings.Join(chmod[:2], " ") + ` "$1"`, "sh", p}, true
	case len(args) == 2 && args[0] == "--remove":
		if !had {
			return nil, true // nothing to remove: nothing changes
		}
		return []string{"dpkg-statoverride", "--add", old.Owner, old.Group, old.Mode, p}, true
	}
	return nil, false
}

// unitUndo maps a verb and the unit's current `systemctl is-enabled` state
// to the command restoring that state.
func (l *Local) unitUndo(ctx context.Context, verb, unit string) ([]string, bool) {
	inverse := map[string]string{"enable": "disable", "disable": "enable", "mask": "unmask", "unmask": "mask"}
	inv, ok := inverse[verb]
	if !ok {
		return nil, false
	}
	// is-enabled exits non-zero for disabled and masked units; the state
	// is on stdout either way.
	out, _ := l.Query(ctx, "systemctl", "is-enabled", unit)
	state := strings.TrimSpace(string(out))
	changes := map[string]bool{
		"enable":  state == "disabled",
		"disable": state == "enabled",
		"mask":    !strings.HasPrefix(state, "masked"),
		"unmask":  strings.HasPrefix(state, "masked"),
	}[verb]
	if !changes {
		return nil, true
	}
	return []string{"systemctl", inv, unit}, true
}
