//go:build linux

package firewall

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/google/nftables"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Options wire a Firewall to its kernel and its reporter. Nothing here is
// global: tests pass a Conn bound to a scratch network namespace.
type Options struct {
	// Conn is the nftables connection; nil dials the current network
	// namespace (with BatchBuffer) on first use. Set elements are read
	// through a socket of their own in Conn's namespace (its NetNS, as
	// set by nftables.WithNetNSFd; 0 is the caller's own), so a Conn into
	// another namespace must name it that way.
	Conn *nftables.Conn
	// Report receives notes about the kernel table that are not changes:
	// "ruleset unchanged", or that a dry run's pre-flight passed. A
	// replacement is a change, so the host records it (see Apply) and apply
	// reports and journals it with the files; it is never only a note here.
	// nil writes to stderr.
	Report func(msg string)
}

// Firewall applies and verifies one rendered ruleset. All the family's
// controls share one Firewall, so the table is written once per run (see
// applyOnce) however many controls are applied.
type Firewall struct {
	net       policies.Network
	rs        *Ruleset
	renderErr error
	opts      Options

	mu   sync.Mutex
	done map[host.Host]error // hosts this Firewall has applied to, for applyOnce
}

// New renders the policy. A render error is kept and returned by every
// Apply and reported by every Verify, so a bad policy never reaches the
// kernel.
func New(n policies.Network, o Options) *Firewall {
	rs, err := Render(n)
	if o.Report == nil {
		o.Report = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
	}
	return &Firewall{net: n, rs: rs, renderErr: err, opts: o, done: map[host.Host]error{}}
}

// Ruleset is the rendered model (nil with the render error).
func (f *Firewall) Ruleset() (*Ruleset, error) { return f.rs, f.renderErr }

func (f *Firewall) conn() (*nftables.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opts.Conn != nil {
		return f.opts.Conn, nil
	}
	c, err := nftables.New(BatchBuffer())
	if err != nil {
		return nil, fmt.Errorf("firewall: open netlink: %w", err)
	}
	f.opts.Conn = c
	return c, nil
}

// Apply writes the persistence files and, on a live host, replaces the
// kernel table when it differs from the model. The replacement goes through
// the host (host.Do), as the files do: the host is the only record of what
// apply changed, so a table repaired while its files were already right is
// reported as a change and journalled, and under --dry-run it is recorded
// as one that would be made and the kernel is not touched.
func (f *Firewall) Apply(ctx context.Context, h host.Host) error {
	if f.renderErr != nil {
		return f.renderErr
	}
	if err := f.rs.writePersist(ctx, h); err != nil {
		return err
	}
	if !h.Live() {
		return nil
	}
	// No undo is journalled with the replacement: the whole table's undo
	// is the snapshot the family journals (snapshotTable) before the family's
	// first control runs, which rollback reaches after this entry.
	differed, err := f.replaceTable(ctx, func(why string, replace func(context.Context) error) error {
		return host.Do(ctx, h, why, nil, replace)
	})
	if err == nil && differed && h.DryRun() {
		f.opts.Report(fmt.Sprintf("firewall: dry run: pre-flight passed in a scratch network namespace; table inet %s not touched", f.rs.Table))
	}
	return err
}

// applyOnce is Apply for the family's controls: the first control applied
// to a host writes everything, the rest reuse its result.
func (f *Firewall) applyOnce(ctx context.Context, h host.Host) error {
	f.mu.Lock()
	err, ok := f.done[h]
	f.mu.Unlock()
	if ok {
		return err
	}
	err = f.Apply(ctx, h)
	f.mu.Lock()
	f.done[h] = err
	f.mu.Unlock()
	return err
}

// replaceTable compares the live table with the model and, only if they
// differ, pre-flights the model and hands the one-batch replacement to
// record, which makes it (or, dry-running, only records it) under a
// description of what it replaces and why. It reports whether the table
// differed. Nothing is queued on the connection outside replace, so when
// record does not run it (a dry run) nothing is left behind to be flushed
// by a later batch.
func (f *Firewall) replaceTable(ctx context.Context, record func(why string, replace func(context.Context) error) error) (differed bool, err error) {
	if f.renderErr != nil {
		return false, f.renderErr
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	// The model is built and reduced to its state once, and the live
	// diff, the pre-flight's read-back and the live batch all use these
	// values: the pre-flight proves the very batch that goes live, and at
	// 10 000 networks each extra build or state costs milliseconds.
	o := f.rs.build()
	want := o.state()
	ds, live, err := f.driftsFrom(want)
	if err != nil {
		return false, err
	}
	if len(ds) == 0 {
		f.opts.Report(fmt.Sprintf("firewall: ruleset unchanged (table inet %s)", f.rs.Table))
		return false, nil
	}
	if err := f.preflight(o, want); err != nil {
		return false, err
	}
	return true, record(f.replaceWhy(live, ds), func(ctx context.Context) error {
		conn, err := f.conn()
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("firewall: replace table inet %s (nothing was changed): %w", f.rs.Table, err)
		}
		if err := o.queue(conn); err != nil {
			return err
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("firewall: replace table inet %s (nothing was changed): %w", f.rs.Table, err)
		}
		return nil
	})
}

// replaceWhy is the recorded change: what is loaded, and what in the live
// table made it necessary (the first difference; verify lists them all).
func (f *Firewall) replaceWhy(live state, ds []drift) string {
	rules, elems := f.rs.counts()
	what := fmt.Sprintf("table inet %s (%d rules, %d set elements)", f.rs.Table, rules, elems)
	if !live.Exists {
		return "load " + what + ": it was not loaded"
	}
	why := "replace " + what + ": the live table differed from the policy at " + ds[0].What
	if n := len(ds) - 1; n > 0 {
		why += fmt.Sprintf(" and %d more", n)
	}
	return why
}

// drifts reads the live table and returns its differences from the model.
func (f *Firewall) drifts() ([]drift, state, error) {
	return f.driftsFrom(f.rs.build().state())
}

// driftsFrom is drifts against a model state the caller already built.
func (f *Firewall) driftsFrom(want state) ([]drift, state, error) {
	conn, err := f.conn()
	if err != nil {
		return nil, state{}, err
	}
	live, err := readState(conn, f.rs.Table)
	if err != nil {
		return nil, state{}, err
	}
	return diff(want, live, f.rs.Table), live, nil
}
