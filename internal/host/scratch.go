package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// scratchParent is where scratch directories are made, as the target sees
// it. Not /run: offline, sshd's pre-flight runs under a fresh tmpfs /run,
// which would hide the candidate from it.
const scratchParent = "/tmp"

// Scratch is a private directory inside a host's root for files that are
// tests, not changes: pre-flight candidates a daemon's own config check
// reads (sshd -t, rsyslogd -N1, systemd-analyze verify, nginx -t). They
// bypass the change record and the journal, are written even under
// --dry-run, and are removed by Close.
//
// It is the one way bulwark makes such files. /tmp is shared with every
// local user, and bulwark runs as root: a fixed name there, written with a
// call that follows symlinks, lets anyone who plants a link at that name
// have root overwrite the link's target. So the directory gets a fresh
// unpredictable name and mode 0700 (os.MkdirTemp), and every file in it is
// created new (O_EXCL) without following a link (O_NOFOLLOW). Offline, the
// directory is found by resolving /tmp inside the root: the target's own
// commands (chrooted) must find the candidate there, and a joined path
// would follow an image's absolute link out onto the build machine.
type Scratch struct {
	real   string // the directory on this machine
	target string // the directory as the target sees it
	made   string // the scratch parent, when NewScratch had to create it
}

// NewScratch makes a scratch directory under the target's /tmp, named
// ".bulwark-<prefix>-<random>".
func NewScratch(h Host, prefix string) (*Scratch, error) {
	if prefix == "" || strings.ContainsRune(prefix, '/') {
		return nil, fmt.Errorf("host: scratch prefix %q: want a non-empty name without a slash", prefix)
	}
	parent, err := RealPath(h, scratchParent)
	if err != nil {
		return nil, fmt.Errorf("host: scratch dir: %w", err)
	}
	s := &Scratch{}
	// A minimal tree may have no /tmp. Make it as every Linux has it, and
	// take it away again in Close, so the pre-flight leaves the tree as it
	// found it. Mkdir, not MkdirAll: /tmp's parent is the root itself, or
	// wherever an in-root link led, which must already exist.
	if err := os.Mkdir(parent, 0o700); err == nil {
		s.made = parent
		if err := os.Chmod(parent, os.ModeSticky|0o777); err != nil { // Mkdir's mode is masked by the umask
			s.Close()
			return nil, fmt.Errorf("host: scratch dir: chmod %s: %w", parent, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("host: scratch dir: %w", err)
	}
	s.real, err = os.MkdirTemp(parent, ".bulwark-"+prefix+"-")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("host: scratch dir in %s: %w", parent, err)
	}
	inRoot, err := filepath.Rel(h.Root(), s.real)
	if err != nil || !filepath.IsLocal(inRoot) {
		s.Close()
		return nil, fmt.Errorf("host: scratch dir %s is not inside the root %s", s.real, h.Root())
	}
	s.target = path.Join("/", filepath.ToSlash(inRoot))
	return s, nil
}

// Target is rel inside the directory (the directory itself for "") as the
// target sees it: the path to hand to a command run through the host.
func (s *Scratch) Target(rel string) string { return path.Join(s.target, rel) }

// Write creates rel inside the directory with data, mode 0600, and any
// directories rel names, mode 0700. rel must stay inside the directory,
// and must not exist yet: each candidate is written once, and a name that
// is already there was not made by this Scratch.
func (s *Scratch) Write(rel string, data []byte) error {
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return fmt.Errorf("host: scratch write %q: not a path inside the scratch directory", rel)
	}
	if err := s.mkdirs(filepath.Dir(local)); err != nil {
		return fmt.Errorf("host: scratch write %s: %w", rel, err)
	}
	real := filepath.Join(s.real, local)
	f, err := os.OpenFile(real, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("host: scratch write %s: %w", rel, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("host: scratch write %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("host: scratch write %s: close: %w", rel, err)
	}
	return nil
}

// mkdirs makes dir (relative to the scratch directory) one component at a
// time, accepting an existing component only if it is a real directory:
// never a link, which MkdirAll would follow.
func (s *Scratch) mkdirs(dir string) error {
	if dir == "." {
		return nil
	}
	cur := s.real
	for _, part := range strings.Split(dir, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		err := os.Mkdir(cur, 0o700)
		if errors.Is(err, fs.ErrExist) {
			if st, lerr := os.Lstat(cur); lerr == nil && st.IsDir() {
				continue
			}
			return fmt.Errorf("mkdir %s: exists and is not a directory", part)
		}
		if err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	return nil
}

// Close removes the directory and everything in it (and /tmp, if
// NewScratch made it). Callers usually defer it and ignore the error: a
// leftover in a private directory changes nothing the target reads.
func (s *Scratch) Close() error {
	var errs []error
	if s.real != "" {
		if err := os.RemoveAll(s.real); err != nil {
			errs = append(errs, fmt.Errorf("host: remove scratch dir: %w", err))
		}
	}
	if s.made != "" {
		if err := os.Remove(s.made); err != nil {
			errs = append(errs, fmt.Errorf("host: remove %s made for scratch: %w", s.made, err))
		}
	}
	return errors.Join(errs...)
}

// RealPath is target path p on this machine, every symlink resolved
// inside h's root as the target would resolve it, for callers that must
// hand a file name to a library (debug/buildinfo reads a binary by name)
// rather than read through h. Joining h.Root() by hand would follow an
// image's absolute link onto the build machine (see resolveInRoot).
func RealPath(h Host, p string) (string, error) {
	return resolveOn(h, p, true) // resolveInRoot's error names p
}
