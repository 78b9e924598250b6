// Package host is how controls touch a machine: a root directory that is
// either the live system ("/") or an offline image being built. Every write
// goes through here, compared before it is made and recorded after, so
// Apply is idempotent by construction, --dry-run is a property of the host,
// and the record of what changed is never the control's own bookkeeping.
package host

import (
	"context"
	"fmt"
	"io/fs"
)

// Host is the small surface controls use. Paths are absolute as seen from
// inside the target ("/etc/ssh/sshd_config"), never host-prefixed.
type Host interface {
	// Root is "/" for the live system, else the offline root directory.
	Root() string
	// Live reports whether this is the running system (units can be
	// started, sockets probed) rather than an offline root directory.
	Live() bool
	ReadFile(path string) ([]byte, error)
	Stat(path string) (fs.FileInfo, error)
	// Lstat and Readlink do not follow a final symlink: an enablement link
	// may point at a path only the booted system resolves.
	Lstat(path string) (fs.FileInfo, error)
	Readlink(path string) (string, error)
	// WriteFile replaces path atomically (temp, fsync, rename) when its
	// content or mode differs, creating parent directories; otherwise it
	// does nothing and records nothing.
	WriteFile(path string, data []byte, perm fs.FileMode) error
	// Remove deletes path if it exists.
	Remove(path string) error
	// Query runs a read-only command (inside the root via chroot when
	// offline) and returns its stdout; stderr is in the error.
	Query(ctx context.Context, name string, args ...string) ([]byte, error)
	// Exec runs a command that changes the target; why is recorded as the
	// change. Under dry-run it is recorded and not run. A change that is
	// not a command (a netlink batch) goes through Do instead.
	Exec(ctx context.Context, why string, name string, args ...string) error
	// Changes lists what this host changed (or, under dry-run, would have).
	Changes() []Change
	// DryRun reports whether writes are only recorded.
	DryRun() bool
}

// Doer is a Host that can make, and record, a change that is neither a file
// nor a command: a kernel table replaced through netlink, say. It is apart
// from Host so adding it changes no existing implementation; controls call
// the Do function, never the method.
type Doer interface {
	// Do records why as an "exec" change and, unless dry-running, journals
	// it (with undo, the command that reverses it, if the caller knows one)
	// and then runs fn. Under dry-run fn is not run.
	Do(ctx context.Context, why string, undo []string, fn func(context.Context) error) error
}

// Do makes fn's change on h so that h records it, as it records files and
// commands: apply reports it, --dry-run records it without making it, and
// the journal keeps it. A host that cannot record it refuses and fn is not
// run, because a change made behind the host's back is one the operator is
// never told about.
func Do(ctx context.Context, h Host, why string, undo []string, fn func(context.Context) error) error {
	d, ok := h.(Doer)
	if !ok {
		return fmt.Errorf("host: %s: %T cannot record a change it does not make itself; nothing changed", why, h)
	}
	return d.Do(ctx, why, undo, fn)
}

// Change is one recorded change.
type Change struct {
	// Action is "write", "remove", or "exec" for any change that is not a
	// file: a command run (Exec) or a change made in-process (Do).
	Action string `json:"action"`
	Path   string `json:"path,omitempty"`
	Detail string `json:"detail"`
}

func (c Change) String() string {
	if c.Path == "" {
		return c.Action + ": " + c.Detail
	}
	return c.Action + " " + c.Path + ": " + c.Detail
}
