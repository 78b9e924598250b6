// Package clamav keeps the malware scanner transferd depends on usable:
// clamd answering on a Unix socket only (never TCP), freshclam fetching
// signatures on the policy's interval, both enabled, signatures fresh, and
// live, the EICAR test string detected through clamd's socket.
package clamav

import (
	"slices"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Family is the clamav family for provision/all.
var Family = provision.Family{Name: "clamav", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, s provision.Stage) []provision.Control {
	return []provision.Control{
		&Daemon{ClamAV: p.ClamAV, MaxUploadMiB: p.Transfer.MaxUploadMiB, Stage: s},
		&Signatures{ClamAV: p.ClamAV, Stage: s},
	}
}

var rows = []string{"SOC2:CC7", "SOX:Malware Protection"}

// conf is a clamd.conf / freshclam.conf: "Key value" lines; # comments.
type conf map[string][]string

func parseConf(b []byte) conf {
	c := conf{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		c[k] = append(c[k], strings.TrimSpace(v))
	}
	return c
}

// setConf edits a distribution-owned file in place: each key in set ends
// up on exactly one line (where it first appeared, else appended), each
// key in drop on none. Everything else, comments included, is kept, so the
// distribution's other defaults survive and a second run changes nothing.
func setConf(b []byte, set [][2]string, drop []string) []byte {
	done := map[string]bool{}
	var out []string
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for _, line := range lines {
		k, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if slices.Contains(drop, k) {
			continue
		}
		if i := slices.IndexFunc(set, func(kv [2]string) bool { return kv[0] == k }); i >= 0 {
			if !done[k] {
				out = append(out, k+" "+set[i][1])
				done[k] = true
			}
			continue
		}
		out = append(out, line)
	}
	for _, kv := range set {
		if !done[kv[0]] {
			out = append(out, kv[0]+" "+kv[1])
		}
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// convergeConf rewrites path through the host (compare-then-write).
func convergeConf(h host.Host, m provision.Meta, path string, set [][2]string, drop []string) error {
	b, err := h.ReadFile(path)
	if err != nil {
		return m.Wrap("read "+path+" (is the clamav package installed?)", err)
	}
	return m.Wrap("write "+path, h.WriteFile(path, setConf(b, set, drop), 0o644))
}

// confFindings checks the effective values: each set key holds exactly
// one wanted value, each dropped key is absent.
func confFindings(m provision.Meta, h host.Host, path string, set [][2]string, drop []string) []provision.Finding {
	b, err := h.ReadFile(path)
	if err != nil {
		f := m.Finding("file "+path, "present")
		return []provision.Finding{check.Fail(f, "missing", err.Error(), provision.Evidence{Source: path, Read: err.Error()})}
	}
	c := parseConf(b)
	var out []provision.Finding
	for _, kv := range set {
		f := m.Finding(path+" "+kv[0], kv[1])
		got := c[kv[0]]
		ev := provision.Evidence{Source: path, Read: quote(kv[0], got)}
		if len(got) != 1 || got[0] != kv[1] {
			out = append(out, check.Fail(f, strings.Join(got, ", "), "run bulwark apply", ev))
			continue
		}
		out = append(out, check.Pass(f, got[0], ev))
	}
	for _, k := range drop {
		f := m.Finding(path+" "+k, "absent")
		ev := provision.Evidence{Source: path, Read: quote(k, c[k])}
		if len(c[k]) > 0 {
			out = append(out, check.Fail(f, strings.Join(c[k], ", "), k+" is set: the scanner would be reachable over TCP", ev))
			continue
		}
		out = append(out, check.Pass(f, "absent", ev))
	}
	return out
}

func quote(k string, vals []string) string {
	if len(vals) == 0 {
		return k + " not set"
	}
	var s []string
	for _, v := range vals {
		s = append(s, k+" "+v)
	}
	return strings.Join(s, "\n")
}
