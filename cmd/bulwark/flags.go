package main

import (
	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
)

// rootFlags are the root's persistent flags, shared by every subcommand.
type rootFlags struct {
	// policyFile is an operator file merged over the embedded defaults.
	policyFile string
	// imageBuild is set by the Packer provisioner in the build VM, where
	// instance-only checks are not applicable.
	imageBuild bool
}

func (g *rootFlags) register(root *cobra.Command) {
	fl := root.PersistentFlags()
	fl.StringVar(&g.policyFile, "policy", "", "policy `FILE` merged over the embedded defaults")
	fl.BoolVar(&g.imageBuild, "image-build", false,
		"this is an image being built: checks that only hold on a deployed instance (LUKS data volume, clamd with signatures) report not-applicable with why")
}

// loadPolicy loads the effective policy; a malformed one is a usage error
// (exit 2) whose message names file:line:column and the field.
func (g *rootFlags) loadPolicy() (*policies.Policy, error) {
	p, err := policies.Load(g.policyFile)
	if err != nil {
		return nil, exitcode.UsageError(err)
	}
	return p, nil
}

// controls builds every enabled control from p for the run's stage.
func (g *rootFlags) controls(p *policies.Policy) []provision.Control {
	s := provision.Instance
	if g.imageBuild {
		s = provision.ImageBuild
	}
	return all.Controls(p, s)
}

// addOnly adds the --only flag: a comma-separated list of control IDs or
// family names.
func addOnly(cmd *cobra.Command, dst *[]string) {
	cmd.Flags().StringSliceVar(dst, "only", nil, "run only these controls or families (`ID,…`, e.g. firewall or ssh.daemon)")
}
