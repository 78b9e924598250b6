package firewall

import (
	"net/netip"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Admits reports whether the ruleset rendered from n accepts new SSH
// connections from addr: it does exactly when addr lies in one of
// ssh_admin_networks (the ssh-admin-v4/v6 rules match the source against
// those sets and nothing else admits the SSH port). Safe apply asks this
// before a change that could cut off the session it runs in.
func Admits(n policies.Network, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range n.SSHAdminNetworks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
