//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/runner"
	"github.com/bulwark-appliance/bulwark/internal/safeapply"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
	"github.com/bulwark-appliance/bulwark/provision/firewall"
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

func init() {
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
			return runApply(cmd, f)
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
	root.AddCommand(cmd)
}

func runApply(cmd *cobra.Command, f applyFlags) error {
	p, err := loadPolicy()
	if err != nil {
		return err
	}
	controls, err := runner.Select(all.Families(), all.Controls(p), f.only)
	if err != nil {
		return usageErr(err)
	}
	live := isLiveRoot(f.rootDir)
	if err := checkSafety(p, f, live, controls); err != nil {
		return err
	}
	h, j, err := applyHost(f)
	if err != nil {
		return err
	}
	ctx, out := stageContext(cmd.Context()), cmd.OutOrStdout()
	if f.confirm > 0 {
		if err := armRollback(ctx, out, j, f.confirm); err != nil {
			return err
		}
	}
	rep, applyErr := runner.ApplyWith(ctx, h, controls, runner.Options{BeforeFamily: safeapply.BeforeFamily(h, p.Network.Table)})
	if err := runner.WriteApply(out, rep, f.dryRun, applyErr != nil); err != nil {
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
		return usageErr(fmt.Errorf("--confirm %s: must be positive", f.confirm))
	case f.confirm > 0 && !live:
		return usageErr(fmt.Errorf("--confirm needs the live system (--root /), not %s: an offline root has no session to lose", f.rootDir))
	case f.confirm > 0 && f.dryRun:
		return usageErr(errors.New("--confirm and --dry-run together: a dry run changes nothing to confirm"))
	case f.adminAddr != "":
		if _, err := netip.ParseAddr(f.adminAddr); err != nil {
			return usageErr(fmt.Errorf("--admin-addr %q: %w", f.adminAddr, err))
		}
	}
	if !live || f.confirm > 0 || f.force {
		return nil
	}
	var fams []string
	for _, c := range controls {
		fams = append(fams, familyOf(c.ID()))
	}
	if err := safeapply.Guard(p, os.Getenv("SSH_CONNECTION"), fams); err != nil {
		return usageErr(err)
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

// applyHost builds the target host, with a journal unless dry-running.
// BULWARK_CRASH_AFTER=N is a TEST-ONLY hook: apply SIGKILLs itself right
// after its Nth change, so tests can prove a rerun converges from any
// interruption point.
func applyHost(f applyFlags) (*host.Local, *host.Journal, error) {
	var opts []host.Option
	if f.dryRun {
		h, err := host.NewLocal(f.rootDir, host.DryRun())
		if err != nil {
			return nil, nil, usageErr(err)
		}
		return h, nil, nil
	}
	abs, err := filepath.Abs(f.rootDir)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, nil, usageErr(fmt.Errorf("--root %s: not a directory", f.rootDir))
	}
	j, err := host.NewJournal(abs)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, host.WithJournal(j))
	if n, err := strconv.Atoi(os.Getenv("BULWARK_CRASH_AFTER")); err == nil && n > 0 {
		opts = append(opts, host.AfterChange(crashAfter(n)))
	}
	h, err := host.NewLocal(abs, opts...)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	return h, j, nil
}

func crashAfter(n int) func(host.Change) {
	seen := 0
	return func(host.Change) {
		if seen++; seen == n {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
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
	if ok && !firewall.Admits(p.Network, s.Client) {
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

func runRollback(cmd *cobra.Command, f applyFlags) error {
	abs, err := filepath.Abs(f.rootDir)
	if err != nil {
		return usageErr(err)
	}
	j, err := openJournal(abs, f.journal)
	if err != nil {
		return usageErr(err)
	}
	out := cmd.OutOrStdout()
	if st := j.State(); f.unlessConfirmed && (st == host.StateConfirmed || st == host.StateRolledBack) {
		fmt.Fprintf(out, "journal %s is %s: nothing rolled back\n", j.ID(), st)
		return nil
	}
	h, err := host.NewLocal(abs)
	if err != nil {
		return usageErr(err)
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
