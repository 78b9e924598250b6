//go:build linux

package main

// The confirm flow: `apply --confirm DURATION` arms a rollback timer before
// it changes anything, then keeps the change only when the admin path
// still works (confirmOrWait) or a new session runs `bulwark confirm`.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/safeapply"
	"github.com/bulwark-appliance/bulwark/policies"
)

// newConfirmCmd is `bulwark confirm`: a new session confirms the change
// `apply --confirm` left pending.
func newConfirmCmd() *cobra.Command {
	return &cobra.Command{
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
}

// armRollback starts the transient timer before anything changes, so a
// crash half-way is rolled back too.
func armRollback(ctx context.Context, out io.Writer, j *host.Journal, d time.Duration) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--confirm: locate the bulwark binary for the rollback timer: %w", err)
	}
	argv := append(safeapply.TimerCommand(exe, "/", j.ID(), d), "--unless-confirmed")
	if err := safeapply.Arm(ctx, argv); err != nil {
		return err
	}
	fmt.Fprintf(out, "rollback armed: %s.timer restores journal %s in %s unless confirmed\n", safeapply.Unit, j.ID(), d)
	return nil
}

// confirmOrWait confirms when the new policy admits the caller and a fresh
// connection to SSH and the admin UI succeeds; otherwise it leaves the
// timer to roll back and says how to keep the change.
func confirmOrWait(ctx context.Context, out io.Writer, p *policies.Policy, f applyFlags, j *host.Journal) {
	pending := fmt.Sprintf("NOT confirmed: journal %s is rolled back in %s unless you run `bulwark confirm`", j.ID(), f.confirm)
	addr, reason := probeTarget(p, f)
	if reason != "" {
		fmt.Fprintf(out, "%s; %s\n", pending, reason)
		return
	}
	ports := []uint16{p.Network.SSHPort, p.Network.AdminPort}
	if err := safeapply.Probe(ctx, addr, ports, 3*time.Second); err != nil {
		fmt.Fprintf(out, "%s; %v\n", pending, err)
		return
	}
	if err := confirmJournal(ctx, j); err != nil {
		fmt.Fprintf(out, "%s; auto-confirm failed: %v\n", pending, err)
		return
	}
	fmt.Fprintf(out, "admin path probe ok (%s ports %v): journal %s confirmed, rollback timer stopped\n", addr, ports, j.ID())
}

// probeTarget picks the address to probe, or says why there is none.
func probeTarget(p *policies.Policy, f applyFlags) (netip.Addr, string) {
	s, ok, err := safeapply.ParseSession(os.Getenv("SSH_CONNECTION"))
	if err != nil {
		return netip.Addr{}, err.Error()
	}
	if ok && !p.Network.AdmitsSSH(s.Client) {
		return netip.Addr{}, fmt.Sprintf("the new policy does not admit your address %s", s.Client)
	}
	if f.adminAddr != "" {
		return netip.MustParseAddr(f.adminAddr), ""
	}
	if ok {
		return s.Server, ""
	}
	return netip.Addr{}, "no SSH_CONNECTION and no --admin-addr to probe the admin path with"
}

func confirmJournal(ctx context.Context, j *host.Journal) error {
	if _, err := safeapply.Disarm(ctx); err != nil {
		return err
	}
	return j.SetState(host.StateConfirmed)
}
