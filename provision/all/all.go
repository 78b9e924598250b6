// Package all lists every control family the appliance ships, in the order
// apply runs them. Adding a family is one line here.
package all

import (
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/audit"
	"github.com/bulwark-appliance/bulwark/provision/baseline"
	"github.com/bulwark-appliance/bulwark/provision/clamav"
	"github.com/bulwark-appliance/bulwark/provision/database"
	"github.com/bulwark-appliance/bulwark/provision/fips"
	"github.com/bulwark-appliance/bulwark/provision/firewall"
	"github.com/bulwark-appliance/bulwark/provision/integrity"
	"github.com/bulwark-appliance/bulwark/provision/luks"
	"github.com/bulwark-appliance/bulwark/provision/ssh"
	"github.com/bulwark-appliance/bulwark/provision/tls"
	"github.com/bulwark-appliance/bulwark/provision/transfer"
	"github.com/bulwark-appliance/bulwark/provision/updates"
)

// Families returns every family, in apply order.
func Families() []provision.Family {
	return []provision.Family{
		// families are added here as they land, one line each
		updates.Family,
		clamav.Family,
		fips.Family,
		database.Family,
		firewall.Family,
		ssh.Family,
		baseline.Family,
		audit.Family,
		transfer.Family,
		tls.Family,
		// Last: luks.firstboot holds transferd to the data volume, which
		// the build VM does not have, so every (re)start the other
		// families make at build comes before it.
		luks.Family,
		// After everything, even luks: its Seal takes the file-integrity
		// baseline of the image as it ships.
		integrity.Family,
	}
}

// Controls builds every enabled control from the policy for stage s, in
// apply order.
func Controls(p *policies.Policy, s provision.Stage) []provision.Control {
	var out []provision.Control
	for _, f := range Families() {
		for _, c := range f.Controls(p, s) {
			if p.Controls.IsEnabled(c.Meta().ID) {
				out = append(out, c)
			}
		}
	}
	return out
}
