package main

import (
	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/runner"
	"github.com/bulwark-appliance/bulwark/provision/all"
)

func init() {
	var rootDir string
	var dryRun bool
	var only []string
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Converge a host or an offline root to the policy",
		Long: `apply runs every enabled control's Apply, in order, and prints one line per
change grouped by control. A second run changes nothing and says so.
The first error names the control and the step and stops the run (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApply(cmd, rootDir, dryRun, only)
		},
	}
	cmd.Flags().StringVar(&rootDir, "root", "/", "target root `DIR` (\"/\" is the live system)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change, change nothing")
	addOnly(cmd, &only)
	root.AddCommand(cmd)
}

func runApply(cmd *cobra.Command, rootDir string, dryRun bool, only []string) error {
	p, err := loadPolicy()
	if err != nil {
		return err
	}
	controls, err := runner.Select(all.Families(), all.Controls(p), only)
	if err != nil {
		return usageErr(err)
	}
	var opts []host.Option
	if dryRun {
		opts = append(opts, host.DryRun())
	}
	h, err := host.NewLocal(rootDir, opts...)
	if err != nil {
		return usageErr(err)
	}
	rep, applyErr := runner.Apply(cmd.Context(), h, controls)
	if err := runner.WriteApply(cmd.OutOrStdout(), rep, dryRun); err != nil {
		return err
	}
	return applyErr
}
