//go:build linux

// Command transferd is the appliance's secure file-transfer service. It runs
// behind nginx on a Unix socket (socket-activated by transferd.socket).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/service"
)

type usageError struct{ error }

var (
	policyFile string
	opts       service.Options
)

var root = &cobra.Command{
	Use:           "transferd",
	Short:         "bulwark secure file-transfer service",
	SilenceUsage:  true,
	SilenceErrors: true,
	RunE:          serve,
}

func init() {
	f := root.PersistentFlags()
	f.StringVar(&policyFile, "policy", "", "bulwark policy `FILE` merged over the embedded defaults")
	f.StringVar(&opts.Listen, "listen", "", "Unix socket `PATH` (default: socket activation)")
	f.StringVar(&opts.DataDir, "data-dir", "", "blob `DIR` (default: policy transfer.data_dir)")
	f.StringVar(&opts.DB, "db", "host=/run/postgresql dbname=bulwark sslmode=disable", "PostgreSQL `DSN` (Unix socket)")
	f.StringVar(&opts.Clamd, "clamd", "", "clamd socket `PATH` (default: policy clamav.socket)")
	f.DurationVar(&opts.ShutdownGrace, "shutdown-grace", 60*time.Second, "how long in-flight requests may finish after SIGTERM")
}

// loadPolicy fills unset flags from the policy.
func loadPolicy() error {
	p, err := policies.Load(policyFile)
	if err != nil {
		return usageError{err}
	}
	opts.Policy = p
	if opts.DataDir == "" {
		opts.DataDir = p.Transfer.DataDir
	}
	if opts.Clamd == "" {
		opts.Clamd = p.ClamAV.Socket
	}
	return nil
}

func serve(cmd *cobra.Command, _ []string) error {
	if err := loadPolicy(); err != nil {
		return err
	}
	opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return service.Run(ctx, opts)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main without the exit, so tests can run the daemon in a child
// process of the test binary.
func run(args []string) int {
	root.SetArgs(args)
	err := root.Execute()
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue) || isUsage(err):
		fmt.Fprintln(os.Stderr, "transferd:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "transferd:", err)
		return 1
	}
}

func isUsage(err error) bool {
	for _, s := range []string{"unknown flag", "unknown command", "flag needs an argument", "invalid argument"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}
