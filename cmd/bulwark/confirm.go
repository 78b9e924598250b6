//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/safeapply"
)

func init() {
	cmd := &cobra.Command{
		Use:   "confirm",
		Short: "Keep the last `apply --confirm` change: stop its rollback timer",
		Long: `confirm stops the transient bulwark-rollback timer armed by
` + "`bulwark apply --confirm DURATION`" + ` and marks the last journal confirmed, so the
change is kept. Run it from a NEW session: that a new connection works is
what the confirmation is meant to prove.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The newest journal whatever its state: confirming an older
			// one because the newest was rolled back would be a lie.
			ids, err := host.Journals("/")
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return fmt.Errorf("no journal under %s: nothing to confirm", host.JournalDir)
			}
			j, err := host.OpenJournal("/", ids[0])
			if err != nil {
				return err
			}
			if st := j.State(); st == host.StateRolledBack {
				return fmt.Errorf("journal %s was already rolled back: nothing to confirm", j.ID())
			}
			pending, err := safeapply.Disarm(cmd.Context())
			if err != nil {
				return err
			}
			if err := j.SetState(host.StateConfirmed); err != nil {
				return err
			}
			if !pending {
				fmt.Fprintf(cmd.OutOrStdout(), "no rollback timer was pending; journal %s marked confirmed\n", j.ID())
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "confirmed: %s.timer stopped, journal %s kept\n", safeapply.Unit, j.ID())
			return nil
		},
	}
	root.AddCommand(cmd)
}
