//go:build linux

package main

import (
	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/version"
)

// newRootCmd builds the whole command tree. The flags every subcommand
// shares live in one rootFlags value that the subcommands that need them
// are given; nothing is registered from init() and no flag is bound to a
// package variable.
func newRootCmd() *cobra.Command {
	g := &rootFlags{}
	root := &cobra.Command{
		Use:   "bulwark",
		Short: "Build, harden and prove a secure file-transfer appliance",
		Long: `bulwark hardens a file-transfer appliance from one policy and proves it.

Every hardening requirement is a control with Apply and Verify side by side,
mapped to the SOC 2 and SOX rows it serves. Typical use:

  bulwark controls                          # what is checked, and why
  bulwark apply --root /mnt/image           # harden an offline image
  bulwark verify --format json > results.json
  bulwark evidence --in results.json --out evidence/

The policy is embedded; --policy FILE merges your file over it.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.register(root)
	root.AddCommand(
		newApplyCmd(g),
		newConfirmCmd(),
		newControlsCmd(g),
		newDeployCmd(),
		newEvidenceCmd(),
		newFirewallCmd(g),
		newFirstbootCmd(g),
		newImageCmd(),
		newSealCmd(g),
		newUnlockCmd(g),
		newVerifyCmd(g),
	)
	return root
}
