//go:build linux

package main

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/service"
)

// daemonFlags are the root's persistent flags, which the subcommands
// share: where the policy, the database, the blobs and clamd are.
type daemonFlags struct {
	policyFile string
	opts       service.Options
}

// newRootCmd builds transferd's command tree: the root serves; backup,
// restore and useradd are the operator's tools around the same store.
func newRootCmd() *cobra.Command {
	d := &daemonFlags{}
	root := &cobra.Command{
		Use:           "transferd",
		Short:         "bulwark secure file-transfer service",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, d)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&d.policyFile, "policy", "", "bulwark policy `FILE` merged over the embedded defaults")
	f.StringVar(&d.opts.Listen, "listen", "", "Unix socket `PATH` (default: socket activation)")
	f.StringVar(&d.opts.DataDir, "data-dir", "", "blob `DIR` (default: policy transfer.data_dir)")
	f.StringVar(&d.opts.DB, "db", "host=/run/postgresql dbname=bulwark sslmode=disable", "PostgreSQL `DSN` (Unix socket)")
	f.StringVar(&d.opts.Clamd, "clamd", "", "clamd socket `PATH` (default: policy clamav.socket)")
	f.DurationVar(&d.opts.ShutdownGrace, "shutdown-grace", 60*time.Second, "how long in-flight requests may finish after SIGTERM")
	root.AddCommand(newBackupCmd(d), newRestoreCmd(d), newUseraddCmd(d))
	return root
}

// loadPolicy loads the policy and fills the flags left unset from it; a
// malformed policy is a usage error (exit 2).
func (d *daemonFlags) loadPolicy() error {
	p, err := policies.Load(d.policyFile)
	if err != nil {
		return exitcode.UsageError(err)
	}
	d.opts.Policy = p
	if d.opts.DataDir == "" {
		d.opts.DataDir = p.Transfer.DataDir
	}
	if d.opts.Clamd == "" {
		d.opts.Clamd = p.ClamAV.Socket
	}
	return nil
}

func serve(cmd *cobra.Command, d *daemonFlags) error {
	if err := d.loadPolicy(); err != nil {
		return err
	}
	d.opts.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return service.Run(ctx, d.opts)
}
