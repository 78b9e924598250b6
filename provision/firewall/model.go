// Package firewall renders the appliance's network policy into one nftables
// table, programs it through netlink in a single atomic batch, persists the
// same ruleset for boot, and proves the live kernel state matches.
//
// The model is pure data (Render): a Ruleset of sets and chains whose rules
// are built from parts that know both their nft text and their netlink
// expressions, so the persisted file and the netlink batch come from one
// value and cannot drift apart (TestNftCompilesToModel loads the file with
// nft and verifies it against the model).
//
// Design decisions:
//   - The admin web UI has its own HTTPS port (network.admin_port, 8443),
//     so the kernel can enforce web_admin_networks per port; the UI does not
//     share 443 with the public transfer site.
//   - Admin networks live in interval sets (ssh_admin4/6, web_admin4/6): a
//     rule's cost is one set lookup whatever the number of networks.
//   - New-connection limits are per source (meters): dynamic sets with a
//     one-minute timeout (ssh_meter*, web_meter*) updated with an embedded
//     "limit rate over"; web_meter is shared by the public ports and the
//     admin UI port, so the HTTPS budget is per client, not per port.
//   - ICMP echo is limited before the conntrack accept, because conntrack
//     marks every echo after the first as established.
//   - Apply swaps the table in one batch ("add table; delete table; add
//     table …" in one transaction) after comparing the live table with the
//     model; an equal table is left alone and reported unchanged.
//   - All controls of the family share one Firewall; the first applied
//     writes everything, so a family apply flushes once.
//   - Apply makes the kernel change through the host (host.Do), which
//     records it like a file: apply reports it, the journal keeps it, and
//     under --dry-run it is recorded and the kernel is not touched.
package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Ruleset is one inet table bulwark owns.
type Ruleset struct {
	Table  string
	Sets   []Set
	Chains []Chain
}

// Set is a named set: an interval set of admin networks, or a dynamic
// meter set holding one rate-limit state per source address.
type Set struct {
	Name string
	V6   bool
	// Ranges are the merged address ranges of an interval set.
	Ranges []Range
	// Meter marks a dynamic set (per-source limit state with a timeout).
	Meter   bool
	Timeout time.Duration
	Size    uint32
}

// Range is an inclusive address range; prefixes are merged into ranges so
// adjacent networks form one interval, as the kernel stores them.
type Range struct{ From, To netip.Addr }

