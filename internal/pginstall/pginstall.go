// Package pginstall finds which PostgreSQL server a Debian-family system
// has installed. Debian and Ubuntu (postgresql-common) install each major
// version side by side under /usr/lib/postgresql/<major>, and which major
// that is belongs to the distribution: 15 on Debian 12, 16 on Ubuntu
// 24.04, 17 on Debian 13, and two at once during an upgrade. So the
// version is read off the target's tree, never assumed.
//
// It lives in internal/ because both the database family (on the target)
// and the test services (on the build machine) need the same answer.
package pginstall

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// Debian's roots for the per-version trees.
const (
	LibDir = "/usr/lib/postgresql" // <major>/bin holds postgres, initdb, psql …
	EtcDir = "/etc/postgresql"     // <major>/<cluster> holds a cluster's config
)

// ErrNotInstalled is returned (wrapped, naming what was looked for) when
// no major version has a server binary.
var ErrNotInstalled = errors.New("no PostgreSQL server installed")

// BinDir is where Debian installs major's server programs.
func BinDir(major string) string { return path.Join(LibDir, major, "bin") }

// ConfDir is the configuration directory of major's cluster "main", the
// one postgresql-common creates on install.
func ConfDir(major string) string { return path.Join(EtcDir, major, "main") }

// Find returns the major version to use on h: the highest one whose bin
// directory holds postgres. When several are installed, the highest one
// that already has cluster "main" configured wins: until pg_upgradecluster
// moves the data, the older cluster is the database, and configuring an
// empty cluster of the newer version would silently switch to it.
func Find(h host.Host) (string, error) {
	installed, err := installed(h)
	if err != nil {
		return "", err
	}
	if len(installed) == 0 {
		return "", fmt.Errorf("%w: no %s/<major>/bin/postgres in %s (install the postgresql package)", ErrNotInstalled, LibDir, h.Root())
	}
	for i := len(installed) - 1; i >= 0; i-- {
		ok, err := exists(h, path.Join(ConfDir(installed[i]), "postgresql.conf"))
		if err != nil {
			return "", err
		}
		if ok {
			return installed[i], nil
		}
	}
	return installed[len(installed)-1], nil
}

// installed lists the majors with a server binary, lowest first. A
// missing LibDir is no error: it means nothing is installed.
func installed(h host.Host) ([]string, error) {
	entries, err := host.ReadDir(h, LibDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pginstall: list installed servers: %w", err)
	}
	var out []string
	for _, e := range entries {
		if _, ok := parse(e.Name()); !ok {
			continue // e.g. a stray file; Debian names the dirs by major only
		}
		// A version dir without postgres is a client-only or half-removed
		// package (postgresql-client-N keeps psql there): not a server.
		ok, err := exists(h, path.Join(BinDir(e.Name()), "postgres"))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, compare)
	return out, nil
}

// exists reports whether p is a regular file (following links, inside the
// target's root). Absence is false; any other failure is returned, so an
// unreadable tree is not mistaken for an empty one.
func exists(h host.Host, p string) (bool, error) {
	st, err := h.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pginstall: stat %s: %w", p, err)
	}
	return st.Mode().IsRegular(), nil
}

// parse reads "17" or "9.6" (majors before 10 had two parts) as numbers:
// compared as strings, "9.6" would sort above "17".
func parse(v string) ([]int, bool) {
	var out []int
	for _, s := range strings.Split(v, ".") {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return nil, false // Atoi alone would take "+17"
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0 && len(out) <= 2
}

func compare(a, b string) int {
	x, _ := parse(a)
	y, _ := parse(b)
	return slices.Compare(x, y)
}
