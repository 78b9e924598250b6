//go:build linux

package firewall

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
)

// drift is one difference between the model and the live table. Topic is
// the control that owns it, so each control reports only its own drift.
type drift struct {
	Topic    string
	What     string
	Expected string
	Actual   string
}

// Topics, one per control (see controls.go).
const (
	topicDefaultDeny = "default-deny"
	topicPublic      = "public-ports"
	topicSSH         = "admin-ssh"
	topicAdminUI     = "admin-ui"
	topicRate        = "rate-limit"
)

func ruleTopic(name string) string {
	switch {
	case strings.HasPrefix(name, "public-"):
		return topicPublic
	case strings.HasPrefix(name, "ssh-admin-"):
		return topicSSH
	case strings.HasPrefix(name, "admin-ui-"):
		return topicAdminUI
	case strings.HasPrefix(name, "rate-"), strings.HasPrefix(name, "icmp-echo-"):
		return topicRate
	}
	return topicDefaultDeny
}

func setTopic(name string) string {
	switch {
	case strings.HasPrefix(name, "ssh_admin"):
		return topicSSH
	case strings.HasPrefix(name, "web_admin"):
		return topicAdminUI
	case strings.Contains(name, "meter"):
		return topicRate
	}
	return topicDefaultDeny
}

// diff compares the live table with the model. An empty result means the
// kernel enforces exactly the model.
func diff(want, got state, table string) []drift {
	if !got.Exists {
		return []drift{{Topic: topicDefaultDeny, What: "table inet " + table, Expected: "present", Actual: "missing"}}
	}
	out := diffSets(want.Sets, got.Sets)
	return append(out, diffChains(want.Chains, got.Chains)...)
}

func diffSets(want, got []setState) []drift {
	return matchByName(want, got, func(s setState) string { return s.Name },
		func(w, g setState, ok bool) []drift {
			what := "set " + w.Name
			switch {
			case !ok:
				return []drift{{setTopic(w.Name), what, "present", "missing"}}
			case g.Kind != w.Kind:
				return []drift{{setTopic(w.Name), what + " type", w.Kind, g.Kind}}
			case strings.Contains(w.Kind, "dynamic"):
				// A meter's elements are per-source rate state the kernel
				// adds on each new connection and expires: traffic, not
				// config. Its type (timeout, size) was compared above.
				return nil
			}
			return diffElements(w, g)
		},
		func(name string, g setState) drift {
			return drift{topicDefaultDeny, "set " + name, "absent", "extra set " + g.Kind}
		})
}

func diffElements(w, g setState) []drift {
	// Both sides come sorted from rangesFromElements, so the common case,
	// no drift, is one linear pass; only a difference pays for the maps.
	if slices.Equal(w.Ranges, g.Ranges) {
		return nil
	}
	var out []drift
	have, want := rangeSet(g.Ranges), rangeSet(w.Ranges)
	for _, r := range w.Ranges {
		if !have[r] {
			out = append(out, drift{setTopic(w.Name), "set " + w.Name + " element " + r.String(), "present", "missing"})
		}
	}
	for _, r := range g.Ranges {
		if !want[r] {
			out = append(out, drift{setTopic(w.Name), "set " + w.Name + " element " + r.String(), "absent", "extra element"})
		}
	}
	return out
}

// rangeSet indexes ranges for lookup: sets of 10 000 networks compared
// element by element would be quadratic.
func rangeSet(rs []Range) map[Range]bool {
	m := make(map[Range]bool, len(rs))
	for _, r := range rs {
		m[r] = true
	}
	return m
}

func diffChains(want, got []chainState) []drift {
	return matchByName(want, got, func(c chainState) string { return c.Name },
		func(w, g chainState, ok bool) []drift {
			what := "chain " + w.Name
			switch {
			case !ok:
				return []drift{{topicDefaultDeny, what, w.Base, "missing"}}
			case g.Base != w.Base:
				return append([]drift{{topicDefaultDeny, what, w.Base, g.Base}}, diffRules(w, g)...)
			}
			return diffRules(w, g)
		},
		func(name string, g chainState) drift {
			return drift{topicDefaultDeny, "chain " + name, "absent", "extra chain " + g.Base}
		})
}

