package netpolicy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bulwark-appliance/bulwark/policies"
)

// MirrorsPolicy checks a set of ingress rules (derived here or read back
// from a cloud program) against the policy fields directly, without going
// through Ingress: every rule must be a single TCP port the policy names,
// and each port must admit exactly the networks the policy lists for it.
// It is the test oracle for "the cloud mirrors the firewall", so it is kept
// independent of the code it checks.
func MirrorsPolicy(n policies.Network, rules []Rule) error {
	want := expected(n)
	got := map[uint16]map[string]bool{}
	var errs []error
	for _, r := range rules {
		if r.Proto != TCP {
			errs = append(errs, fmt.Errorf("rule %q: protocol %s, the policy opens only tcp", r.Description, r.Proto))
			continue
		}
		if r.FromPort != r.ToPort {
			errs = append(errs, fmt.Errorf("rule %q: port range %d-%d, the policy opens single ports", r.Description, r.FromPort, r.ToPort))
			continue
		}
		if _, ok := want[r.FromPort]; !ok {
			errs = append(errs, fmt.Errorf("rule %q: port %d is not in the policy's network section", r.Description, r.FromPort))
			continue
		}
		if got[r.FromPort] == nil {
			got[r.FromPort] = map[string]bool{}
		}
		for _, c := range append(slices.Clone(r.CIDRv4), r.CIDRv6...) {
			got[r.FromPort][c] = true
		}
	}
	for _, port := range slices.Sorted(maps.Keys(want)) {
		if extra, missing := diff(got[port], want[port]); len(extra)+len(missing) > 0 {
			errs = append(errs, fmt.Errorf("port %d: admits %v not in the policy, lacks %v from the policy", port, extra, missing))
		}
	}
	return errors.Join(errs...)
}

// expected maps each port the policy opens to the sources it allows. A port
// with no sources is closed and must have no rule.
func expected(n policies.Network) map[uint16]map[string]bool {
	want := map[uint16]map[string]bool{}
	add := func(port uint16, cidr string) {
		if want[port] == nil {
			want[port] = map[string]bool{}
		}
		want[port][cidr] = true
	}
	for _, p := range n.PublicPorts {
		add(p, AnyV4)
		add(p, AnyV6)
	}
	for _, c := range n.SSHAdminNetworks {
		add(n.SSHPort, c.String())
	}
	for _, c := range n.WebAdminNetworks {
		add(n.AdminPort, c.String())
	}
	return want
}

func diff(got, want map[string]bool) (extra, missing []string) {
	for c := range got {
		if !want[c] {
			extra = append(extra, c)
		}
	}
	for c := range want {
		if !got[c] {
			missing = append(missing, c)
		}
	}
	slices.Sort(extra)
	slices.Sort(missing)
	return extra, missing
}

// String renders a rule compactly for diffs and logs.
func (r Rule) String() string {
	return fmt.Sprintf("%s/%d-%d v4=%s v6=%s", r.Proto, r.FromPort, r.ToPort,
		strings.Join(r.CIDRv4, ","), strings.Join(r.CIDRv6, ","))
}
