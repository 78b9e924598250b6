//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/safeapply"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
	"github.com/bulwark-appliance/bulwark/provision/runner"
)

type applyFlags struct {
	rootDir         string
	dryRun          bool
	only            []string
	confirm         time.Duration
	force           bool
	adminAddr       string
	rollback        bool
	journal         string
	unlessConfirmed bool
}

// newApplyCmd is `bulwark apply`, and `apply --rollback` (rollback.go).
// The --confirm flow, which keeps a live change only if the admin path
// still works, is in confirm.go.
func newApplyCmd(g *rootFlags) *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Converge a host or an offline root to the policy",
		Long: `apply runs every enabled control's Apply, in order, and prints one line per
change grouped by control. A second run changes nothing and says so.

Changes that are not files (a command run, the kernel's firewall table
replaced) are printed and journalled like files: a run that only repaired
the live ruleset says so and keeps its journal.

Before each change, the previous content, mode and owner of every file (and
every other change, with its undo when known) is journalled under
/var/lib/bulwark/journal inside the root. A control that fails has its own
changes rolled back, and the run stops naming the control and the step
(exit 1). --rollback restores the last journal by hand.

Nothing is written before the tool that reads it accepts it: sshd -t,
nginx -t, rsyslogd -N1 and systemd-analyze verify check each candidate, and
the firewall table is loaded into a scratch network namespace and read back
before the live table is replaced. A refusal changes nothing (exit 1).

On the live system, from an SSH session, apply refuses a firewall or SSH
change whose policy would not admit the session's address (SSH_CONNECTION)
unless --confirm or --force is given. With --confirm 120s the change is made
live and kept only if confirmed: automatically when a fresh TCP connection
to SSH and the admin UI succeeds and the new policy admits the caller, or by
` + "`bulwark confirm`" + `; otherwise a transient systemd timer rolls the whole
apply back when the time is up, even if bulwark is gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.rollback {
				return runRollback(cmd, f)
			}
			return runApply(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rootDir, "root", "/", "target root `DIR` (\"/\" is the live system)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would change, change nothing")
	fl.DurationVar(&f.confirm, "confirm", 0, "keep the change only if confirmed within `DURATION` (live system only)")
	fl.BoolVar(&f.force, "force", false, "apply a firewall/SSH change even if it would cut off this SSH session")
	fl.StringVar(&f.adminAddr, "admin-addr", "", "`ADDR` of this appliance to probe SSH and the admin UI on (default: SSH_CONNECTION's server side)")
	fl.BoolVar(&f.rollback, "rollback", false, "restore the last journal (or --journal) instead of applying")
	fl.StringVar(&f.journal, "journal", "", "journal `ID` for --rollback (default: the newest not rolled back)")
	fl.BoolVar(&f.unlessConfirmed, "unless-confirmed", false, "with --rollback: do nothing if the journal was confirmed (used by the rollback timer)")
	_ = fl.MarkHidden("unless-confirmed")
	addOnly(cmd, &f.only)
	return cmd
}

func runApply(cmd *cobra.Command, g *rootFlags, f applyFlags) error {
	p, err := g.loadPolicy()
	if err != nil {
		return err
	}
	controls, err := runner.Select(all.Families(), g.controls(p), f.only)
	if err != nil {
		return exitcode.UsageError(err)
	}
	live := isLiveRoot(f.rootDir)
	if err := checkSafety(p, f, live, controls); err != nil {
		return err
	}
	h, j, err := applyHost(f)
	if err != nil {
		return err
	}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	if f.confirm > 0 {
		if err := armRollback(ctx, out, j, f.confirm); err != nil {
			return err
		}
	}
	rep, applyErr := runner.ApplyWith(ctx, h, controls, runner.Options{BeforeFamily: provision.Snapshots(all.Families(), h, p)})
	if err := writeApply(out, rep, f.dryRun, applyErr != nil); err != nil {
		return err
	}
	// rep holds every change the host recorded, files or not, so a run
	// that only repaired the live ruleset is not "nothing changed" here.
	if j != nil && f.confirm == 0 && rep.Changed() == 0 && applyErr == nil {
		if err := j.Discard(); err != nil {
			return errors.Join(applyErr, err)
		}
	}
	if j != nil && rep.Changed() > 0 {
		fmt.Fprintf(out, "journal %s (undo with: bulwark apply --rollback --journal %s)\n", j.ID(), j.ID())
	}
	if f.confirm > 0 {
		confirmOrWait(ctx, out, p, f, j)
	}
	return applyErr
}

// checkSafety rejects flag combinations that cannot work and, on the live
// system without --confirm or --force, a change that would cut off the
// SSH session apply runs in. It runs before anything is changed.
func checkSafety(p *policies.Policy, f applyFlags, live bool, controls []provision.Control) error {
	switch {
	case f.confirm < 0:
		return exitcode.UsageError(fmt.Errorf("--confirm %s: must be positive", f.confirm))
	case f.confirm > 0 && !live:
		return exitcode.UsageError(fmt.Errorf("--confirm needs the live system (--root /), not %s: an offline root has no session to lose", f.rootDir))
	case f.confirm > 0 && f.dryRun:
		return exitcode.UsageError(errors.New("--confirm and --dry-run together: a dry run changes nothing to confirm"))
	case f.adminAddr != "":
		if _, err := netip.ParseAddr(f.adminAddr); err != nil {
			return exitcode.UsageError(fmt.Errorf("--admin-addr %q: %w", f.adminAddr, err))
		}
	}
	if !live || f.confirm > 0 || f.force {
		return nil
	}
	var fams []string
	for _, c := range controls {
		fams = append(fams, familyOf(c.Meta().ID))
	}
	if err := safeapply.Guard(p.Network, os.Getenv("SSH_CONNECTION"), provision.RiskyOf(all.Families(), fams)); err != nil {
		return exitcode.UsageError(err)
	}
	return nil
}

func familyOf(id string) string {
	for i := range id {
		if id[i] == '.' {
			return id[:i]
		}
	}
	return id
}

func isLiveRoot(dir string) bool {
	abs, err := filepath.Abs(dir)
	return err == nil && abs == "/"
}

// applyHost builds the target host, with a journal unless dry-running,
// and with the test build's crash hook (crashhook.go) when there is one.
func applyHost(f applyFlags) (*host.Local, *host.Journal, error) {
	if f.dryRun {
		h, err := host.NewLocal(f.rootDir, host.DryRun())
		if err != nil {
			return nil, nil, exitcode.UsageError(err)
		}
		return h, nil, nil
	}
	abs, err := filepath.Abs(f.rootDir)
	if err != nil {
		return nil, nil, exitcode.UsageError(err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, nil, exitcode.UsageError(fmt.Errorf("--root %s: not a directory", f.rootDir))
	}
	j, err := host.NewJournal(abs)
	if err != nil {
		return nil, nil, err
	}
	opts := append([]host.Option{host.WithJournal(j)}, crashHook()...)
	h, err := host.NewLocal(abs, opts...)
	if err != nil {
		return nil, nil, exitcode.UsageError(err)
	}
	return h, j, nil
}
