package updates

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// Verify's count of pending security updates is read from the files apt
// itself reads, not from apt-get's dist-upgrade plan: building the solver
// for the plan took 4-5 s of a 13 s verify under TCG, and the question
// Verify asks is narrower than the plan. A security update is pending when
// an installed package (dpkg's status) has a newer version in the Packages
// list of a configured security archive (apt-cache policy says which are
// configured; a list left behind by a removed source is not one). Apply
// still installs from apt's plan, and re-checks with it.

// dpkgStatus is dpkg's database of installed packages.
const dpkgStatus = "/var/lib/dpkg/status"

// errIndirect: the lists are not in a form read here (compressed indexes,
// Acquire::GzipIndexes), so the caller asks apt instead.
type errIndirect struct{ why string }

func (e errIndirect) Error() string { return e.why }

// securityLists returns, for every Release file in apt's lists whose Suite
// or Codename is one of archives (and, unless prefixes is nil, whose name
// starts with one of prefixes: a configured source's), that suite and its
// binary Packages lists.
func securityLists(h host.Host, archives, prefixes []string) (map[string][]string, error) {
	want := map[string]bool{}
	for _, a := range archives {
		want[a] = true
	}
	entries, err := host.ReadDir(h, listsDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", listsDir, err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		prefix, ok := strings.CutSuffix(name, "InRelease")
		if !ok {
			if prefix, ok = strings.CutSuffix(name, "_Release"); !ok {
				continue
			}
			prefix += "_"
		}
		if prefixes != nil && !slices.Contains(prefixes, prefix) {
			continue
		}
		data, err := h.ReadFile(path.Join(listsDir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		suite := releaseSuite(data, want)
		if suite == "" {
			continue
		}
		for _, p := range entries {
			pn := p.Name()
			if !strings.HasPrefix(pn, prefix) || !strings.Contains(pn, "_binary-") || !strings.Contains(pn, "_Packages") {
				continue
			}
			if !strings.HasSuffix(pn, "_Packages") {
				return nil, errIndirect{"compressed package list " + pn}
			}
			out[suite] = append(out[suite], path.Join(listsDir, pn))
		}
	}
	return out, nil
}

// releaseSuite is the Suite or Codename of a Release file that is in want,
// or "".
func releaseSuite(release []byte, want map[string]bool) string {
	sc := bufio.NewScanner(bytes.NewReader(release))
	for sc.Scan() {
		l := sc.Text()
		if l == "" { // the Release fields end at the first blank line (InRelease: then the signature)
			if strings.HasPrefix(string(release), "-----BEGIN") {
				continue
			}
			break
		}
		for _, k := range []string{"Suite: ", "Codename: "} {
			if v, ok := strings.CutPrefix(l, k); ok && want[strings.TrimSpace(v)] {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// pkgKey names a binary package on one architecture, as dpkg does.
type pkgKey struct{ name, arch string }

// eachStanza calls fn with the Package, Version, Architecture and Status
// fields of every stanza of a deb822 package index or dpkg status file.
func eachStanza(data []byte, fn func(name, version, arch, status string)) {
	var name, version, arch, status string
	flush := func() {
		if name != "" {
			fn(name, version, arch, status)
		}
		name, version, arch, status = "", "", "", ""
	}
	for len(data) > 0 {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if len(l) == 0 {
			flush()
			continue
		}
		switch l[0] {
		case 'P':
			if v, ok := bytes.CutPrefix(l, []byte("Package: ")); ok {
				name = string(v)
			}
		case 'V':
			if v, ok := bytes.CutPrefix(l, []byte("Version: ")); ok {
				version = string(v)
			}
		case 'A':
			if v, ok := bytes.CutPrefix(l, []byte("Architecture: ")); ok {
				arch = string(v)
			}
		case 'S':
			if v, ok := bytes.CutPrefix(l, []byte("Status: ")); ok {
				status = string(v)
			}
		}
	}
	flush()
}

// installedVersions reads dpkg's status: the version of every package
// whose state is "installed" (held or not).
func installedVersions(h host.Host) (map[pkgKey]string, error) {
	data, err := h.ReadFile(dpkgStatus)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dpkgStatus, err)
	}
	out := map[pkgKey]string{}
	eachStanza(data, func(name, version, arch, status string) {
		if f := strings.Fields(status); len(f) == 3 && f[2] == "installed" {
			out[pkgKey{name, arch}] = version
		}
	})
	return out, nil
}

// pendingFromLists compares the installed packages with the security
// archives' lists and returns one apt-style Inst line per package that has
// a newer security version ("Inst NAME [INSTALLED] (NEW SUITE [ARCH])"),
// sorted by name.
func pendingFromLists(h host.Host, archives, prefixes []string) ([]string, error) {
	lists, err := securityLists(h, archives, prefixes)
	if err != nil {
		return nil, err
	}
	if len(lists) == 0 {
		return nil, errIndirect{"no Packages list of " + strings.Join(archives, ", ") + " under " + listsDir}
	}
	installed, err := installedVersions(h)
	if err != nil {
		return nil, err
	}
	type update struct{ version, suite string }
	newest := map[pkgKey]update{}
	for suite, files := range lists {
		for _, f := range files {
			data, err := h.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f, err)
			}
			eachStanza(data, func(name, version, arch, _ string) {
				k := pkgKey{name, arch}
				have, ok := installed[k]
				if !ok || compareVersions(version, have) <= 0 {
					return
				}
				if u, seen := newest[k]; !seen || compareVersions(version, u.version) > 0 {
					newest[k] = update{version, suite}
				}
			})
		}
	}
	var out []string
	for k, u := range newest {
		out = append(out, fmt.Sprintf("Inst %s [%s] (%s %s [%s])", k.name, installed[k], u.version, u.suite, k.arch))
	}
	sort.Strings(out)
	return out, nil
}
