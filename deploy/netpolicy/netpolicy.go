// Package netpolicy derives the appliance's network exposure from the policy
// as plain data, so that every target that enforces it outside the guest (a
// cloud security group, a hypervisor's filter) mirrors the nftables rules
// the firewall control renders from the same policies.Network.
//
// The package is pure: no Pulumi, no cloud SDK. Targets translate []Rule
// into their own resources one to one.
package netpolicy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Protocols a Rule can carry. Only TCP is exposed inbound: the appliance
// serves HTTP(S), SSH and the admin UI, nothing over UDP.
const (
	TCP = "tcp"
	UDP = "udp"
)

// Everyone is the "any source" pair, spelled the way clouds expect it.
var (
	AnyV4 = "0.0.0.0/0"
	AnyV6 = "::/0"
)

// Rule is one allowed flow: a protocol and port range to or from a set of
// networks. IPv4 and IPv6 networks are kept apart because clouds take them
// in separate fields (AWS cidr_blocks / ipv6_cidr_blocks).
type Rule struct {
	Proto       string
	FromPort    uint16
	ToPort      uint16
	CIDRv4      []string
	CIDRv6      []string
	Description string
}

// Ingress returns exactly the inbound rules the firewall enforces: each
// public port from everyone, the SSH port from ssh_admin_networks and the
// admin port from web_admin_networks. An admin port whose network list is
// empty gets no rule at all (closed), never an open one.
func Ingress(n policies.Network) ([]Rule, error) {
	if err := check(n); err != nil {
		return nil, err
	}
	var rules []Rule
	for _, p := range sortedPorts(n.PublicPorts) {
		rules = append(rules, Rule{
			Proto: TCP, FromPort: p, ToPort: p,
			CIDRv4: []string{AnyV4}, CIDRv6: []string{AnyV6},
			Description: fmt.Sprintf("public port %d (network.public_ports)", p),
		})
	}
	if r, ok := adminRule(n.SSHPort, n.SSHAdminNetworks, "ssh (network.ssh_admin_networks)"); ok {
		rules = append(rules, r)
	}
	if r, ok := adminRule(n.AdminPort, n.WebAdminNetworks, "admin web UI (network.web_admin_networks)"); ok {
		rules = append(rules, r)
	}
	return rules, nil
}

// check refuses a policy whose ingress would be ambiguous or would open the
// console to the internet; the policy loader checks the same, but deploy
// must not trust that it ran (a program may build the struct itself).
func check(n policies.Network) error {
	if n.SSHPort == 0 || n.AdminPort == 0 {
		return fmt.Errorf("netpolicy: network.ssh_port and network.admin_port must be set (got %d, %d)", n.SSHPort, n.AdminPort)
	}
	if n.SSHPort == n.AdminPort {
		return fmt.Errorf("netpolicy: network.ssh_port and network.admin_port are both %d: give the admin UI its own port", n.SSHPort)
	}
	for _, p := range n.PublicPorts {
		if p == 0 {
			return fmt.Errorf("netpolicy: network.public_ports: port 0 is not a port")
		}
		if p == n.SSHPort || p == n.AdminPort {
			return fmt.Errorf("netpolicy: network.public_ports: port %d is an admin port; it must not be public", p)
		}
	}
	// A slice, not a map, so the first error reported is always the same.
	for _, f := range []struct {
		field string
		nets  []policies.Prefix
	}{{"network.ssh_admin_networks", n.SSHAdminNetworks}, {"network.web_admin_networks", n.WebAdminNetworks}} {
		field := f.field
		for i, p := range f.nets {
			if !p.IsValid() {
				return fmt.Errorf("netpolicy: %s[%d]: empty network", field, i)
			}
			if p.Bits() == 0 && !n.AllowAnyAdmin {
				return fmt.Errorf("netpolicy: %s[%d]: %s opens the console to the internet; set network.allow_any_admin: true if that is really meant", field, i, p)
			}
		}
	}
	return nil
}

func adminRule(port uint16, nets []policies.Prefix, what string) (Rule, bool) {
	v4, v6 := split(nets)
	if len(v4)+len(v6) == 0 {
		return Rule{}, false
	}
	return Rule{Proto: TCP, FromPort: port, ToPort: port, CIDRv4: v4, CIDRv6: v6,
		Description: fmt.Sprintf("%s port %d", what, port)}, true
}

// split separates and sorts the networks by family, dropping duplicates so
// that two spellings of one policy give identical rules (no spurious diff).
func split(nets []policies.Prefix) (v4, v6 []string) {
	var a, b []netip.Prefix
	for _, p := range nets {
		if p.Addr().Is4() {
			a = append(a, p.Prefix)
		} else {
			b = append(b, p.Prefix)
		}
	}
	return strs(a), strs(b)
}

func strs(ps []netip.Prefix) []string {
	slices.SortFunc(ps, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	ps = slices.Compact(ps)
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func sortedPorts(ps []uint16) []uint16 {
	out := slices.Clone(ps)
	slices.Sort(out)
	return slices.Compact(out)
}

// Egress returns the outbound flows the appliance needs, and nothing more:
//   - TCP 80 and 443 to everyone: security updates (apt archives are HTTP,
//     signed) and ClamAV signature downloads (HTTPS). Mirrors have no stable
//     addresses, so these cannot be narrowed by network.
//   - the syslog target from policy.syslog, pinned to its address when the
//     target is an IP literal, else to its port only (a hostname's addresses
//     are not known at deploy time).
//   - UDP 123 to everyone only when policy.baseline.ntp_servers names servers.
//
// DNS, NTP and instance metadata through the cloud's link-local services
// (AWS: the VPC resolver, 169.254.169.123, 169.254.169.254) are not filtered
// by security groups and need no rule.
func Egress(p *policies.Policy) ([]Rule, error) {
	rules := []Rule{
		anyRule(TCP, 80, "security updates (apt over HTTP, signed)"),
		anyRule(TCP, 443, "security updates and ClamAV signatures over HTTPS"),
	}
	if p.Syslog.Target != "" {
		r, err := syslogRule(p.Syslog)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	if len(p.Baseline.NTPServers) > 0 {
		rules = append(rules, anyRule(UDP, 123, "NTP (baseline.ntp_servers)"))
	}
	return rules, nil
}

func anyRule(proto string, port uint16, why string) Rule {
	return Rule{Proto: proto, FromPort: port, ToPort: port,
		CIDRv4: []string{AnyV4}, CIDRv6: []string{AnyV6}, Description: why}
}

func syslogRule(s policies.Syslog) (Rule, error) {
	host, portStr, err := net.SplitHostPort(s.Target)
	if err != nil {
		return Rule{}, fmt.Errorf("netpolicy: syslog.target %q: want host:port: %w", s.Target, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return Rule{}, fmt.Errorf("netpolicy: syslog.target %q: port %q is not 1-65535", s.Target, portStr)
	}
	proto := TCP
	if s.Protocol == "udp" {
		proto = UDP
	}
	r := anyRule(proto, uint16(port), fmt.Sprintf("syslog to %s (syslog.target)", s.Target))
	if addr, err := netip.ParseAddr(host); err == nil {
		r.CIDRv4, r.CIDRv6 = nil, nil
		pfx := netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()).String()
		if addr.Unmap().Is4() {
			r.CIDRv4 = []string{pfx}
		} else {
			r.CIDRv6 = []string{pfx}
		}
	}
	return r, nil
}
