// Package host is how controls touch a machine: a root directory that is
// either the live system ("/") or an offline image being built. Every write
// goes through here, compared before it is made and recorded after, so
// Apply is idempotent by construction, --dry-run is a property of the host,
// and the record of what changed is never the control's own bookkeeping.
package host

import (
	"context"
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
	// change. Under dry-run it is recorded and not run.
	Exec(ctx context.Context, why string, name string, args ...string) error
	// Changes lists what this host changed (or, under dry-run, would have).
	Changes() []Change
	// DryRun reports whether writes are only recorded. Controls that change
	// state the host does not mediate (the kernel's ruleset) must honour it.
	DryRun() bool
}

// Change is one recorded change.
type Change struct {
	Action string `json:"action"` // "write", "remove", "exec"
	Path   string `json:"path,omitempty"`
	Detail string `json:"detail"`
}

func (c Change) String() string {
	if c.Path == "" {
		return c.Action + ": " + c.Detail
	}
	return c.Action + " " + c.Path + ": " + c.Detail
}
