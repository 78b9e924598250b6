//go:build linux

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/transfer/backup"
)

// newBackupCmd is `transferd backup FILE`.
func newBackupCmd(d *daemonFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "write one consistent archive of the database and all files (verified hashes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := d.loadPolicy(); err != nil {
				return err
			}
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return exitcode.UsageError(fmt.Errorf("backup: %w (the archive is never overwritten)", err))
			}
			if err := backup.Write(context.Background(), backup.DefaultTools, d.opts.DB, d.opts.DataDir, f); err != nil {
				f.Close()
				os.Remove(args[0])
				return err
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("backup: fsync %s: %w", args[0], err)
			}
			return f.Close()
		},
	}
}

// newRestoreCmd is `transferd restore FILE`.
func newRestoreCmd(d *daemonFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "restore an archive into an empty database and data dir, verifying every hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := d.loadPolicy(); err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return exitcode.UsageError(fmt.Errorf("restore: %w", err))
			}
			defer f.Close()
			return backup.Restore(context.Background(), backup.DefaultTools, d.opts.DB, d.opts.DataDir, f)
		},
	}
}
