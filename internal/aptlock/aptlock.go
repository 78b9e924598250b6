//go:build linux

// Package aptlock waits for the dpkg/apt locks before bulwark runs apt or
// dpkg itself. unattended-upgrades may be halfway through an upgrade when
// apply runs: bulwark waits a bounded time (policy
// apply.dpkg_lock_timeout), says who holds the lock, and never kills apt —
// an interrupted dpkg leaves half-configured packages behind.
package aptlock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Paths are the locks apt and dpkg take (fcntl write locks), frontend
// first as apt takes them.
var Paths = []string{"/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock", "/var/cache/apt/archives/lock"}

// ErrTimeout is returned when a lock is still held when the wait ends.
var ErrTimeout = errors.New("dpkg lock still held")

// Holder is a process holding one of the locks.
type Holder struct {
	Path    string
	PID     int
	Command string // from /proc/PID/cmdline, "" when unreadable
}

func (h Holder) String() string {
	return fmt.Sprintf("%s held by pid %d (%s)", h.Path, h.PID, h.Command)
}

// Held reports the first lock under root that another process holds, or
// nil. A missing lock file means nobody holds it.
func Held(root string) (*Holder, error) {
	for _, p := range Paths {
		pid, err := holder(filepath.Join(root, p))
		if err != nil {
			return nil, fmt.Errorf("aptlock: probe %s: %w", p, err)
		}
		if pid != 0 {
			return &Holder{Path: p, PID: pid, Command: command(pid)}, nil
		}
	}
	return nil, nil
}

// holder asks the kernel (F_GETLK) which process would block a write lock
// on path; 0 means none. F_GETLK takes no lock itself, so probing never
// races apt for it.
func holder(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, err
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}

func command(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Wait polls until no lock under root is held or timeout passes. say is
// told about each new holder once, so an operator sees why apply waits.
func Wait(ctx context.Context, root string, timeout time.Duration, say func(string)) error {
	deadline := time.Now().Add(timeout)
	var last Holder
	for {
		h, err := Held(root)
		if err != nil || h == nil {
			return err
		}
		if *h != last {
			say(fmt.Sprintf("waiting up to %s for %s", time.Until(deadline).Round(time.Second), h))
			last = *h
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("aptlock: %s after %s (bulwark never kills apt; retry when it finishes): %w", h, timeout, ErrTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("aptlock: waiting for %s: %w", h, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
