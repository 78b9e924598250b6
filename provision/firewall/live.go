//go:build linux

package firewall

import (
	"fmt"
	"strings"
)

// LiveText reads table inet <table> back through netlink and prints it in
// nft syntax. A rule whose expressions equal a model rule of the same name
// prints as that rule's text; anything else (drift) prints as a comment
// with its netlink form, so the output never passes off an unknown rule as
// a known one.
func (f *Firewall) LiveText() (string, error) {
	if f.renderErr != nil {
		return "", f.renderErr
	}
	conn, err := f.conn()
	if err != nil {
		return "", err
	}
	live, err := readState(conn, f.rs.Table)
	if err != nil {
		return "", err
	}
	if !live.Exists {
		return "", fmt.Errorf("firewall: table inet %s is not loaded (run bulwark apply --only firewall)", f.rs.Table)
	}
	known := map[string]Rule{}
	exprsOf := map[string]string{}
	for _, c := range f.rs.Chains {
		for _, r := range c.Rules {
			known[r.Name] = r
		}
	}
	for _, c := range f.rs.build().state().Chains {
		for _, r := range c.Rules {
			exprsOf[r.Name] = r.Exprs
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", f.rs.Table)
	for _, s := range live.Sets {
		var rs []string
		for _, r := range s.Ranges {
			rs = append(rs, r.String())
		}
		fmt.Fprintf(&b, "\tset %s { # %s\n\t\telements = { %s }\n\t}\n", s.Name, s.Kind, strings.Join(rs, ", "))
	}
	for _, c := range live.Chains {
		fmt.Fprintf(&b, "\tchain %s { # %s\n", c.Name, c.Base)
		for _, r := range c.Rules {
			if k, ok := known[r.Name]; ok && exprsOf[r.Name] == r.Exprs {
				fmt.Fprintf(&b, "\t\t%s\n", k.Text())
				continue
			}
			fmt.Fprintf(&b, "\t\t# not from the policy: %s\n", r.summary())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}
