package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Local is a Host backed by a directory on this machine: "/" is the live
// system, anything else an offline root (e.g. a debootstrapped image).
type Local struct {
	root    string
	dryRun  bool
	changes []Change
}

// Option configures a Local host.
type Option func(*Local)

// DryRun makes every write and Exec a recorded no-op.
func DryRun() Option { return func(l *Local) { l.dryRun = true } }

// NewLocal returns a host rooted at root ("/" for the live system).
func NewLocal(root string, opts ...Option) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("host: root %q: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("host: root %q: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("host: root %q is not a directory", root)
	}
	l := &Local{root: abs}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Root implements Host.
func (l *Local) Root() string { return l.root }

// Live implements Host.
func (l *Local) Live() bool { return l.root == "/" }

// Changes implements Host.
func (l *Local) Changes() []Change { return append([]Change(nil), l.changes...) }

// Path maps a target path to this machine's path.
func (l *Local) Path(p string) string {
	if !filepath.IsAbs(p) {
		p = "/" + p
	}
	return filepath.Join(l.root, filepath.Clean(p))
}

// ReadFile implements Host.
func (l *Local) ReadFile(p string) ([]byte, error) { return os.ReadFile(l.Path(p)) }

// Stat implements Host.
func (l *Local) Stat(p string) (fs.FileInfo, error) { return os.Stat(l.Path(p)) }

// Lstat implements Host.
func (l *Local) Lstat(p string) (fs.FileInfo, error) { return os.Lstat(l.Path(p)) }

// Readlink implements Host.
func (l *Local) Readlink(p string) (string, error) { return os.Readlink(l.Path(p)) }

// DryRun implements Host.
func (l *Local) DryRun() bool { return l.dryRun }

// WriteFile implements Host.
func (l *Local) WriteFile(p string, data []byte, perm fs.FileMode) error {
	real := l.Path(p)
	old, err := os.ReadFile(real)
	switch {
	case err == nil:
		st, serr := os.Stat(real)
		if serr == nil && bytes.Equal(old, data) && st.Mode().Perm() == perm.Perm() {
			return nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("host: read %s: %w", p, err)
	}
	detail := fmt.Sprintf("%d bytes, mode %04o", len(data), perm.Perm())
	if err == nil && bytes.Equal(old, data) {
		detail = fmt.Sprintf("mode to %04o", perm.Perm())
	}
	l.changes = append(l.changes, Change{Action: "write", Path: p, Detail: detail})
	if l.dryRun {
		return nil
	}
	return atomicWrite(real, data, perm)
}

func atomicWrite(real string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(real)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("host: mkdir %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(real)+".bulwark-*")
	if err != nil {
		return fmt.Errorf("host: write %s: %w", real, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("host: write %s: %w", real, err)
	}
	if err := tmp.Chmod(perm.Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("host: chmod %s: %w", real, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("host: fsync %s: %w", real, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("host: close %s: %w", real, err)
	}
	if err := os.Rename(tmp.Name(), real); err != nil {
		return fmt.Errorf("host: rename into %s: %w", real, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("host: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("host: fsync dir %s: %w", dir, err)
	}
	return nil
}

// Remove implements Host.
func (l *Local) Remove(p string) error {
	real := l.Path(p)
	if _, err := os.Lstat(real); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	l.changes = append(l.changes, Change{Action: "remove", Path: p, Detail: "deleted"})
	if l.dryRun {
		return nil
	}
	if err := os.Remove(real); err != nil {
		return fmt.Errorf("host: remove %s: %w", p, err)
	}
	return nil
}

// Query implements Host.
func (l *Local) Query(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := l.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("host: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Exec implements Host.
func (l *Local) Exec(ctx context.Context, why string, name string, args ...string) error {
	l.changes = append(l.changes, Change{Action: "exec", Detail: why})
	if l.dryRun {
		return nil
	}
	out, err := l.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("host: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// command runs inside the root: directly on the live system, through chroot
// for an offline root, so package tools see the image's own configuration.
func (l *Local) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if l.Live() {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "chroot", append([]string{l.root, name}, args...)...)
}