// matchByName pairs each wanted item with the live one of the same name
// (ok false when it is missing), then reports each live item nothing
// wanted as extra, in name order so drift reads the same on every run.
func matchByName[T any](want, got []T, name func(T) string, pair func(w, g T, ok bool) []drift, extra func(name string, g T) drift) []drift {
	live := make(map[string]T, len(got))
	for _, g := range got {
		live[name(g)] = g
	}
	var out []drift
	for _, w := range want {
		g, ok := live[name(w)]
		delete(live, name(w))
		out = append(out, pair(w, g, ok)...)
	}
	for _, n := range sortedKeys(live) {
		out = append(out, extra(n, live[n]))
	}
	return out
}

func diffRules(w, g chainState) []drift {
	var out []drift
	wantIdx := map[string]int{}
	for i, r := range w.Rules {
		wantIdx[r.Name] = i
	}
	seen := map[string]bool{}
	var order []string
	prev := "start of chain"
	for _, r := range g.Rules {
		i, known := wantIdx[r.Name]
		switch {
		case !known || seen[r.Name]:
			out = append(out, drift{ruleTopic(r.Name), fmt.Sprintf("chain %s: extra rule after %s", w.Name, prev), "absent", r.summary()})
		case w.Rules[i].Exprs != r.Exprs:
			out = append(out, drift{ruleTopic(r.Name), fmt.Sprintf("chain %s rule %q changed", w.Name, r.Name),
				w.Rules[i].text + " (" + w.Rules[i].Exprs + ")", r.Exprs})
		}
		if known && !seen[r.Name] {
			order = append(order, r.Name)
		}
		seen[r.Name] = true
		prev = fmt.Sprintf("rule %q", r.Name)
		if r.Name == "" {
			prev = "an unnamed rule"
		}
	}
	var wantOrder []string
	for _, r := range w.Rules {
		if !seen[r.Name] {
			out = append(out, drift{ruleTopic(r.Name), fmt.Sprintf("chain %s rule %q", w.Name, r.Name), "present: " + r.text, "missing"})
			continue
		}
		wantOrder = append(wantOrder, r.Name)
	}
	if !slices.Equal(order, wantOrder) {
		out = append(out, drift{topicDefaultDeny, "chain " + w.Name + " rule order", strings.Join(wantOrder, ", "), strings.Join(order, ", ")})
	}
	return out
}

// summary names a rule for a finding: its comment when it has one, and
// the ports it matches and its verdict, which is what a reviewer needs to
// see of an "extra accept rule".
func (r ruleState) summary() string {
	s := strings.TrimSpace(fmt.Sprintf("%s %s", portsText(r.ports), r.verdict))
	if r.Name != "" {
		s += fmt.Sprintf(" comment %q", r.Name)
	}
	return s + " (" + r.Exprs + ")"
}

func portsText(ps []uint16) string {
	var b []string
	for _, p := range ps {
		b = append(b, fmt.Sprintf("th dport %d", p))
	}
	return strings.Join(b, " ")
}

// matchInfo pulls the destination ports and the verdict out of a rule's
// expressions; the no-db-port control reasons on these.
func matchInfo(es []expr.Any) (ports []uint16, verdict string) {
	for i, e := range es {
		switch v := e.(type) {
		case *expr.Payload:
			if v.Base == expr.PayloadBaseTransportHeader && v.Offset == 2 && v.Len == 2 && i+1 < len(es) {
				if c, ok := es[i+1].(*expr.Cmp); ok && c.Op == expr.CmpOpEq && len(c.Data) == 2 {
					ports = append(ports, binary.BigEndian.Uint16(c.Data))
				}
			}
		case *expr.Verdict:
			verdict = verdictName(v.Kind)
		}
	}
	return ports, verdict
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
