//go:build linux

package firewall

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/google/nftables"
	vnetns "github.com/vishvananda/netns"
)

// preflight loads the rendered table into a scratch network namespace and
// reads it back before the live table is touched. The netlink batch is
// atomic, so a refused batch changes nothing either way; what the scratch
// load adds is the read-back: a kernel that accepts the batch but stores
// something else (a missing expression module, a set flag it ignores, a
// set message whose attribute length wrapped) would otherwise go live and
// only show up as drift in the next verify. The namespace has no
// interfaces and no processes, so nothing is exposed while the table is
// loaded there; it disappears when its handle closes.
//
// o is the batch the live load sends and want its state, both built once
// by the caller: the pre-flight proves the very values that go live.
func (f *Firewall) preflight(o objects, want state) error {
	err := inScratchNetns(func(conn *nftables.Conn) error { return loadAndCompare(conn, o, want, f.rs.Table) })
	if err != nil {
		return fmt.Errorf("firewall: pre-flight in a scratch network namespace, live table inet %s not touched: %w", f.rs.Table, err)
	}
	return nil
}

// loadAndCompare flushes o into conn and checks that the kernel holds
// exactly want (o's state) afterwards.
func loadAndCompare(conn *nftables.Conn, o objects, want state, table string) error {
	if err := o.queue(conn); err != nil {
		return err
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("kernel refused the batch: %w", err)
	}
	return compareOnly(conn, want, table)
}

// compareOnly reads table back through conn and names every difference
// from want.
func compareOnly(conn *nftables.Conn, want state, table string) error {
	live, err := readState(conn, table)
	if err != nil {
		return err
	}
	ds := diff(want, live, table)
	if len(ds) == 0 {
		return nil
	}
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "; %s: expected %s, kernel has %s", d.What, d.Expected, d.Actual)
	}
	return fmt.Errorf("kernel accepted the batch but reads back %d differences%s", len(ds), b.String())
}

// inScratchNetns runs fn with a netlink connection into a new, empty
// network namespace. The namespace is created on a locked OS thread that
// switches straight back; if switching back fails the thread stays locked
// and Go discards it when the goroutine ends, so no other goroutine ever
// runs in the wrong namespace. The connection is lasting: the pre-flight's
// dozen netlink calls share one socket instead of each entering the
// namespace to open its own.
func inScratchNetns(fn func(*nftables.Conn) error) error {
	type made struct {
		ns  vnetns.NsHandle
		err error
	}
	ch := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- made{err: fmt.Errorf("read current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := vnetns.New()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- made{err: fmt.Errorf("create scratch network namespace: %w", err)}
			return
		}
		if err := vnetns.Set(orig); err != nil {
			ns.Close()
			ch <- made{err: fmt.Errorf("return from scratch network namespace: %w", err)}
			return // thread stays locked: discarded with this goroutine
		}
		runtime.UnlockOSThread()
		ch <- made{ns: ns}
	}()
	m := <-ch
	if m.err != nil {
		return m.err
	}
	defer m.ns.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(m.ns)), nftables.AsLasting(), BatchBuffer())
	if err != nil {
		return fmt.Errorf("open netlink in scratch namespace: %w", err)
	}
	defer func() { _ = conn.CloseLasting() }()
	return fn(conn)
}
