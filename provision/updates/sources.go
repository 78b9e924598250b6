package updates

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// Which security archives are configured is read from apt's sources and
// the Release files of their lists, as apt-cache policy reads them: a
// second apt process (the cache loaded and its policy built) cost a second
// of verify on a slow guest. Sources written in a form not read here (a
// flat repository, a mirror+ or cdrom: URI) send the caller back to
// apt-cache policy.

// sourcesList and sourcesDir are apt's default Dir::Etc::sourcelist and
// sourceparts.
const (
	sourcesList = "/etc/apt/sources.list"
	sourcesDir  = "/etc/apt/sources.list.d"
)

// source is one (URI, suite) a deb line or stanza configures.
type source struct{ uri, suite string }

// configuredSources reads every enabled binary (deb) source.
func configuredSources(h host.Host) ([]source, error) {
	var out []source
	add := func(uris, suites []string) error {
		for _, u := range uris {
			for _, s := range suites {
				if strings.HasSuffix(s, "/") || !strings.Contains(u, "://") || strings.HasPrefix(u, "mirror") {
					return errIndirect{"source " + u + " " + s + " is a flat or mirror-list repository"}
				}
				out = append(out, source{strings.TrimSuffix(u, "/"), s})
			}
		}
		return nil
	}
	files := []string{sourcesList}
	entries, err := host.ReadDir(h, sourcesDir)
	if err != nil && !errorsIsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", sourcesDir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources") {
			files = append(files, path.Join(sourcesDir, n))
		}
	}
	for _, f := range files {
		data, err := h.ReadFile(f)
		if errorsIsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		if strings.HasSuffix(f, ".sources") {
			for _, st := range deb822(string(data)) {
				if strings.EqualFold(st["enabled"], "no") || !slices.Contains(strings.Fields(st["types"]), "deb") {
					continue
				}
				if err := add(strings.Fields(st["uris"]), strings.Fields(st["suites"])); err != nil {
					return nil, err
				}
			}
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			l, _, _ = strings.Cut(l, "#")
			f := strings.Fields(l)
			if len(f) == 0 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if len(f) > 0 && strings.HasPrefix(f[0], "[") {
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) > 0 {
					f = f[1:]
				}
			}
			if len(f) < 2 {
				return nil, errIndirect{"unparsed line in " + sourcesList + ": " + l}
			}
			if err := add(f[:1], f[1:2]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// deb822 is the stanzas of a .sources file, keys lower-cased, continuation
// lines joined.
func deb822(s string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	key := ""
	for _, l := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
		case strings.TrimSpace(l) == "":
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur, key = map[string]string{}, ""
		case (l[0] == ' ' || l[0] == '\t') && key != "":
			cur[key] += " " + strings.TrimSpace(l)
		default:
			if k, v, ok := strings.Cut(l, ":"); ok {
				key = strings.ToLower(strings.TrimSpace(k))
				cur[key] = strings.TrimSpace(v)
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// listPrefix is the name apt gives a suite's files in its lists
// directory (apt-pkg's URItoFileName of URI/dists/SUITE/): the scheme and
// any user:password@ dropped, some characters %-quoted, '/' made '_'.
func listPrefix(uri, suite string) string {
	_, rest, _ := strings.Cut(uri, "://")
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		rest = rest[at+1:]
	}
	var b strings.Builder
	for _, c := range []byte(rest + "/dists/" + suite + "/") {
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\\|{}[]<>\"^~_=!@#$%&*", c) >= 0 {
			fmt.Fprintf(&b, "%%%02x", c)
			continue
		}
		if c == '/' {
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// securityFromSources returns the configured security archives, named as
// parseSecurityArchives names them (the Release file's Codename, else
// Suite, whichever ends in -security), and the lists-directory prefix of
// each source that is one.
func securityFromSources(h host.Host) (archives, prefixes []string, err error) {
	srcs, err := configuredSources(h)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, s := range srcs {
		prefix := listPrefix(s.uri, s.suite)
		data, err := h.ReadFile(path.Join(listsDir, prefix+"InRelease"))
		if errorsIsNotExist(err) {
			data, err = h.ReadFile(path.Join(listsDir, prefix+"Release"))
		}
		if errorsIsNotExist(err) {
			continue // never fetched: apt-cache policy lists no release for it either
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the Release file of %s %s: %w", s.uri, s.suite, err)
		}
		fields := releaseFields(data)
		name := ""
		for _, k := range []string{"Codename", "Suite"} {
			if v := fields[k]; strings.HasSuffix(v, "-security") {
				name = v
				break
			}
		}
		if name == "" {
			continue
		}
		prefixes = append(prefixes, prefix)
		if !seen[name] {
			seen[name] = true
			archives = append(archives, name)
		}
	}
	return archives, prefixes, nil
}

// releaseFields is the top-level fields of a Release or InRelease file,
// up to its checksum lists.
func releaseFields(data []byte) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "-----BEGIN PGP SIGNATURE") {
			break
		}
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
			if _, dup := out[k]; !dup {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
