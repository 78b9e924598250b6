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
	root        string
	dryRun      bool
	changes     []Change
	journal     *Journal
	afterChange func(Change)
}

// Option configures a Local host.
type Option func(*Local)

// DryRun makes every write, Exec and Do a recorded no-op.
func DryRun() Option { return func(l *Local) { l.dryRun = true } }

// WithJournal records every file's before-state (and every command or
// other non-file change, with its undo when known) in j before the change
// is made, so apply can roll back. Dry runs record nothing: nothing is
// changed.
func WithJournal(j *Journal) Option { return func(l *Local) { l.journal = j } }

// AfterChange calls fn after each change has been made (not under dry-run).
func AfterChange(fn func(Change)) Option { return func(l *Local) { l.afterChange = fn } }

// Journal is the journal given with WithJournal, or nil.
func (l *Local) Journal() *Journal { return l.journal }

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

// Path maps a target path to this machine's path, resolving symlinks
// inside the root as the target would. A path that cannot be resolved (a
// symlink loop) maps to its plain join, where the next operation on it
// reports the error.
func (l *Local) Path(p string) string {
	real, err := l.resolve(p, true)
	if err != nil {
		return filepath.Join(l.root, filepath.Clean("/"+p))
	}
	return real
}

// resolve maps a target path to this machine's path, following symlinks
// inside the root as the target would (see resolveInRoot).
func (l *Local) resolve(p string, followFinal bool) (string, error) {
	return resolveOn(l, p, followFinal)
}

// ReadFile implements Host.
func (l *Local) ReadFile(p string) ([]byte, error) {
	real, err := l.resolve(p, true)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(real)
}

// Stat implements Host.
func (l *Local) Stat(p string) (fs.FileInfo, error) {
	real, err := l.resolve(p, true)
	if err != nil {
		return nil, err
	}
	return os.Stat(real)
}

// Lstat implements Host.
func (l *Local) Lstat(p string) (fs.FileInfo, error) {
	real, err := l.resolve(p, false)
	if err != nil {
		return nil, err
	}
	return os.Lstat(real)
}

// Readlink implements Host.
func (l *Local) Readlink(p string) (string, error) {
	real, err := l.resolve(p, false)
	if err != nil {
		return "", err
	}
	return os.Readlink(real)
}

// ReadDir lists directory p, its symlinks resolved inside the root.
func (l *Local) ReadDir(p string) ([]fs.DirEntry, error) {
	real, err := l.resolve(p, true)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(real)
}

// DirReader is a Host that can list directories (Local can). It is apart
// from Host so adding it changes no existing implementation.
type DirReader interface {
	ReadDir(path string) ([]fs.DirEntry, error)
}

// ReadDir lists directory p on h, or says h cannot: never a silent empty
// listing, which a Verify would read as "nothing there".
func ReadDir(h Host, p string) ([]fs.DirEntry, error) {
	d, ok := h.(DirReader)
	if !ok {
		return nil, fmt.Errorf("host: list %s: %T cannot list directories", p, h)
	}
	return d.ReadDir(p)
}

// DryRun implements Host.
func (l *Local) DryRun() bool { return l.dryRun }

// WriteFile implements Host. Writing over a masked unit (a link to
// /dev/null) replaces the link itself, as it does on the live system:
// following it offline would land on the image's (or, were the root
// ignored, the build machine's) /dev/null.
func (l *Local) WriteFile(p string, data []byte, perm fs.FileMode) error {
	real, masked, err := l.writeTarget(p)
	if err != nil {
		return err
	}
	var old []byte
	err = fs.ErrNotExist // a mask has no content of its own to compare
	if !masked {
		old, err = os.ReadFile(real)
	}
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
	if masked {
		detail += ", replacing the mask link to " + maskTarget
	}
	c := Change{Action: "write", Path: p, Detail: detail}
	l.changes = append(l.changes, c)
	if l.dryRun {
		return nil
	}
	if err := l.journalFile("write", p, real); err != nil {
		return err
	}
	if err := atomicWrite(real, data, perm); err != nil {
		return err
	}
	l.changed(c)
	return nil
}

// maskTarget is where systemd's mask links point.
const maskTarget = "/dev/null"