func (r Range) String() string {
	if p, ok := rangePrefix(r); ok {
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// Chain is a base chain with its hook, priority and policy.
type Chain struct {
	Name     string
	Hook     string // "input", "forward", "output"
	Priority int
	Policy   string // "accept" or "drop"
	Rules    []Rule
}

// Rule is a named rule; the name is stored as the rule's comment so drift
// findings can say which rule changed.
type Rule struct {
	Name  string
	Parts []part
}

// Rule counts and element counts, for the apply message.
func (rs *Ruleset) counts() (rules, elems int) {
	for _, c := range rs.Chains {
		rules += len(c.Rules)
	}
	for _, s := range rs.Sets {
		elems += len(s.Ranges)
	}
	return rules, elems
}

// Log rate: the final log rule is limited so a flood cannot fill the
// journal; the drop itself is never limited.
const (
	logPerSecond = 10
	logBurst     = 20
	meterSize    = 65535
	meterTimeout = time.Minute
)

// Render turns the network policy into the ruleset. It refuses anything it
// cannot render faithfully rather than guessing, so Apply never programs a
// half-understood policy.
func Render(n policies.Network) (*Ruleset, error) {
	if err := check(n); err != nil {
		return nil, err
	}
	rs := &Ruleset{Table: n.Table}
	for _, s := range []struct {
		name string
		nets []policies.Prefix
	}{{"ssh_admin", n.SSHAdminNetworks}, {"web_admin", n.WebAdminNetworks}} {
		v4, v6, err := splitRanges(s.nets)
		if err != nil {
			return nil, fmt.Errorf("firewall: %s_networks: %w", s.name, err)
		}
		rs.Sets = append(rs.Sets, Set{Name: s.name + "4", Ranges: v4}, Set{Name: s.name + "6", V6: true, Ranges: v6})
	}
	for _, m := range []string{"ssh_meter", "web_meter"} {
		rs.Sets = append(rs.Sets,
			Set{Name: m + "4", Meter: true, Timeout: meterTimeout, Size: meterSize},
			Set{Name: m + "6", V6: true, Meter: true, Timeout: meterTimeout, Size: meterSize})
	}
	rs.Chains = []Chain{
		{Name: "input", Hook: "input", Policy: "drop", Rules: inputRules(n)},
		{Name: "forward", Hook: "forward", Policy: "drop"},
		{Name: "output", Hook: "output", Policy: "accept"},
	}
	return rs, nil
}

func check(n policies.Network) error {
	switch {
	case n.Table == "":
		return fmt.Errorf("firewall: network.table is empty (want e.g. \"bulwark\")")
	case len(n.Table) > 64:
		return fmt.Errorf("firewall: network.table %q is longer than 64 bytes", n.Table)
	case n.SSHPort == 0:
		return fmt.Errorf("firewall: network.ssh_port is 0")
	case n.AdminPort == 0:
		return fmt.Errorf("firewall: network.admin_port is 0")
	case n.SSHNewPerMinute == 0 || n.HTTPSNewPerSecond == 0 || n.ICMPPerSecond == 0:
		return fmt.Errorf("firewall: network rate limits must be > 0 (ssh_new_per_minute %d, https_new_per_second %d, icmp_per_second %d)",
			n.SSHNewPerMinute, n.HTTPSNewPerSecond, n.ICMPPerSecond)
	case len(n.LogPrefix) > 127:
		return fmt.Errorf("firewall: network.log_prefix is longer than 127 bytes")
	}
	for i, p := range n.PublicPorts {
		if p == 0 {
			return fmt.Errorf("firewall: network.public_ports[%d] is 0", i)
		}
		if p == n.SSHPort || p == n.AdminPort {
			return fmt.Errorf("firewall: network.public_ports[%d] = %d is also the ssh or admin port; a restricted port cannot be public", i, p)
		}
	}
	if n.SSHPort == n.AdminPort {
		return fmt.Errorf("firewall: network.ssh_port and admin_port are both %d", n.SSHPort)
	}
	for _, l := range []struct {
		key  string
		nets []policies.Prefix
	}{{"ssh_admin_networks", n.SSHAdminNetworks}, {"web_admin_networks", n.WebAdminNetworks}} {
		for i, p := range l.nets {
			if !p.IsValid() {
				return fmt.Errorf("firewall: network.%s[%d] is not a valid CIDR", l.key, i)
			}
			if p.Bits() == 0 && !n.AllowAnyAdmin {
				return fmt.Errorf("firewall: network.%s[%d] = %s opens the console to every address; set network.allow_any_admin: true if that is really meant", l.key, i, p)
			}
		}
	}
	return nil
}

// splitRanges sorts and merges prefixes into v4 and v6 ranges. Overlapping
// prefixes are refused (the loader refuses them too): an overlap is almost
// always a typo, and silently merging it would hide it.
func splitRanges(nets []policies.Prefix) (v4, v6 []Range, err error) {
	var rs []Range
	for _, p := range nets {
		pm := p.Prefix.Masked()
		rs = append(rs, Range{From: pm.Addr(), To: lastAddr(pm)})
	}
	slices.SortFunc(rs, func(a, b Range) int { return a.From.Compare(b.From) })
	for i := 1; i < len(rs); i++ {
		r, prev := rs[i], rs[i-1]
		if r.From.Is4() == prev.From.Is4() && r.From.Compare(prev.To) <= 0 {
			return nil, nil, fmt.Errorf("%s overlaps %s", r, prev)
		}
	}
	for _, r := range rs {
		out := &v4
		if r.From.Is6() {
			out = &v6
		}
		// Adjacent ranges become one interval, as the kernel would store them.
		if n := len(*out); n > 0 && (*out)[n-1].To.Next() == r.From {
			(*out)[n-1].To = r.To
			continue
		}
		*out = append(*out, r)
	}
	return v4, v6, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// rangePrefix reports whether r is exactly one prefix.
func rangePrefix(r Range) (netip.Prefix, bool) {
	for bits := 0; bits <= r.From.BitLen(); bits++ {
		p := netip.PrefixFrom(r.From, bits)
		if p.Masked().Addr() == r.From && lastAddr(p) == r.To {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// rangePrefixes splits a range into the fewest prefixes (for nft text).
func rangePrefixes(r Range) []netip.Prefix {
	var out []netip.Prefix
	from := r.From
	for {
		bits := from.BitLen()
		for bits > 0 {
			p := netip.PrefixFrom(from, bits-1)
			if p.Masked().Addr() != from || lastAddr(p).Compare(r.To) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(from, bits)
		out = append(out, p)
		last := lastAddr(p)
		if last == r.To || !last.Next().IsValid() {
			return out
		}
		from = last.Next()
	}
}
