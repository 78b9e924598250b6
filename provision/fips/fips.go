//go:build linux

// Package fips puts the appliance's cryptography in FIPS 140-3 mode where
// the platform allows it. Two halves, two controls: the OS (fips.kernel:
// Ubuntu Pro's fips-updates kernel and fips=1; Debian has no validated
// kernel, so there it is not applicable, never passed) and the service
// (fips.service: transferd built on Go's FIPS 140-3 module and run with
// GODEBUG=fips140=on, which holds on any Linux because Go's module needs no
// kernel support).
package fips

import (
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Family is the fips family for provision/all.
var Family = provision.Family{Name: "fips", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, _ provision.Stage) []provision.Control {
	return []provision.Control{
		&Kernel{base: base{kernelMeta}, Mode: p.FIPS.Mode, TokenFile: p.FIPS.ProTokenFile},
		&Service{base: base{serviceMeta}, Enabled: p.FIPS.Service},
	}
}

var (
	kernelMeta = provision.Meta{ID: "fips.kernel",
		Title: "OS kernel and crypto in FIPS 140-3 mode (Ubuntu Pro fips-updates, fips=1)",
		Rows:  []string{"SOC2:C1.2", "SOX:Encryption at Rest", "SOX:Encryption in Transit"}}
	serviceMeta = provision.Meta{ID: "fips.service",
		Title: "transferd runs on Go's FIPS 140-3 module (GOFIPS140 build, GODEBUG=fips140=on)",
		Rows:  []string{"SOC2:C1.2", "SOX:Encryption at Rest", "SOX:Encryption in Transit"}}
)

// base gives a control its ID, title and rows from its provision.Meta.
type base struct{ m provision.Meta }

func (b base) Meta() provision.Meta { return b.m }

// osID reads ID= from os-release inside the target.
func osID(h host.Host) (id, src, line string, err error) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, rerr := h.ReadFile(p)
		if rerr != nil {
			err = rerr
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "ID="); ok {
				return strings.Trim(v, `"'`), p, l, nil
			}
		}
		return "", p, "", nil
	}
	return "", "/etc/os-release", "", err
}
