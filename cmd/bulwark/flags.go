package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// policyFile is the global --policy flag: an operator file merged over the
// embedded defaults.
var policyFile string

func init() {
	root.PersistentFlags().StringVar(&policyFile, "policy", "", "policy `FILE` merged over the embedded defaults")
}

// loadPolicy loads the effective policy; a malformed one is a usage error
// (exit 2) whose message names file:line:column and the field.
func loadPolicy() (*policies.Policy, error) {
	p, err := policies.Load(policyFile)
	if err != nil {
		return nil, usageErr(err)
	}
	return p, nil
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown flag", "unknown command", "unknown shorthand", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// addOnly adds the --only flag: a comma-separated list of control IDs or
// family names.
func addOnly(cmd *cobra.Command, dst *[]string) {
	cmd.Flags().StringSliceVar(dst, "only", nil, "run only these controls or families (`ID,…`, e.g. firewall or ssh.daemon)")
}

// imageBuild is the global --image-build flag: the Packer provisioner sets
// it in the build VM, where instance-only checks are not applicable.
var imageBuild bool

func init() {
	root.PersistentFlags().BoolVar(&imageBuild, "image-build", false,
		"this is an image being built: checks that only hold on a deployed instance (LUKS data volume, clamd with signatures) report not-applicable with why")
}

// stageContext carries the run's stage to the controls.
func stageContext(ctx context.Context) context.Context {
	if imageBuild {
		return provision.WithStage(ctx, provision.ImageBuild)
	}
	return ctx
}
