//go:build linux

package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/safeapply"
)

// runRollback is `apply --rollback`: it restores the last journal (or
// --journal) by hand, or, run by the timer confirm.go arms
// (--unless-confirmed), only when no one confirmed the change in time.
func runRollback(cmd *cobra.Command, f applyFlags) error {
	abs, err := filepath.Abs(f.rootDir)
	if err != nil {
		return exitcode.UsageError(err)
	}
	j, err := openJournal(abs, f.journal)
	if err != nil {
		return exitcode.UsageError(err)
	}
	out := cmd.OutOrStdout()
	if st := j.State(); f.unlessConfirmed && (st == host.StateConfirmed || st == host.StateRolledBack) {
		fmt.Fprintf(out, "journal %s is %s: nothing rolled back\n", j.ID(), st)
		return nil
	}
	h, err := host.NewLocal(abs)
	if err != nil {
		return exitcode.UsageError(err)
	}
	if h.Live() && !f.unlessConfirmed {
		// A manual rollback supersedes a pending timer's.
		if _, err := safeapply.Disarm(cmd.Context()); err != nil {
			return err
		}
	}
	lines, err := j.Rollback(cmd.Context(), "", h.Run)
	for _, l := range lines {
		fmt.Fprintf(out, "rollback %s: %s\n", j.ID(), l)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rolled back journal %s (%d entries)\n", j.ID(), len(lines))
	return nil
}

func openJournal(root, id string) (*host.Journal, error) {
	if id == "" {
		return host.LastJournal(root)
	}
	return host.OpenJournal(root, id)
}
