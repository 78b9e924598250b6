//go:build linux

package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// The cluster's configuration is readable by the server's group and by
// nobody else. It holds no password (peer authentication), but it maps the
// service's users, paths and logging, and an auditor's scanner (Lynis
// DBS-1828) flags a world-readable PostgreSQL configuration file.
const (
	confGroup = "postgres"
	confPerm  = fs.FileMode(0o640)
)

// confEntry is one file or directory under ConfDir as find reports it.
type confEntry struct {
	path  string
	dir   bool
	mode  fs.FileMode // permission and setgid bits
	group string
}

// readConfDir lists ConfDir with each entry's type, mode and group name,
// read inside the target (an image's group names are its own).
func readConfDir(ctx context.Context, h host.Host, l Layout) ([]confEntry, error) {
	if _, err := h.Stat(l.ConfDir); err != nil {
		return nil, err
	}
	out, err := h.Query(ctx, "find", l.ConfDir, "-printf", `%y %m %g %p\n`)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.ConfDir, err)
	}
	var es []confEntry
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("list %s: unexpected find line %q", l.ConfDir, line)
		}
		m, err := strconv.ParseUint(f[1], 8, 32)
		if err != nil {
			return nil, fmt.Errorf("list %s: mode of %s: %w", l.ConfDir, f[3], err)
		}
		mode := fs.FileMode(m & 0o777)
		if m&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		es = append(es, confEntry{path: f[3], dir: f[0] == "d", mode: mode, group: f[2]})
	}
	return es, nil
}

// exposed is what is wrong with e, or "": a file others can read or the
// server's group cannot.
func (e confEntry) exposed() string {
	switch {
	case e.dir:
		return ""
	case e.mode.Perm()&0o007 != 0:
		return fmt.Sprintf("%s %04o (others can read it)", e.path, e.mode.Perm())
	case e.group != confGroup:
		return fmt.Sprintf("%s group %s (the server reads it as group %s)", e.path, e.group, confGroup)
	}
	return ""
}

// privateConf gives the directories under ConfDir, and with files its
// files too, group postgres; directories get the setgid bit and files lose
// every bit for others. Directories go first, before any file is written:
// a file bulwark writes is a temporary renamed into place, and in a setgid
// directory it is born in group postgres, so there is no moment when the
// server cannot read its own configuration. With files it also closes the
// files bulwark does not write (Debian's postgresql.conf, pg_ctl.conf,
// start.conf, environment), which pg_createcluster leaves world-readable.
func privateConf(ctx context.Context, h host.Host, l Layout, files bool) error {
	es, err := readConfDir(ctx, h, l)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a dry run before the cluster exists: nothing to close yet
	}
	if err != nil {
		return err
	}
	for _, e := range es {
		if !e.dir && !files {
			continue
		}
		if e.group != confGroup {
			if err := h.Exec(ctx, "give "+e.path+" to group "+confGroup, "chgrp", confGroup, e.path); err != nil {
				return err
			}
		}
		switch {
		case e.dir && e.mode&fs.ModeSetgid == 0:
			err = h.Exec(ctx, "make files written in "+e.path+" group "+confGroup, "chmod", "g+s", e.path)
		case !e.dir && e.mode.Perm()&0o007 != 0:
			m := fmt.Sprintf("%04o", e.mode.Perm()&^0o007|0o040)
			err = h.Exec(ctx, "close "+e.path+" to others ("+m+")", "chmod", m, e.path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// confFile is one of bulwark's files under ConfDir and its content.
type confFile struct {
	path string
	data []byte
}

// writeConf writes bulwark's files under ConfDir, mode confPerm, after one
// privateConf pass over the directories makes them group postgres.
func writeConf(ctx context.Context, h host.Host, l Layout, files ...confFile) error {
	if err := privateConf(ctx, h, l, false); err != nil {
		return err
	}
	for _, f := range files {
		if err := h.WriteFile(f.path, f.data, confPerm); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// confFinding fails on every file under ConfDir that others can read or
// the server's group cannot, naming each.
func confFinding(ctx context.Context, h host.Host, l Layout) provision.Finding {
	f := configMeta.Finding("files under "+l.ConfDir, fmt.Sprintf("group %s, not readable by others", confGroup))
	es, err := readConfDir(ctx, h, l)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: l.ConfDir, Read: err.Error()})
	}
	var bad, all []string
	for _, e := range es {
		all = append(all, fmt.Sprintf("%s %04o %s", path.Base(e.path), e.mode.Perm(), e.group))
		if s := e.exposed(); s != "" {
			bad = append(bad, s)
		}
	}
	sort.Strings(bad)
	ev := provision.Evidence{Source: "find " + l.ConfDir, Read: strings.Join(all, "\n")}
	if len(bad) > 0 {
		return check.Fail(f, strings.Join(bad, "; "), "the server's configuration is exposed; run bulwark apply", ev)
	}
	return check.Pass(f, fmt.Sprintf("%d entries private", len(es)), ev)
}
