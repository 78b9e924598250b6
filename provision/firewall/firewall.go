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
	// namespace (with BatchBuffer) on first use.
	Conn *nftables.Conn
	// Report receives one line per kernel apply: "ruleset unchanged" or
	// "replaced table …". The host records file changes itself; the kernel
	// table is not a file, so this is how its change is reported. nil
	// writes to stderr.
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

// dryRunner is implemented by hosts that can say they are dry-running;
// the kernel table is not a file, so the host cannot no-op it for us.
type dryRunner interface{ DryRun() bool }

// Apply writes the persistence files and, on a live host, replaces the
// kernel table when it differs from the model.
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
	if d, ok := h.(dryRunner); ok && d.DryRun() {
		if err := f.preflight(); err != nil {
			return err
		}
		f.opts.Report(fmt.Sprintf("firewall: dry run: pre-flight passed in a scratch network namespace; table inet %s not touched", f.rs.Table))
		return nil
	}
	_, err := f.ApplyKernel(ctx)
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

// ApplyKernel compares the live table with the model and, only if they
// differ, replaces it in one netlink batch. It reports whether it changed
// anything.
func (f *Firewall) ApplyKernel(ctx context.Context) (changed bool, err error) {
	if f.renderErr != nil {
		return false, f.renderErr
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	conn, err := f.conn()
	if err != nil {
		return false, err
	}
	o := f.rs.build()
	live, err := readState(conn, f.rs.Table)
	if err != nil {
		return false, err
	}
	if len(diff(o.state(), live, f.rs.Table)) == 0 {
		f.opts.Report(fmt.Sprintf("firewall: ruleset unchanged (table inet %s)", f.rs.Table))
		return false, nil
	}
	if err := f.preflight(); err != nil {
		return false, err
	}
	if err := o.queue(conn); err != nil {
		return false, err
	}
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("firewall: replace table inet %s (nothing was changed): %w", f.rs.Table, err)
	}
	rules, elems := f.rs.counts()
	f.opts.Report(fmt.Sprintf("firewall: replaced table inet %s (%d rules, %d set elements)", f.rs.Table, rules, elems))
	return true, nil
}

// drifts reads the live table and returns its differences from the model.
func (f *Firewall) drifts() ([]drift, state, error) {
	conn, err := f.conn()
	if err != nil {
		return nil, state{}, err
	}
	live, err := readState(conn, f.rs.Table)
	if err != nil {
		return nil, state{}, err
	}
	return diff(f.rs.build().state(), live, f.rs.Table), live, nil
}