// writeTarget is the machine path a write of p replaces, and whether that
// is a mask link replaced as a link. Offline, any other final link is
// followed inside the root (an image's /etc/resolv.conf link keeps its
// target), but never onto something that is not a regular file: a
// rename over a device node or socket would corrupt the image.
func (l *Local) writeTarget(p string) (real string, masked bool, err error) {
	link, err := l.resolve(p, false)
	if err != nil {
		return "", false, err
	}
	if t, err := os.Readlink(link); err == nil && filepath.Clean(t) == maskTarget {
		return link, true, nil
	}
	if l.Live() {
		return link, false, nil // a rename replaces a live link, as before
	}
	if real, err = l.resolve(p, true); err != nil {
		return "", false, err
	}
	if st, err := os.Stat(real); err == nil && !st.Mode().IsRegular() {
		return "", false, fmt.Errorf("host: write %s: it resolves to %s inside the root, a %s, not a regular file: nothing changed", p, strings.TrimPrefix(real, l.root), modeKind(st.Mode()))
	}
	return real, false, nil
}

func modeKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	}
	return m.Type().String()
}

// journalFile records p's before-state when a journal is kept.
func (l *Local) journalFile(action, p, real string) error {
	if l.journal == nil {
		return nil
	}
	if err := l.journal.recordFile(action, p, real); err != nil {
		return fmt.Errorf("host: %s %s: nothing changed: %w", action, p, err)
	}
	return nil
}

func (l *Local) changed(c Change) {
	if l.afterChange != nil {
		l.afterChange(c)
	}
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
	real, err := l.resolve(p, false)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(real); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c := Change{Action: "remove", Path: p, Detail: "deleted"}
	l.changes = append(l.changes, c)
	if l.dryRun {
		return nil
	}
	if err := l.journalFile("remove", p, real); err != nil {
		return err
	}
	if err := os.Remove(real); err != nil {
		return fmt.Errorf("host: remove %s: %w", p, err)
	}
	l.changed(c)
	return nil
}

// Query implements Host.
//
// Only stdout is returned: tools write warnings to stderr that are not
// their answer (systemd 257 warns on every chroot call that /proc is not
// mounted, which once turned `systemctl is-enabled`'s "disabled" into an
// unparseable state). stderr goes into the error.
func (l *Local) Query(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := l.command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := bytes.TrimSpace(append(append([]byte{}, out...), stderr.Bytes()...))
		return out, fmt.Errorf("host: %s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// Exec implements Host.
func (l *Local) Exec(ctx context.Context, why string, name string, args ...string) error {
	return l.ExecUndo(ctx, why, nil, name, args...)
}

// ExecUndo is Exec for a caller that knows how to undo the command: undo
// (run inside the root) is journalled before the command runs, so a
// rollback can reverse it. A nil undo journals what was done, unreversible.
func (l *Local) ExecUndo(ctx context.Context, why string, undo []string, name string, args ...string) error {
	argv := append([]string{name}, args...)
	entry := func() Entry {
		if undo == nil {
			undo, _ = l.inferUndo(ctx, name, args)
		}
		return Entry{Action: "exec", Detail: why + ": " + strings.Join(argv, " "), Undo: undo}
	}
	return l.record(ctx, Change{Action: "exec", Detail: why}, entry, func(ctx context.Context) error { return l.Run(ctx, argv) })
}

// Do implements Doer: a change that is not a file and not a command (a
// netlink batch) is recorded, dry-run and journalled exactly as Exec's
// command is. fn's error is returned as is; it carries its own context.
func (l *Local) Do(ctx context.Context, why string, undo []string, fn func(context.Context) error) error {
	if fn == nil {
		return fmt.Errorf("host: %s: no change given to make", why)
	}
	entry := func() Entry { return Entry{Action: "exec", Detail: why, Undo: undo} }
	return l.record(ctx, Change{Action: "exec", Detail: why}, entry, fn)
}

// record is Exec's and Do's common path: c is recorded first, so a dry run
// lists it; otherwise entry is journalled before apply runs, as a file's
// before-state is. entry is built only then because inferring an undo asks
// the target, which a dry run must not need. A crash between journal and
// change leaves an entry for a change perhaps not made: an undo-less entry
// rolls back as nothing, and an undo must be safe to run either way.
func (l *Local) record(ctx context.Context, c Change, entry func() Entry, apply func(context.Context) error) error {
	l.changes = append(l.changes, c)
	if l.dryRun {
		return nil
	}
	if l.journal != nil {
		if err := l.journal.add(entry()); err != nil {
			return fmt.Errorf("host: %s: nothing done: %w", c.Detail, err)
		}
	}
	if err := apply(ctx); err != nil {
		return err
	}
	l.changed(c)
	return nil
}

// Run runs argv inside the root (a Runner for Journal.Rollback); it
// records nothing.
func (l *Local) Run(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("host: run: empty command")
	}
	out, err := l.command(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("host: %s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
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
