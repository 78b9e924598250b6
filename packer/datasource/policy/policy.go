//go:generate packer-sdc mapstructure-to-hcl2 -type Config,DatasourceOutput

// Package policy is the bulwark-policy data source: it loads and validates
// a bulwark policy at `packer validate`/`build` time so templates size the
// disk and open the ports from the same file the controls will enforce.
package policy

import (
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/hcl2helper"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/zclconf/go-cty/cty"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Config is the data source's HCL block.
type Config struct {
	// Path of an operator policy merged over bulwark's embedded defaults.
	// Empty means the defaults alone.
	PolicyFile string `mapstructure:"policy_file"`
}

// DatasourceOutput is what templates read as data.bulwark-policy.NAME.*.
type DatasourceOutput struct {
	// Size of the appliance's system disk (baseline.disk_size_gib).
	DiskSizeGiB int `mapstructure:"disk_size_gib"`
	// Networks allowed to reach SSH (network.ssh_admin_networks), as CIDRs.
	SSHAdminNetworks []string `mapstructure:"ssh_admin_networks"`
	// Networks allowed to reach the admin web UI (network.web_admin_networks).
	WebAdminNetworks []string `mapstructure:"web_admin_networks"`
	// Ports open to everyone (network.public_ports).
	PublicPorts []int `mapstructure:"public_ports"`
	// The admin web UI's port (network.admin_port).
	AdminPort int `mapstructure:"admin_port"`
	// SHA-256 of the effective policy (policies.Hash), the same value
	// `bulwark verify` records, so evidence can be matched to the build.
	PolicySHA256 string `mapstructure:"policy_sha256"`
}

// Datasource implements packersdk.Datasource.
type Datasource struct {
	config Config
}

// ConfigSpec is the HCL layout of Config.
func (d *Datasource) ConfigSpec() hcldec.ObjectSpec { return d.config.FlatMapstructure().HCL2Spec() }

// OutputSpec is the HCL layout of DatasourceOutput.
func (d *Datasource) OutputSpec() hcldec.ObjectSpec {
	return (&DatasourceOutput{}).FlatMapstructure().HCL2Spec()
}

// Configure decodes the block. The policy itself is read in Execute, so a
// bad policy is reported with its file:line:column there.
func (d *Datasource) Configure(raws ...interface{}) error {
	if err := config.Decode(&d.config, nil, raws...); err != nil {
		return fmt.Errorf("bulwark-policy: %w", err)
	}
	return nil
}

// Execute loads the policy and returns the values templates use.
func (d *Datasource) Execute() (cty.Value, error) {
	p, err := policies.Load(d.config.PolicyFile)
	if err != nil {
		return cty.NullVal(cty.EmptyObject), fmt.Errorf("bulwark-policy: load %q: %w", d.config.PolicyFile, err)
	}
	return hcl2helper.HCL2ValueFromConfig(Output(p), d.OutputSpec()), nil
}

// Output extracts the template-facing values from a loaded policy.
func Output(p *policies.Policy) DatasourceOutput {
	out := DatasourceOutput{
		DiskSizeGiB:      p.Baseline.DiskSizeGiB,
		SSHAdminNetworks: prefixes(p.Network.SSHAdminNetworks),
		WebAdminNetworks: prefixes(p.Network.WebAdminNetworks),
		AdminPort:        int(p.Network.AdminPort),
		PolicySHA256:     policies.Hash(p),
		PublicPorts:      []int{},
	}
	for _, port := range p.Network.PublicPorts {
		out.PublicPorts = append(out.PublicPorts, int(port))
	}
	return out
}

func prefixes(in []policies.Prefix) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		out = append(out, p.String())
	}
	return out
}
